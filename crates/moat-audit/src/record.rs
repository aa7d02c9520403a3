//! One audit record: everything the gateway knows about a request it answered, or about a read of
//! the log itself.

use serde::{Deserialize, Serialize};

use crate::body::Body;

/// One entry of the append-only log. Fields serialize in declaration order, and that order is
/// part of the hash (see [`crate::chain`]): add new fields only at the end, before `prev_hash`,
/// and never reorder.
///
/// Unknown keys are ignored on reading, so an export line (which adds the trace keys of
/// [`crate::export`]) reads back as the record it came from; such keys carry no weight as evidence
/// because the hash does not cover them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, 1-based and gapless; assigned by [`crate::Chain::seal`].
    pub seq: u64,
    /// When the request arrived (for a read, when it was made), ms since the Unix epoch.
    pub ts_ms: i64,
    /// What the record is about.
    pub kind: RecordKind,
    /// The gateway's request id.
    pub request_id: String,
    /// Public id of the virtual key (for a read, of the admin key), once authenticated.
    pub key_id: Option<String>,
    /// The key's account.
    pub account: Option<String>,
    /// The key's workflow, when registered.
    pub workflow: Option<String>,
    /// The end user the request names.
    pub end_user: Option<String>,
    /// When the account was created, ms since the Unix epoch (the detector's `account_created`).
    pub account_created_ms: Option<i64>,
    /// Client address, as the pipeline resolved it (`forwarded.rs`).
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The API called: `openai.chat`, `openai.responses`, `openai.embeddings`,
    /// `anthropic.messages`, ...
    pub api: Option<String>,
    /// The model the client asked for.
    pub model: Option<String>,
    /// Where the request went, when it went anywhere.
    pub route: Option<Route>,
    /// Each pipeline stage's say, in pipeline order.
    pub decisions: Vec<Decision>,
    /// HTTP status answered (499 when the client hung up).
    pub status: u16,
    /// The error code answered, if any (`content_blocked`, `rate_limit_exceeded`, ...).
    pub error: Option<String>,
    /// Tokens as settled.
    pub usage: Option<Usage>,
    /// Cost charged, in micro-units of the budget currency.
    pub cost_micros: i64,
    /// How long it took.
    pub timings: Timings,
    /// The request body, by policy. Named `request_body` (not `request`) so an export can carry
    /// the detector trace's own `request` key beside it.
    pub request_body: Body,
    /// The response body, by policy (a stream is kept as its assembled events, by the writer).
    pub response_body: Body,
    /// For a `read` record: who read what.
    pub read: Option<ReadInfo>,
    /// For an `incident` record: what went wrong. Absent (not `null`) on other records, so
    /// records written before incidents existed keep their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// Hex hash of the previous record; 64 zeros for the first record of a log, or the
    /// checkpoint's hash for the first record kept after retention.
    pub prev_hash: String,
    /// Hex hash of this record (see [`crate::chain`]).
    pub hash: String,
}

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A request the gateway answered, allowed or refused.
    Request,
    /// Someone read audit bodies.
    Read,
    /// Something went wrong beside any one answer: a circuit breaker changed state, or a
    /// request broke its workflow's latency or cost objective.
    Incident,
}

impl RecordKind {
    /// The kind as stored and queried (`request`, `read`, `incident`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Request => "request",
            RecordKind::Read => "read",
            RecordKind::Incident => "incident",
        }
    }
}

/// What an `incident` record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Incident {
    /// The circuit breaker of one provider's model changed state. The record's `request_id` is
    /// the request whose attempt caused the change.
    Breaker {
        /// Provider name from the config.
        provider: String,
        /// The provider's model.
        model: String,
        /// The state it left.
        from: Circuit,
        /// The state it entered.
        to: Circuit,
    },
    /// A request took longer than its workflow's `max_latency`. The record's `request_id` and
    /// `workflow` name the request.
    LatencyObjective {
        /// The provider that answered (empty when none did).
        provider: String,
        /// The provider's model that answered.
        model: String,
        /// From arrival to the last byte, ms.
        value_ms: i64,
        /// The objective, ms.
        objective_ms: i64,
    },
    /// A request cost more than its workflow's `max_cost_per_request`.
    CostObjective {
        /// The provider that answered.
        provider: String,
        /// The provider's model that answered.
        model: String,
        /// What it cost, micro-units.
        value_micros: i64,
        /// The objective, micro-units.
        objective_micros: i64,
    },
}

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    /// Traffic flows.
    Closed,
    /// The target is skipped until it may be probed.
    Open,
    /// One probe is let through.
    HalfOpen,
}

/// The target that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Provider name from the config.
    pub provider: String,
    /// The model named in the provider's answer (or the target's model when it names none).
    pub response_model: String,
    /// Upstream attempts made, the answering one included.
    pub attempts: u32,
}

/// One pipeline stage's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// `auth`, `filter`, `detection`, `policy`, `limits`, `budget`, `route`, ...
    pub stage: String,
    /// `allow`, `flag`, `deny`, `throttle`, `degrade`, ...
    pub outcome: String,
    /// Why, in words, when the stage says.
    pub reason: Option<String>,
}

/// Tokens as settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
}

/// Durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// From arrival to the last byte answered, ms.
    pub total_ms: u64,
    /// Spent waiting on upstreams, ms, when any was called.
    pub upstream_ms: Option<u64>,
}

/// Who read audit bodies, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadInfo {
    /// The admin key's id.
    pub reader: String,
    /// The role it read with (`admin`, `security`, `auditor`, `viewer`).
    pub role: String,
    /// The query as asked (path and query string, or the CLI's arguments).
    pub query: String,
    /// The records returned, as inclusive runs of seq ([`SeqRange::runs`]).
    pub records: Vec<SeqRange>,
}

/// An inclusive run of seq numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    /// First seq of the run.
    pub from: u64,
    /// Last seq of the run.
    pub to: u64,
}

impl SeqRange {
    /// Folds seq numbers, in the order given, into runs of consecutive ones.
    pub fn runs(seqs: impl IntoIterator<Item = u64>) -> Vec<SeqRange> {
        let mut runs: Vec<SeqRange> = Vec::new();
        for seq in seqs {
            match runs.last_mut() {
                Some(run) if run.to.checked_add(1) == Some(seq) => run.to = seq,
                _ => runs.push(SeqRange { from: seq, to: seq }),
            }
        }
        runs
    }
}

impl AuditRecord {
    /// A request record with every optional field empty and both bodies omitted, for the writer
    /// to fill in; `seq`, `prev_hash` and `hash` are left for [`crate::Chain::seal`].
    pub fn request(ts_ms: i64, request_id: impl Into<String>, status: u16) -> AuditRecord {
        AuditRecord {
            seq: 0,
            ts_ms,
            kind: RecordKind::Request,
            request_id: request_id.into(),
            key_id: None,
            account: None,
            workflow: None,
            end_user: None,
            account_created_ms: None,
            source_ip: None,
            user_agent: None,
            api: None,
            model: None,
            route: None,
            decisions: Vec::new(),
            status,
            error: None,
            usage: None,
            cost_micros: 0,
            timings: Timings {
                total_ms: 0,
                upstream_ms: None,
            },
            request_body: Body::Omitted,
            response_body: Body::Omitted,
            read: None,
            incident: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// A read record: `reader` read `records` with `role`.
    pub fn read(ts_ms: i64, request_id: impl Into<String>, read: ReadInfo) -> AuditRecord {
        AuditRecord {
            kind: RecordKind::Read,
            key_id: Some(read.reader.clone()),
            read: Some(read),
            ..AuditRecord::request(ts_ms, request_id, 200)
        }
    }

    /// An incident record at `ts_ms`, caused by request `request_id`. Its `status` is 0: an
    /// incident answers nothing itself.
    pub fn incident(ts_ms: i64, request_id: impl Into<String>, incident: Incident) -> AuditRecord {
        AuditRecord {
            kind: RecordKind::Incident,
            incident: Some(incident),
            ..AuditRecord::request(ts_ms, request_id, 0)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn runs_fold_consecutive_seqs() {
        assert_eq!(
            SeqRange::runs([3, 4, 5, 9, 11, 12, 2]),
            vec![
                SeqRange { from: 3, to: 5 },
                SeqRange { from: 9, to: 9 },
                SeqRange { from: 11, to: 12 },
                SeqRange { from: 2, to: 2 },
            ]
        );
        assert!(SeqRange::runs([]).is_empty());
    }

    #[test]
    fn records_without_an_incident_serialize_as_before() {
        let r = AuditRecord::request(1, "r", 200);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("incident"), "{json}");
        assert!(json.contains(r#""read":null,"prev_hash""#), "{json}");
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn incidents_round_trip_with_their_type() {
        let r = AuditRecord::incident(
            5,
            "req-1",
            Incident::Breaker {
                provider: "openai".into(),
                model: "gpt-4o".into(),
                from: Circuit::Closed,
                to: Circuit::Open,
            },
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""incident":{"type":"breaker","provider":"openai","model":"gpt-4o","from":"closed","to":"open"}"#),
            "{json}"
        );
        assert!(json.contains(r#""kind":"incident""#), "{json}");
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.status, 0);
    }

    #[test]
    fn kinds_are_snake_case() {
        assert_eq!(
            serde_json::to_string(&RecordKind::Read).unwrap(),
            "\"read\""
        );
    }
}
