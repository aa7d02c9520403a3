//! A finished request as an audit record: who, what, which decisions, where it went, what it
//! cost, and its bodies by the workflow's sensitivity policy.

use crate::telemetry::RequestRecord;
use bytes::Bytes;
use moat_audit::{AuditKeys, AuditRecord, Body, Decision, Route, Timings, Usage};
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
    /// The answer's body: a buffered answer, or what a stream sent.
    pub response_body: Option<Bytes>,
    /// The SHA-256 (hex) of a streamed answer too long to keep whole.
    pub response_digest: Option<String>,
    /// What to keep of the bodies.
    pub policy: Option<BodyPolicy>,
}

/// The record of `r`, finished with `status`, `usage` and `error` after `elapsed`.
pub(crate) fn build(
    keys: &AuditKeys,
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
    out.request_body = body(keys, input.request_body.as_deref(), policy);
    out.response_body = match (input.response_body.as_deref(), input.response_digest) {
        (None, Some(sha256)) if policy != BodyPolicy::None => {
            keys.body_digest_of_sha256(&sha256).unwrap_or(Body::Omitted)
        }
        (bytes, _) => body(keys, bytes, policy),
    };
    out
}

/// A body by `policy`; digests are keyed, so an auditor cannot confirm a guessed body.
fn body(keys: &AuditKeys, bytes: Option<&[u8]>, policy: BodyPolicy) -> Body {
    match (bytes, policy) {
        (None, _) | (_, BodyPolicy::None) => Body::Omitted,
        (Some(b), BodyPolicy::Full) => Body::full(b),
        (Some(b), BodyPolicy::Hash) => keys.body_digest(b),
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

/// The most of a streamed answer an audit record keeps whole; past it, only its digest.
pub const CAPTURE_MAX: usize = 8 << 20;

/// What a stream sent its client, gathered for the audit record: kept whole up to
/// [`CAPTURE_MAX`] and hashed throughout.
#[derive(Default)]
pub struct Capture {
    buf: bytes::BytesMut,
    hasher: sha2::Sha256,
    over: bool,
}

impl Capture {
    /// Adds bytes the client received.
    pub fn push(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.hasher.update(bytes);
        if !self.over {
            if self.buf.len() + bytes.len() > CAPTURE_MAX {
                self.over = true;
                self.buf = bytes::BytesMut::new();
            } else {
                self.buf.extend_from_slice(bytes);
            }
        }
    }

    /// Hands the capture to the record's audit input: the bytes, or only their digest when
    /// the stream was longer than [`CAPTURE_MAX`].
    pub fn finish_into(self, input: &mut AuditInput) {
        use sha2::Digest;
        if self.over {
            let digest = self.hasher.finalize();
            input.response_digest = Some(digest.iter().map(|b| format!("{b:02x}")).collect());
        } else {
            input.response_body = Some(self.buf.freeze());
        }
    }
}

/// Whether the audit record of `r` keeps response bodies (so a stream should be captured).
pub(crate) fn keeps_bodies(r: &RequestRecord) -> bool {
    r.audit.is_some() && r.audit_input.policy.is_some_and(|p| p != BodyPolicy::None)
}
