//! A finished request as an audit record: who, what, which decisions, where it went, what it
//! cost, and its bodies by the workflow's sensitivity policy.

use crate::telemetry::RequestRecord;
use bytes::Bytes;
use moat_audit::{AuditRecord, Body, Decision, Route, Timings, Usage};
use moat_config::BodyPolicy;
use std::time::Duration;

/// What the pipeline keeps on the request record for its audit record.
#[derive(Default)]
pub struct AuditInput {
    /// When the request arrived, Unix ms (the injected clock).
    pub ts_ms: i64,
    /// The client's address as resolved.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The end user the request names.
    pub end_user: Option<String>,
    /// The request body as received.
    pub request_body: Option<Bytes>,
    /// The answer's body, for a buffered answer.
    pub response_body: Option<Bytes>,
    /// What to keep of the bodies.
    pub policy: Option<BodyPolicy>,
}

/// The record of `r`, finished with `status`, `usage` and `error` after `elapsed`.
pub(crate) fn build(
    r: &mut RequestRecord,
    status: u16,
    usage: Option<&moat_protocol::usage::Usage>,
    error: Option<&str>,
    elapsed: Duration,
) -> AuditRecord {
    let input = std::mem::take(&mut r.audit_input);
    let mut out = AuditRecord::request(input.ts_ms, r.request_id.to_string(), status);
    out.key_id = r.key_id.clone();
    out.account = r.account.clone();
    out.workflow = r.workflow.clone();
    out.end_user = input.end_user;
    out.source_ip = input.source_ip;
    out.user_agent = input.user_agent;
    out.api = api(r.operation).map(str::to_string);
    out.model = r.model.clone();
    out.route = r.provider.as_ref().map(|p| Route {
        provider: p.to_string(),
        response_model: r.response_model.as_deref().unwrap_or("").to_string(),
        attempts: r.attempts,
    });
    out.decisions = r
        .decisions
        .iter()
        .map(|d| Decision {
            stage: d.stage.to_string(),
            outcome: d.outcome.to_string(),
            reason: d.reason.clone(),
        })
        .collect();
    out.error = error.map(str::to_string);
    out.usage = usage.map(|u| Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
    });
    out.cost_micros = r.cost.0;
    out.timings = Timings {
        total_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        upstream_ms: None,
    };
    // A request refused before its key was known keeps only the digests of its bodies.
    let policy = input.policy.unwrap_or(BodyPolicy::Hash);
    out.request_body = body(input.request_body.as_deref(), policy);
    out.response_body = body(input.response_body.as_deref(), policy);
    out
}

fn body(bytes: Option<&[u8]>, policy: BodyPolicy) -> Body {
    match (bytes, policy) {
        (None, _) | (_, BodyPolicy::None) => Body::Omitted,
        (Some(b), BodyPolicy::Full) => Body::full(b),
        (Some(b), BodyPolicy::Hash) => Body::digest(b),
    }
}

/// The trace format's `api` of an operation.
fn api(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "chat" => "openai.chat",
        "responses" => "openai.responses",
        "embeddings" => "openai.embeddings",
        "messages" => "anthropic.messages",
        "count_tokens" => "anthropic.count_tokens",
        _ => return None,
    })
}
