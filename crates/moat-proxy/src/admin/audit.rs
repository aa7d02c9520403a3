//! The audit query API: records of the hash-chained log, shaped by the caller's role, and every
//! read of bodies itself recorded in the log.
//!
//! - `admin`, `security`: each record is the stored document byte for byte, so its `hash` and
//!   `prev_hash` can be checked against the chain.
//! - `auditor`: every string inside a kept body (`request_body.full`, `response_body.full`) goes
//!   through `moat_audit::redact_json`; the personal metadata fields (`source_ip`, `end_user`)
//!   become keyed pseudonyms (`anon_` + 16 hex digits, `AuditKeys::pseudonym`: equal values
//!   correlate, the value is hidden; redacted outright without an audit log); the record gains `"redacted": true`, because its hash covers the original
//!   values and no longer verifies. Digests and other metadata are left as stored.
//! - `viewer`: `request_body` and `response_body` are removed (not replaced by
//!   `{"omitted": true}`, which would claim the log kept no body), the personal metadata fields
//!   are pseudonymised as for the auditor, and the record gains `"redacted": true`.
//!
//! An answer that shows at least one kept body (admin, security, auditor) appends a `read`
//! record before it is sent (`audit.durability = "sync"`: committed before it is sent) naming
//! the admin key, its role, the path and query, and the seqs returned. Viewer answers are not
//! recorded: they show nothing the log does not also show a viewer of `read` records, and a
//! dashboard polling the tail would otherwise fill the log with reads of reads. Answers showing
//! no body (only digests, or only `read` records) are not recorded either, so tailing the log
//! does not feed on its own read records.

use super::{error, Caller};
use crate::state::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode, Uri};
use moat_audit::{AuditRecord, ReadInfo, SeqRange};
use moat_store::{AdminRole, AuditQuery, StoredAudit};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Arc;

/// Records per page when the query names no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// The most records one page returns, whatever `limit` asks.
pub(crate) const MAX_LIMIT: usize = 1000;

/// `GET /admin/v1/audit` query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    /// Records made at or after this time (RFC 3339).
    from: Option<String>,
    /// Records made before this time (RFC 3339, exclusive).
    to: Option<String>,
    key_id: Option<String>,
    account: Option<String>,
    workflow: Option<String>,
    status: Option<u16>,
    /// A decision tag, `stage:outcome` (`filter:deny`, `detection:throttle`).
    decision: Option<String>,
    /// `request` or `read`.
    kind: Option<String>,
    /// The cursor: the previous page's `next_after_seq`.
    after_seq: Option<u64>,
    /// Records per page, 1 to [`MAX_LIMIT`] (larger values are capped).
    limit: Option<usize>,
}

/// One page of records.
#[derive(Serialize)]
struct Page {
    object: &'static str,
    /// The role the records are shaped for.
    role: &'static str,
    /// Whether the records were changed from what the chain holds (auditor, viewer).
    redacted: bool,
    data: Vec<Box<RawValue>>,
    /// Pass as `after_seq` for the next page; `null` when this page is the last.
    next_after_seq: Option<u64>,
}

/// `GET /admin/v1/audit?from=&to=&key_id=&account=&workflow=&status=&decision=&kind=&after_seq=&limit=`:
/// matching records in seq order, shaped by role, paged by seq.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => return bad_request(&e.body_text()),
    };
    let mut query = match to_query(params) {
        Ok(q) => q,
        Err(message) => return bad_request(&message),
    };
    let Some(store) = state.audit_store.clone() else {
        return no_log();
    };
    let limit = query.limit;
    // One more than asked tells whether another page follows.
    query.limit = limit.saturating_add(1);
    let mut rows = match store.query_audit(&query).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&e),
    };
    let next_after_seq = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    let shaped = match shape_all(&rows, caller.role, pseudonyms(&state)) {
        Ok(s) => s,
        Err(seq) => return unreadable(seq),
    };
    let request_id = record_read(&state, &caller, &uri, &shaped).await;
    let page = Page {
        object: "list",
        role: caller.role.as_str(),
        redacted: redacts(caller.role),
        data: shaped.into_iter().map(|s| s.json).collect(),
        next_after_seq,
    };
    answer(&page, request_id)
}

/// `GET /admin/v1/audit/{seq}`: one record, shaped by role; 404 if the log does not keep it.
pub(crate) async fn one(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    seq: Result<Path<u64>, PathRejection>,
) -> Response {
    let Ok(Path(seq)) = seq else {
        return bad_request("the record's seq must be a positive integer");
    };
    let Some(store) = state.audit_store.clone() else {
        return no_log();
    };
    let rows = match store.audit_range(seq, seq, 1).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&e),
    };
    if rows.is_empty() {
        let message = format!("the audit log keeps no record {seq}");
        return error(StatusCode::NOT_FOUND, "not_found_error", &message);
    }
    let mut shaped = match shape_all(&rows, caller.role, pseudonyms(&state)) {
        Ok(s) => s,
        Err(seq) => return unreadable(seq),
    };
    let request_id = record_read(&state, &caller, &uri, &shaped).await;
    match shaped.pop() {
        Some(record) => answer(&record.json, request_id),
        None => error(StatusCode::NOT_FOUND, "not_found_error", "no such record"),
    }
}

/// A record as one role sees it.
struct Shaped {
    seq: u64,
    /// Whether it shows a kept body (redacted or not).
    shows_body: bool,
    json: Box<RawValue>,
}

/// Whether `role` sees records other than the chain holds them.
fn redacts(role: AdminRole) -> bool {
    matches!(role, AdminRole::Auditor | AdminRole::Viewer)
}

const BODIES: [&str; 2] = ["request_body", "response_body"];
/// Metadata that may identify a person: redacted for the roles that see redacted records.
const PERSONAL: [&str; 2] = ["source_ip", "end_user"];

/// The key of `end_user` and `source_ip` pseudonyms: the audit log's.
fn pseudonyms(state: &AppState) -> Option<&moat_audit::AuditKeys> {
    state.audit.as_deref().map(crate::audit::AuditLog::keys)
}

/// Every row shaped for `role`, or the seq of the first that cannot be read.
fn shape_all(
    rows: &[StoredAudit],
    role: AdminRole,
    pseudonyms: Option<&moat_audit::AuditKeys>,
) -> Result<Vec<Shaped>, u64> {
    rows.iter()
        .map(|row| {
            shape(row, role, pseudonyms).map_err(|e| {
                tracing::error!(seq = row.seq, error = %e, "an audit record cannot be read");
                row.seq
            })
        })
        .collect()
}

fn unreadable(seq: u64) -> Response {
    let message = format!("audit record {seq} cannot be read");
    error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &message)
}

/// `row` as `role` sees it (see the module's doc).
fn shape(
    row: &StoredAudit,
    role: AdminRole,
    pseudonyms: Option<&moat_audit::AuditKeys>,
) -> Result<Shaped, serde_json::Error> {
    if !redacts(role) {
        // Parsed only to tell whether it holds a body; what is sent is the stored text.
        let record: AuditRecord = serde_json::from_str(&row.json)?;
        let shows_body =
            record.request_body.as_full().is_some() || record.response_body.as_full().is_some();
        return Ok(Shaped {
            seq: row.seq,
            shows_body,
            json: RawValue::from_string(row.json.clone())?,
        });
    }
    let mut value: Value = serde_json::from_str(&row.json)?;
    let mut shows_body = false;
    if let Value::Object(record) = &mut value {
        for field in BODIES {
            if role == AdminRole::Viewer {
                record.remove(field);
            } else if let Some(full) = record.get_mut(field).and_then(|b| b.get_mut("full")) {
                *full = moat_audit::redact_json(full.take());
                shows_body = true;
            }
        }
        for field in PERSONAL {
            if let Some(value) = record.get_mut(field) {
                // A keyed pseudonym: equal values still correlate, the value itself is hidden.
                *value = match (pseudonyms, value.as_str()) {
                    (Some(keys), Some(text)) => Value::String(keys.pseudonym(field, text)),
                    _ => moat_audit::redact_json(value.take()),
                };
            }
        }
        record.insert("redacted".into(), Value::Bool(true));
    }
    Ok(Shaped {
        seq: row.seq,
        shows_body,
        json: serde_json::value::to_raw_value(&value)?,
    })
}

/// Appends the `read` record of an answer that shows bodies; returns its request id. In `sync`
/// durability it is committed before this returns.
async fn record_read(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    shaped: &[Shaped],
) -> Option<String> {
    if caller.role == AdminRole::Viewer || !shaped.iter().any(|s| s.shows_body) {
        return None;
    }
    let log = state.audit.as_ref()?;
    let request_id = new_request_id();
    let query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), ToString::to_string);
    let mut record = AuditRecord::read(
        state.clock.now_ms(),
        request_id.clone(),
        ReadInfo {
            reader: caller.id.clone(),
            role: caller.role.as_str().to_string(),
            query,
            records: SeqRange::runs(shaped.iter().map(|s| s.seq)),
        },
    );
    record.source_ip = caller.source_ip.clone();
    record.user_agent = caller.user_agent.clone();
    if let Some(ack) = log.submit(record) {
        // Bounded by `audit.commit_timeout`, so a failing store never hangs an admin read.
        if let Err(e) = log.committed(ack).await {
            tracing::error!(error = %e, "the read record of an audit answer was not committed in time");
        }
    }
    Some(request_id)
}

fn to_query(p: Params) -> Result<AuditQuery, String> {
    if let Some(decision) = &p.decision {
        if !decision.contains(':') {
            return Err(format!(
                "decision must be stage:outcome, such as filter:deny (got {decision:?})"
            ));
        }
    }
    if let Some(kind) = &p.kind {
        if !["request", "read", "incident"].contains(&kind.as_str()) {
            return Err(format!(
                "kind must be request, read or incident (got {kind:?})"
            ));
        }
    }
    Ok(AuditQuery {
        from_ms: p.from.as_deref().map(|t| unix_ms("from", t)).transpose()?,
        to_ms: p.to.as_deref().map(|t| unix_ms("to", t)).transpose()?,
        key_id: p.key_id,
        account: p.account,
        workflow: p.workflow,
        status: p.status,
        decision: p.decision,
        kind: p.kind,
        after_seq: p.after_seq,
        limit: p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    })
}

fn unix_ms(name: &str, text: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("{name} must be RFC 3339, such as 2026-11-01T00:00:00Z ({e}): {text:?}")
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{name} is out of range: {text:?}"))
}

fn answer(body: &impl Serialize, request_id: Option<String>) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize an audit answer");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            );
        }
    };
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        r.headers_mut().insert("x-moat-request-id", v);
    }
    r
}

/// A random request id, `req_` and 24 hex digits, as the pipeline makes them.
fn new_request_id() -> String {
    let n: u128 = rand::random();
    format!("req_{:024x}", n & ((1u128 << 96) - 1))
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn no_log() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        "this gateway keeps no audit log (no audit store, or audit.enabled = false)",
    )
}

fn unavailable(e: &moat_store::StoreError) -> Response {
    tracing::error!(error = %e, "cannot read the audit log");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the audit log cannot be read",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn row(json: &str) -> StoredAudit {
        StoredAudit {
            seq: 7,
            ts_ms: 0,
            kind: "request".into(),
            request_id: "r".into(),
            key_id: None,
            account: None,
            workflow: None,
            status: 200,
            decisions: vec![],
            prev_hash: String::new(),
            hash: String::new(),
            json: json.into(),
        }
    }

    fn record(request: &[u8]) -> String {
        let mut r = AuditRecord::request(1, "req_1", 200);
        r.request_body = moat_audit::Body::full(request);
        r.response_body = moat_audit::Body::digest(b"answer");
        serde_json::to_string(&r).unwrap()
    }

    #[test]
    fn each_role_sees_its_shape() {
        let stored = record(br#"{"messages":[{"content":"mail bob@example.com","n":1.0e2}]}"#);
        let row = row(&stored);
        for role in [AdminRole::Admin, AdminRole::Security] {
            let s = shape(&row, role, None).unwrap();
            assert_eq!(s.json.get(), stored, "byte for byte");
            assert!(s.shows_body);
        }
        let auditor: Value =
            serde_json::from_str(shape(&row, AdminRole::Auditor, None).unwrap().json.get())
                .unwrap();
        assert_eq!(
            auditor["request_body"]["full"]["messages"][0]["content"],
            "mail [REDACTED:email]"
        );
        assert_eq!(
            auditor["response_body"]["sha256"].as_str().map(str::len),
            Some(64)
        );
        assert_eq!(auditor["redacted"], true);
        let viewer = shape(&row, AdminRole::Viewer, None).unwrap();
        assert!(!viewer.shows_body);
        let viewer: Value = serde_json::from_str(viewer.json.get()).unwrap();
        assert!(viewer.get("request_body").is_none() && viewer.get("response_body").is_none());
        assert_eq!(
            (viewer["redacted"].clone(), viewer["seq"].clone()),
            (Value::Bool(true), Value::from(0))
        );
    }

    #[test]
    fn end_users_and_addresses_are_pseudonymised_for_auditors_and_viewers() {
        let keys = moat_audit::AuditKeys::from_seed([5; 32]);
        let mut r = AuditRecord::request(1, "req_1", 200);
        r.end_user = Some("jane.roe@example.com".into());
        r.source_ip = Some("10.1.2.3".into());
        let stored = serde_json::to_string(&r).unwrap();
        let row = row(&stored);
        for role in [AdminRole::Auditor, AdminRole::Viewer] {
            let shaped: Value =
                serde_json::from_str(shape(&row, role, Some(&keys)).unwrap().json.get()).unwrap();
            assert_eq!(
                shaped["end_user"],
                keys.pseudonym("end_user", "jane.roe@example.com")
            );
            assert_eq!(shaped["source_ip"], keys.pseudonym("source_ip", "10.1.2.3"));
            assert!(
                !shaped.to_string().contains("jane.roe")
                    && !shaped.to_string().contains("10.1.2.3")
            );
        }
        let admin = shape(&row, AdminRole::Admin, Some(&keys)).unwrap();
        assert_eq!(admin.json.get(), stored);
    }

    #[test]
    fn a_record_without_kept_bodies_shows_none() {
        let row = row(&serde_json::to_string(&AuditRecord::request(1, "r", 200)).unwrap());
        for role in AdminRole::ALL {
            assert!(!shape(&row, role, None).unwrap().shows_body, "{role}");
        }
    }

    #[test]
    fn queries_are_validated_and_the_limit_capped() {
        let q = to_query(Params {
            from: Some("2026-05-01T00:00:00Z".into()),
            to: Some("2026-05-01T02:00:00+02:00".into()),
            decision: Some("filter:deny".into()),
            limit: Some(1_000_000),
            ..Params::default()
        })
        .unwrap();
        assert_eq!(
            (q.from_ms, q.to_ms),
            (Some(1_777_593_600_000), Some(1_777_593_600_000))
        );
        assert_eq!(q.limit, MAX_LIMIT);
        assert_eq!(to_query(Params::default()).unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            Params {
                from: Some("yesterday".into()),
                ..Params::default()
            },
            Params {
                decision: Some("deny".into()),
                ..Params::default()
            },
            Params {
                kind: Some("requests".into()),
                ..Params::default()
            },
        ] {
            assert!(to_query(bad).is_err());
        }
    }
}
