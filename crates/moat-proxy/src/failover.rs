//! Failover policy shared by all requests: the retry budget, backoff, timeouts by criticality,
//! which upstream failures a retry or another target may fix, and the incidents and metrics of
//! breakers and fallbacks.
//!
//! The loop that applies it to one request is `forward::forward`; the breakers themselves live on
//! the route's targets (`routing::Target::breaker`), one per provider and model.

use crate::error::GatewayError;
use crate::routing::Target;
use crate::telemetry::RequestRecord;
use moat_config::{Criticality, FailoverConfig, Timeouts};
use moat_core::Clock;
use moat_policy::resilience::{Backoff, BreakerState, RetryBudget, Transition};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the retry budget remembers requests (tower's default, too).
const BUDGET_WINDOW_MS: u64 = 10_000;

/// The failover settings and the gateway-wide retry budget.
pub struct Failover {
    config: FailoverConfig,
    clock: Arc<dyn Clock>,
    budget: RetryBudget,
    backoff: Backoff,
}

impl Failover {
    /// Builds the policy from `[failover]`, reading time from `clock`.
    pub fn new(config: &FailoverConfig, clock: Arc<dyn Clock>) -> Failover {
        let ratio = f64::from(config.retry_budget_percent) / 100.0;
        Failover {
            budget: RetryBudget::new(BUDGET_WINDOW_MS, config.retry_budget_min_per_second, ratio),
            backoff: Backoff {
                base_ms: millis(config.backoff_base),
                max_ms: millis(config.backoff_max),
            },
            config: config.clone(),
            clock,
        }
    }

    /// Now, Unix milliseconds, from the gateway's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Records one original request in the retry budget.
    pub fn deposit(&self) {
        self.budget.deposit(self.now_ms());
    }

    /// Asks the budget for one more attempt (a retry or a fallback); `false` means stop here.
    pub fn withdraw(&self) -> bool {
        self.budget.withdraw(self.now_ms())
    }

    /// Retries of one target before moving to the next.
    pub fn retries(&self) -> u32 {
        self.config.retries
    }

    /// The wait before retry number `retry` (1 is the first), never shorter than the upstream's
    /// hint; `None` when the hint is longer than `max_retry_wait`, so the next target should be
    /// tried instead.
    pub fn delay(&self, retry: u32, hint_ms: Option<u64>) -> Option<Duration> {
        if hint_ms.is_some_and(|h| h > millis(self.config.max_retry_wait)) {
            return None;
        }
        let ms = self
            .backoff
            .delay_ms(retry, hint_ms, &mut rand::thread_rng());
        Some(Duration::from_millis(ms))
    }

    /// The limits of one request of `criticality` that arrived at `started`.
    pub fn limits(&self, criticality: Criticality, started: std::time::Instant) -> Limits {
        let t = *self.config.timeouts(criticality);
        Limits {
            timeouts: t,
            deadline: t.total.map(|total| Instant::from_std(started) + total),
        }
    }
}

/// The timeouts one request runs under: its criticality's (each overriding the provider's own
/// when set) and the deadline of the whole request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The criticality's timeouts; `None` fields keep the provider's.
    pub timeouts: Timeouts,
    /// When the whole request, retries and fallbacks included, must be over.
    pub deadline: Option<Instant>,
}

impl Limits {
    /// Whether the request's total time is used up.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether waiting `delay` would end past the deadline.
    pub fn would_expire(&self, delay: Duration) -> bool {
        self.deadline.is_some_and(|d| Instant::now() + delay >= d)
    }

    /// The earlier of `at` and the deadline.
    pub fn bound(&self, at: Instant) -> Instant {
        self.deadline.map_or(at, |d| d.min(at))
    }

    /// The 504 for a request past its total time.
    pub fn total_exceeded(&self) -> GatewayError {
        let ms = self.timeouts.total.map_or(0, |t| t.as_millis());
        GatewayError::UpstreamUnavailable {
            message: format!("no answer within the request's time limit of {ms} ms"),
            timeout: true,
        }
    }
}

/// What a failed attempt means for the rest of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Unreachable, reset, timed out before the first byte, 408, 409, 429 or 5xx: the same
    /// target later, or another one, may succeed. Counts against the target's breaker.
    Retryable,
    /// The provider refused moat's credentials (401/403): retrying the same target cannot help
    /// (its key is wrong or lacks a permission), another provider may. Counts against the
    /// target's breaker, so a misconfigured provider is skipped until it is fixed.
    NextTarget,
    /// The request is too long for the model's context: only a larger model helps.
    ContextLength,
    /// The provider refused the content: answered as is, never retried.
    ContentPolicy,
    /// The target cannot honour a field of the request across protocols (`logprobs` to an
    /// Anthropic model): another target may. Not the target's fault, so its breaker is untouched.
    Unhonoured,
    /// Anything else (the client's request, or moat's own failure): answered as is.
    Final,
}

impl Class {
    /// The metric label of an attempt that ended this way.
    pub fn label(self) -> &'static str {
        match self {
            Class::Retryable => "retryable_error",
            Class::NextTarget => "upstream_auth_failed",
            Class::ContextLength => "context_length",
            Class::ContentPolicy => "content_policy",
            Class::Unhonoured => "unhonoured_field",
            Class::Final => "error",
        }
    }
}

/// Sorts a failed attempt's error. Decided from the status and the provider's error body, never
/// from moat's own message strings.
pub fn classify(error: &GatewayError) -> Class {
    match error {
        GatewayError::UpstreamUnavailable { .. } => Class::Retryable,
        GatewayError::UpstreamAuth { .. } => Class::NextTarget,
        GatewayError::Translate(e) if e.refused_field().is_some() => Class::Unhonoured,
        GatewayError::UpstreamStatus { status, body, .. } => {
            let status = *status;
            if (400..500).contains(&status) {
                let reason = ErrorReason::of(body);
                if reason.is_content_policy() {
                    return Class::ContentPolicy;
                }
                if reason.is_context_length() {
                    return Class::ContextLength;
                }
            }
            match status {
                408 | 409 | 429 | 500..=599 => Class::Retryable,
                _ => Class::Final,
            }
        }
        _ => Class::Final,
    }
}

/// The code and message of a provider's error body, in either protocol's envelope
/// (`{"error": {"code", "message"}}` or `{"type": "error", "error": {"type", "message"}}`).
struct ErrorReason {
    code: String,
    message: String,
}

impl ErrorReason {
    fn of(body: &[u8]) -> ErrorReason {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error = parsed.get("error").unwrap_or(&parsed);
        let text = |key: &str| {
            error
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        ErrorReason {
            code: text("code"),
            message: match error.get("message") {
                Some(_) => text("message"),
                // A body that is not an error envelope: its text is all there is to go on.
                None => String::from_utf8_lossy(body).to_ascii_lowercase(),
            },
        }
    }

    /// OpenAI's `context_length_exceeded` code (chat and Responses); OpenAI-compatible servers'
    /// "maximum context length is N tokens"; Anthropic's "prompt is too long: N tokens > M
    /// maximum" and "input length and `max_tokens` exceed context limit".
    fn is_context_length(&self) -> bool {
        const MESSAGES: [&str; 5] = [
            "prompt is too long",
            "exceed context limit",
            "maximum context length",
            "exceeds the context window",
            "context window exceeded",
        ];
        self.code == "context_length_exceeded" || MESSAGES.iter().any(|m| self.message.contains(m))
    }

    /// OpenAI's `content_policy_violation`, Azure's `content_filter`, their "safety system" and
    /// "content management policy" texts; Anthropic's "content filtering policy".
    fn is_content_policy(&self) -> bool {
        const MESSAGES: [&str; 3] = [
            "content filtering policy",
            "safety system",
            "content management policy",
        ];
        matches!(
            self.code.as_str(),
            "content_policy_violation" | "content_filter"
        ) || MESSAGES.iter().any(|m| self.message.contains(m))
    }
}

/// Logs and counts a breaker's change of state as an incident, and appends it to the audit log
/// as caused by `record`'s request at `now_ms`.
pub fn breaker_transition(
    target: &Target,
    transition: Transition,
    record: &RequestRecord,
    now_ms: i64,
) {
    let to = state_label(transition.to);
    metrics::counter!(
        "moat_breaker_transitions_total",
        "provider" => target.provider.name.to_string(),
        "model" => target.model.to_string(),
        "to" => to
    )
    .increment(1);
    let what = match (transition.from, transition.to) {
        (BreakerState::HalfOpen, BreakerState::Open) => "circuit breaker probe failed; reopened",
        (_, BreakerState::Open) => "circuit breaker opened; target skipped until it recovers",
        (_, BreakerState::Closed) => "circuit breaker closed; target recovered",
        (_, BreakerState::HalfOpen) => "circuit breaker half-open; probing target",
    };
    tracing::warn!(
        target: "moat::incident",
        provider = %target.provider.name,
        model = %target.model,
        from = state_label(transition.from),
        to,
        request_id = %record.request_id,
        "{what}"
    );
    record.incident(
        now_ms,
        moat_audit::Incident::Breaker {
            provider: target.provider.name.to_string(),
            model: target.model.to_string(),
            from: circuit(transition.from),
            to: circuit(transition.to),
        },
    );
}

fn circuit(state: BreakerState) -> moat_audit::Circuit {
    match state {
        BreakerState::Closed => moat_audit::Circuit::Closed,
        BreakerState::Open => moat_audit::Circuit::Open,
        BreakerState::HalfOpen => moat_audit::Circuit::HalfOpen,
    }
}

/// Counts one attempt on `target` by how it ended (`success` or a [`Class`] label).
pub fn attempt_outcome(target: &Target, outcome: &'static str) {
    metrics::counter!(
        "moat_upstream_attempts_total",
        "provider" => target.provider.name.to_string(),
        "outcome" => outcome
    )
    .increment(1);
}

/// Counts a target skipped because its breaker is open.
pub fn skipped(target: &Target, retry_in_ms: u64) {
    metrics::counter!(
        "moat_breaker_skips_total",
        "provider" => target.provider.name.to_string(),
        "model" => target.model.to_string()
    )
    .increment(1);
    tracing::debug!(provider = %target.provider.name, model = %target.model, retry_in_ms, "target skipped: circuit breaker open");
}

/// Counts and logs a request field `target` cannot honour across protocols
/// (`moat_translation_refused_total{field, provider}`); the next target, if any, is tried.
pub fn unhonoured(target: &Target, error: &GatewayError) {
    let field = match error {
        GatewayError::Translate(e) => e.refused_field().unwrap_or_default(),
        _ => String::new(),
    };
    tracing::info!(provider = %target.provider.name, model = %target.model, field = %field, "request field cannot be honoured by this target; trying the next");
    metrics::counter!(
        "moat_translation_refused_total",
        "field" => field,
        "provider" => target.provider.name.to_string()
    )
    .increment(1);
}

/// Counts a move from one target to another after a failure or a skip.
pub fn fallback(from: &Target, to: &Target) {
    metrics::counter!(
        "moat_fallbacks_total",
        "from_provider" => from.provider.name.to_string(),
        "to_provider" => to.provider.name.to_string()
    )
    .increment(1);
    tracing::info!(
        from_provider = %from.provider.name,
        from_model = %from.model,
        to_provider = %to.provider.name,
        to_model = %to.model,
        "falling back to the next target"
    );
}

fn state_label(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use moat_core::{ManualClock, Protocol};

    fn status(status: u16, body: &str) -> GatewayError {
        GatewayError::UpstreamStatus {
            provider: "p".into(),
            status,
            body: Bytes::from(body.to_string()),
            protocol: Protocol::OpenAi,
            retry_after: None,
        }
    }

    #[test]
    fn transient_failures_are_retryable_and_client_errors_are_not() {
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert_eq!(classify(&status(s, "")), Class::Retryable, "{s}");
        }
        for s in [400, 404, 413, 422] {
            assert_eq!(classify(&status(s, "{}")), Class::Final, "{s}");
        }
        let unreachable = |timeout| GatewayError::UpstreamUnavailable {
            message: String::new(),
            timeout,
        };
        assert_eq!(classify(&unreachable(true)), Class::Retryable);
        assert_eq!(classify(&unreachable(false)), Class::Retryable);
        assert_eq!(classify(&GatewayError::invalid("x", None)), Class::Final);
        let refused = |status| GatewayError::UpstreamAuth {
            provider: "p".into(),
            status,
        };
        assert_eq!(classify(&refused(401)), Class::NextTarget);
        assert_eq!(classify(&refused(403)), Class::NextTarget);
    }

    #[test]
    fn context_length_errors_of_both_providers_are_recognised() {
        let openai = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        let responses = r#"{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}"#;
        let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        let anthropic_max = r#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 197000 + 8192 > 200000, decrease input length or `max_tokens` and try again"}}"#;
        let vllm = r#"{"object":"error","message":"This model's maximum context length is 4096 tokens.","type":"BadRequestError","code":400}"#;
        for body in [openai, responses, anthropic, anthropic_max, vllm] {
            assert_eq!(classify(&status(400, body)), Class::ContextLength, "{body}");
        }
        // The same words in a success-class or server error are not a context error.
        assert_eq!(classify(&status(500, anthropic)), Class::Retryable);
        assert_eq!(
            classify(&status(400, r#"{"error":{"message":"bad temperature"}}"#)),
            Class::Final
        );
    }

    #[test]
    fn content_policy_refusals_are_recognised_and_final() {
        let openai = r#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#;
        let azure = r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}}"#;
        let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Output blocked by content filtering policy"}}"#;
        for body in [openai, azure, anthropic] {
            assert_eq!(classify(&status(400, body)), Class::ContentPolicy, "{body}");
        }
    }

    #[test]
    fn long_hints_move_on_and_short_ones_are_a_floor() {
        let config = FailoverConfig {
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            max_retry_wait: Duration::from_secs(2),
            ..FailoverConfig::default()
        };
        let f = Failover::new(&config, Arc::new(ManualClock::new(0)));
        assert_eq!(f.delay(1, Some(2_001)), None);
        assert_eq!(f.delay(1, Some(1_500)), Some(Duration::from_millis(1_500)));
        for retry in 1..5 {
            assert!(f.delay(retry, None).unwrap() <= Duration::from_millis(40));
        }
    }

    #[test]
    fn the_budget_allows_a_trickle_and_a_share_of_traffic() {
        let config = FailoverConfig {
            retry_budget_percent: 50,
            retry_budget_min_per_second: 0,
            ..FailoverConfig::default()
        };
        let clock = Arc::new(ManualClock::new(1_000));
        let f = Failover::new(&config, clock);
        assert!(!f.withdraw());
        f.deposit();
        f.deposit();
        assert!(f.withdraw());
        assert!(!f.withdraw());
    }
}
