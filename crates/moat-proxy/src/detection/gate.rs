//! Stage 5, the detection gate: what the board says about the request's account and end user.
//!
//! - `block`: refused, 403 `account_blocked`;
//! - `throttle`: past `throttle_rpm` requests a minute, 429 `rate_limit_exceeded` with
//!   `Retry-After` and the protocol's rate-limit headers;
//! - `degrade`: throttled too, and `n > 1`, log probabilities and reasoning asks are refused with
//!   400 `param_not_allowed`; the output cap is lowered to `degrade_max_tokens` (the pipeline
//!   rewrites that one field of the body).
//!
//! In `monitor` mode, and for allowlisted accounts, nothing is enforced: the would-be action is
//! logged and counted (`moat_detect_actions_total{action,enforced="false"}`) and flagged on the
//! request's log line.

use bytes::Bytes;
use moat_config::DetectionMode;
use moat_guard::ParamViolation;
use moat_protocol::view::{Params, ViewApi};

use super::Detection;
use crate::body::{self, BodyPeek};
use crate::error::GatewayError;
use crate::filter::Inspected;
use crate::telemetry::RequestRecord;
use moat_detect::board::{Action, Entry};

/// What the gate changes about a request it lets through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Lower the output cap to this many tokens.
    pub cap_output: Option<u64>,
}

/// The principal an entry belongs to.
struct Who<'a> {
    account: &'a str,
    end_user: Option<&'a str>,
    enforce: bool,
    allowlisted: bool,
}

impl Detection {
    /// Applies the account's and end user's actions to one request arriving at `now_ms`.
    pub(crate) fn gate(
        &self,
        account: &str,
        inspected: Option<&Inspected>,
        now_ms: i64,
        record: &mut RequestRecord,
    ) -> Result<Admission, GatewayError> {
        let mut out = Admission::default();
        if self.mode == DetectionMode::Off {
            return Ok(out);
        }
        let end_user = inspected.and_then(|i| i.end_user.as_deref());
        let standing = self.board.lookup(account, end_user);
        for (entry, user) in [(standing.account, None), (standing.end_user, end_user)] {
            let Some(entry) = entry else { continue };
            let who = Who {
                account,
                end_user: user,
                enforce: self.mode == DetectionMode::Enforce && !entry.allowlisted,
                allowlisted: entry.allowlisted,
            };
            self.apply(&entry, &who, inspected, now_ms, record, &mut out)?;
        }
        Ok(out)
    }

    fn apply(
        &self,
        entry: &Entry,
        who: &Who<'_>,
        inspected: Option<&Inspected>,
        now_ms: i64,
        record: &mut RequestRecord,
        out: &mut Admission,
    ) -> Result<(), GatewayError> {
        let action = entry.action();
        if action == Action::Block {
            note(Action::Block, who, record);
            if who.enforce {
                return Err(GatewayError::AccountBlocked {
                    end_user: who.end_user.is_some(),
                });
            }
            return Ok(());
        }
        if action >= Action::Throttle {
            let rpm = self.actions.throttle_rpm;
            if let Err(wait_ms) = entry.admit(now_ms, rpm) {
                note(Action::Throttle, who, record);
                if who.enforce {
                    return Err(GatewayError::Throttled {
                        rpm,
                        retry_after_ms: wait_ms,
                        reset_at_ms: now_ms.saturating_add(i64::try_from(wait_ms).unwrap_or(0)),
                        end_user: who.end_user.is_some(),
                    });
                }
            }
        }
        if action == Action::Degrade {
            let Some(inspected) = inspected else {
                return Ok(());
            };
            let cap = self.actions.degrade_max_tokens;
            if let Some(violation) = degrade_violation(&inspected.params) {
                note(Action::Degrade, who, record);
                if who.enforce {
                    return Err(GatewayError::ParamNotAllowed(violation));
                }
            } else if inspected.params.max_tokens.is_none_or(|m| m > cap) {
                note(Action::Degrade, who, record);
                if who.enforce {
                    out.cap_output = Some(cap);
                }
            }
        }
        Ok(())
    }
}

/// A degraded request's body with its output cap lowered to `cap`, and the routing fields read
/// again (their places moved). Only that one field changes; an absent cap is added under the
/// name the API documents today (`max_completion_tokens` for chat, which OpenAI's reasoning
/// models require instead of `max_tokens`).
pub(crate) fn cap_output(
    bytes: Bytes,
    peek: BodyPeek,
    api: ViewApi,
    cap: u64,
) -> Result<(Bytes, BodyPeek), GatewayError> {
    let field = match api {
        ViewApi::OpenAiChat => "max_completion_tokens",
        ViewApi::OpenAiResponses => "max_output_tokens",
        ViewApi::AnthropicMessages => "max_tokens",
    };
    match body::cap_output_tokens(&bytes, field, cap)? {
        Some(capped) => {
            let peek = body::peek(&capped)?;
            Ok((capped, peek))
        }
        None => Ok((bytes, peek)),
    }
}

/// The first parameter a degraded request may not use: several choices, log probabilities,
/// reasoning output (the richest material for distillation).
fn degrade_violation(p: &Params) -> Option<ParamViolation> {
    let v = |param, reason, message: String| {
        Some(ParamViolation {
            param,
            reason,
            message,
        })
    };
    if let Some(n) = p.n.filter(|n| *n > 1) {
        return v(
            "n",
            "degraded_n",
            format!("n is {n}, but this account may ask for one choice at a time for now"),
        );
    }
    if p.logprobs || p.prompt_logprobs {
        return v(
            "logprobs",
            "degraded_logprobs",
            "log probabilities are not available to this account for now; send the request without logprobs".into(),
        );
    }
    if p.top_logprobs.is_some_and(|k| k > 0) {
        return v(
            "top_logprobs",
            "degraded_logprobs",
            "log probabilities are not available to this account for now; send the request without top_logprobs".into(),
        );
    }
    if p.reasoning_requested {
        return v(
            "reasoning",
            "degraded_reasoning",
            "reasoning output (thinking, reasoning, reasoning_effort) is not available to this account for now; send the request without it".into(),
        );
    }
    None
}

/// Counts, logs and records one action the gate took or, not enforcing, would have taken.
fn note(action: Action, who: &Who<'_>, record: &mut RequestRecord) {
    let enforced = if who.enforce { "true" } else { "false" };
    metrics::counter!(
        "moat_detect_actions_total",
        "action" => action.as_str(),
        "enforced" => enforced
    )
    .increment(1);
    let outcome = if who.enforce {
        action.as_str()
    } else {
        action.would()
    };
    let reason = match who.end_user {
        Some(u) => format!("end user {u} of account {}", who.account),
        None => format!("account {}", who.account),
    };
    record.decide("detection", outcome, Some(reason));
    record.flags.push(format!("detect:{outcome}"));
    tracing::info!(
        target: "moat::detect",
        request_id = %record.request_id,
        account = %who.account,
        end_user = %who.end_user.unwrap_or(""),
        action = action.as_str(),
        enforced = who.enforce,
        allowlisted = who.allowlisted,
        "detection gate"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn degraded_requests_may_not_ask_for_choices_logprobs_or_reasoning() {
        let reason = |p: Params| degrade_violation(&p).map(|v| (v.param, v.reason));
        assert_eq!(reason(Params::default()), None);
        assert_eq!(
            reason(Params {
                n: Some(1),
                top_logprobs: Some(0),
                max_tokens: Some(9_999),
                ..Params::default()
            }),
            None
        );
        assert_eq!(
            reason(Params {
                n: Some(2),
                ..Params::default()
            }),
            Some(("n", "degraded_n"))
        );
        assert_eq!(
            reason(Params {
                logprobs: true,
                ..Params::default()
            }),
            Some(("logprobs", "degraded_logprobs"))
        );
        assert_eq!(
            reason(Params {
                top_logprobs: Some(3),
                ..Params::default()
            }),
            Some(("top_logprobs", "degraded_logprobs"))
        );
        assert_eq!(
            reason(Params {
                reasoning_requested: true,
                ..Params::default()
            }),
            Some(("reasoning", "degraded_reasoning"))
        );
    }
}
