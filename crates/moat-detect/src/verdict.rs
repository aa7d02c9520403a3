//! Verdicts: a score, whether flagged and since when, the top reasons in words and the evidence.

use serde::Serialize;

use crate::account::Track;
use crate::reason::Reason;

/// What the detector concludes about one account or one end user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The account.
    pub account: String,
    /// The end user behind the account's key, for end-user verdicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// Evidence on a 0..1 scale; 0.5 is the threshold.
    pub score: f64,
    /// Whether it ever crossed the threshold.
    pub flagged: bool,
    /// When it first crossed, ms since the Unix epoch (serialised as RFC 3339 `first_flagged_ts`).
    #[serde(
        rename = "first_flagged_ts",
        serialize_with = "rfc3339",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_flagged_ms: Option<i64>,
    /// The 1-based count of its requests at which it first crossed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_flagged_request: Option<u32>,
    /// The cluster of flagged accounts it was joined to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Accounts in that cluster.
    #[serde(skip_serializing_if = "is_zero")]
    pub cluster_size: u32,
    /// The top reasons, in words.
    pub reasons: Vec<String>,
    /// What a reviewer needs to check the verdict.
    pub evidence: Evidence,
}

fn rfc3339<S: serde::Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms.and_then(crate::trace::format_rfc3339_ms) {
        Some(ts) => s.serialize_str(&ts),
        None => s.serialize_none(),
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The evidence bundle behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Request ids of the strongest requests before the flag, then the flagging request.
    pub request_ids: Vec<String>,
    /// Requests seen.
    pub requests: u32,
    /// Evidence per reason code (the CUSUM's positive parts).
    pub contributions: Vec<(String, f64)>,
    /// Counters: single-turn, elicitation, repeats, logit probes, system-prompt probes, requests
    /// with a system prompt, distinct system prompts, distinct networks.
    pub counts: Counts,
}

/// Counters behind the reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    /// Single-turn requests.
    pub single_turn: u32,
    /// Requests with a reasoning cue.
    pub elicitation: u32,
    /// Near-duplicate re-sends.
    pub repeats: u32,
    /// Logit-extraction probes.
    pub logit_probes: u32,
    /// System-prompt probes.
    pub system_prompt_probes: u32,
    /// Requests with a system prompt.
    pub with_system_prompt: u32,
    /// Distinct system prompts.
    pub distinct_system_prompts: u32,
    /// Distinct /24 or /48 networks.
    pub distinct_networks: u32,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens.
    pub input_tokens: u64,
}

impl Evidence {
    pub(crate) fn of(t: &Track, ranked: &[(Reason, f32)]) -> Self {
        Evidence {
            request_ids: t.evidence.iter().map(|s| s.to_string()).collect(),
            requests: t.requests,
            contributions: ranked
                .iter()
                .map(|(r, c)| {
                    (
                        r.code().to_string(),
                        (f64::from(*c) * 100.0).round() / 100.0,
                    )
                })
                .collect(),
            counts: Counts {
                single_turn: t.single_turn,
                elicitation: t.elicit,
                repeats: t.repeats,
                logit_probes: t.logit_probes,
                system_prompt_probes: t.probes,
                with_system_prompt: t.with_system,
                distinct_system_prompts: t.distinct_systems(),
                distinct_networks: t.distinct_nets(),
                output_tokens: t.output_tokens,
                input_tokens: t.input_tokens,
            },
        }
    }
}

fn pct(part: u32, whole: u32) -> u32 {
    if whole == 0 {
        0
    } else {
        (u64::from(part) * 100 / u64::from(whole)) as u32
    }
}

/// One reason in words, with the account's own numbers.
pub(crate) fn describe(r: Reason, t: &Track) -> String {
    let n = t.requests;
    match r {
        Reason::Elicit => format!(
            "asks for step-by-step reasoning in {}% of {n} requests",
            pct(t.elicit, n)
        ),
        Reason::Grader => "asks the model to grade answers or rewrite prompts".to_string(),
        Reason::SingleTurn => format!("{}% of requests are single-turn", pct(t.single_turn, n)),
        Reason::SystemRotation => {
            format!("rotates {} different system prompts", t.distinct_systems())
        }
        Reason::LongOutput => format!(
            "outputs {:.1}x its input tokens",
            t.output_tokens as f64 / t.input_tokens.max(1) as f64
        ),
        Reason::IpChurn => format!(
            "comes from {} different networks in {n} requests",
            t.distinct_nets()
        ),
        Reason::NewAccount => "account is new".to_string(),
        Reason::SignupBurst => "account was created in a burst of sign-ups".to_string(),
        Reason::Volume => "sustained high volume of novel prompts".to_string(),
        Reason::TaintedTemplate => {
            "uses system prompts or templates shared with flagged accounts".to_string()
        }
        Reason::TaintedNetwork => "comes from networks shared with flagged accounts".to_string(),
        Reason::LogitProbe => format!(
            "{} logit-extraction probes (logit_bias with logprobs or one-token answers)",
            t.logit_probes
        ),
        Reason::Probe => format!("{} requests probe for the system prompt", t.probes),
        Reason::OpenToolLoops => format!(
            "declares tools in {} requests but never returns a tool result",
            t.tool_opens
        ),
        Reason::FlaggedEndUsers => format!(
            "{} end users behind this key flagged for harvesting",
            t.flagged_end_users
        ),
    }
}
