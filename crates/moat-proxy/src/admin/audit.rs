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
//! A body nested deeper than a JSON tree may be (`serde_json`'s limit, 127 levels) is shown to
//! the auditor as text: `{"full": "<the body's JSON text, redacted as text>", "as_text":
//! "nested deeper than 127 levels"}`. Records are read field by field (never parsed into one
//! tree), so such a record, and every page holding it, reads fine for every role. A streamed
//! answer (kept as its SSE transcript) is redacted across events (`moat_audit::redact_sse`).
//!
//! Pages are read and shaped on blocking threads, not on the async workers, and hold at most
//! `audit.read_page_bytes` of stored records (the first whatever its size): past it, the page
//! ends early and `next_after_seq` continues it. A viewer's records are read without their
//! bodies, which never leave the store.
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
use moat_audit::raw::{nesting_depth, RawObject, MAX_TREE_DEPTH};
use moat_audit::{AuditRecord, ReadInfo, SeqRange};
use moat_store::{AdminRole, AuditQuery, PageBudget, StoredAudit};
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
    let query = match to_query(params) {
        Ok(q) => q,
        Err(message) => return bad_request(&message),
    };
    let Some(store) = state.audit_store.clone() else {
        return no_log();
    };
    let page = match store.audit_page(&query, budget(&state, caller.role)).await {
        Ok(page) => page,
        Err(e) => return unavailable(&e),
    };
    let role = caller.role;
    let keys = pseudonyms(&state).cloned();
    let next_after_seq = page.next_after_seq;
    let shaped = match off_workers(move || shape_all(&page.rows, role, keys.as_ref())).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let request_id = record_read(&state, &caller, &uri, &shaped).await;
    let page = Page {
        object: "list",
        role: caller.role.as_str(),
        redacted: redacts(caller.role),
        data: shaped.into_iter().map(|s| s.json).collect(),
        next_after_seq,
    };
    match off_workers(move || Ok(serialize(&page))).await {
        Ok(bytes) => answer_bytes(bytes, request_id),
        Err(r) => *r,
    }
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
    let mut query = AuditQuery::new(1);
    query.after_seq = seq.checked_sub(1);
    let rows = match store.audit_page(&query, budget(&state, caller.role)).await {
        Ok(page) => page.rows,
        Err(e) => return unavailable(&e),
    };
    if rows.first().is_none_or(|r| r.seq != seq) {
        let message = format!("the audit log keeps no record {seq}");
        return error(StatusCode::NOT_FOUND, "not_found_error", &message);
    }
    let role = caller.role;
    let keys = pseudonyms(&state).cloned();
    let mut shaped = match off_workers(move || shape_all(&rows, role, keys.as_ref())).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let request_id = record_read(&state, &caller, &uri, &shaped).await;
    match shaped.pop() {
        Some(record) => answer(&record.json, request_id),
        None => error(StatusCode::NOT_FOUND, "not_found_error", "no such record"),
    }
}

/// What one page of `role`'s reads may hold: `audit.read_page_bytes`, and bodies unless the
/// role sees none (a viewer's records are read without them).
fn budget(state: &AppState, role: AdminRole) -> PageBudget {
    PageBudget {
        max_bytes: state.config.audit.read_page_bytes,
        bodies: role != AdminRole::Viewer,
    }
}

/// Runs `f` (parsing, redacting, serializing a page: CPU work proportional to its bytes) on a
/// blocking thread, so the async workers keep serving requests and health checks meanwhile.
/// `Err(seq)` from `f` is a record that cannot be read.
async fn off_workers<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, u64> + Send + 'static,
) -> Result<T, Box<Response>> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(seq)) => Err(Box::new(unreadable(seq))),
        Err(e) => {
            tracing::error!(error = %e, "an audit read failed");
            Err(Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )))
        }
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
        // Parsed only to tell whether it holds a body (bodies stay raw text, so any depth
        // parses); what is sent is the stored text.
        let record: AuditRecord = serde_json::from_str(&row.json)?;
        let shows_body =
            record.request_body.as_full().is_some() || record.response_body.as_full().is_some();
        return Ok(Shaped {
            seq: row.seq,
            shows_body,
            json: RawValue::from_string(row.json.clone())?,
        });
    }
    // Field by field: a body may nest deeper than a tree can, the other fields cannot.
    let fields = RawObject::parse(&row.json)?;
    let mut record = serde_json::Map::with_capacity(fields.fields.len() + 1);
    // Shaped bodies stay JSON text (a tree of a large body takes tens of times its size); their
    // place in `record` is held by a null.
    let mut bodies: Vec<(String, Box<RawValue>)> = Vec::new();
    let mut shows_body = false;
    for (name, raw) in &fields.fields {
        let value = if BODIES.contains(&name.as_ref()) {
            if role == AdminRole::Viewer {
                continue;
            }
            let (body, full) = redact_body(raw)?;
            shows_body |= full;
            bodies.push((name.to_string(), body));
            Value::Null
        } else {
            tree_or_text(raw)
        };
        record.insert(name.to_string(), value);
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
    let mut text = String::from("{");
    for (name, value) in &record {
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(name)?);
        text.push(':');
        match bodies.iter().find(|(body, _)| body == name) {
            Some((_, body)) => text.push_str(body.get()),
            None => text.push_str(&serde_json::to_string(value)?),
        }
    }
    text.push('}');
    Ok(Shaped {
        seq: row.seq,
        shows_body,
        json: RawValue::from_string(text)?,
    })
}

/// What the auditor sees of a body (`{"full": ...}`, `{"sha256": ...}` or `{"omitted": true}`),
/// and whether it is a kept one. A kept body is redacted as text, without a tree: a streamed
/// answer's transcript across its events, JSON in its strings, keys and numbers, and a body too
/// deep for a tree as its text, marked `as_text`.
fn redact_body(raw: &RawValue) -> Result<(Box<RawValue>, bool), serde_json::Error> {
    let body = RawObject::parse(raw.get())?;
    let Some(full) = body.get("full") else {
        return Ok((serde_json::value::to_raw_value(&tree_or_text(raw))?, false));
    };
    let mut out = serde_json::Map::new();
    if nesting_depth(full.get()) > MAX_TREE_DEPTH {
        let text = moat_audit::redact(full.get()).0;
        out.insert("full".into(), Value::String(text));
        out.insert("as_text".into(), Value::String(too_deep()));
        return Ok((serde_json::value::to_raw_value(&out)?, true));
    }
    if full.get().starts_with('"') {
        // A body that is not JSON, or a stream's transcript: one string.
        let text: String = serde_json::from_str(full.get())?;
        let redacted = moat_audit::redact_sse(&text).unwrap_or_else(|| moat_audit::redact(&text).0);
        out.insert("full".into(), Value::String(redacted));
        return Ok((serde_json::value::to_raw_value(&out)?, true));
    }
    let redacted = match moat_audit::redact_json_text(full.get()) {
        Some(text) => RawValue::from_string(text)?,
        // Stored bodies are valid JSON; were one not, it is shown as redacted text.
        None => serde_json::value::to_raw_value(&moat_audit::redact(full.get()).0)?,
    };
    Ok((
        RawValue::from_string(format!("{{\"full\":{}}}", redacted.get()))?,
        true,
    ))
}

/// `raw` as a tree, or, nested deeper than a tree may be (only in a hand-edited record), as its
/// text with a marker.
fn tree_or_text(raw: &RawValue) -> Value {
    if nesting_depth(raw.get()) <= MAX_TREE_DEPTH {
        if let Ok(value) = serde_json::from_str(raw.get()) {
            return value;
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("text".into(), Value::String(raw.get().to_string()));
    out.insert("as_text".into(), Value::String(too_deep()));
    Value::Object(out)
}

fn too_deep() -> String {
    format!("nested deeper than {MAX_TREE_DEPTH} levels")
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
        if let Err(e) = log
            .committed(ack)
            .await
            .map_err(crate::error::GatewayError::from)
        {
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
    answer_bytes(serialize(body), request_id)
}

/// `body` as JSON, or `None` (logged) if it cannot be serialized.
fn serialize(body: &impl Serialize) -> Option<Vec<u8>> {
    serde_json::to_vec(body)
        .map_err(|e| tracing::error!(error = %e, "cannot serialize an audit answer"))
        .ok()
}

fn answer_bytes(bytes: Option<Vec<u8>>, request_id: Option<String>) -> Response {
    let Some(bytes) = bytes else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        );
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
    fn a_body_too_deep_for_a_tree_reads_for_every_role() {
        for depth in [129, 10_000] {
            let deep = format!(
                "{}\"bob@example.com\"{}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let stored = record(deep.as_bytes());
            assert!(
                serde_json::from_str::<Value>(&stored).is_err(),
                "too deep for a tree"
            );
            let row = row(&stored);
            for role in [AdminRole::Admin, AdminRole::Security] {
                assert_eq!(shape(&row, role, None).unwrap().json.get(), stored);
            }
            let auditor = shape(&row, AdminRole::Auditor, None).unwrap();
            assert!(auditor.shows_body);
            let auditor: Value = serde_json::from_str(auditor.json.get()).unwrap();
            let body = &auditor["request_body"];
            assert_eq!(body["as_text"], "nested deeper than 127 levels");
            let text = body["full"].as_str().unwrap();
            assert!(
                text.starts_with("[[[") && text.contains("[REDACTED:email]"),
                "{depth}"
            );
            assert!(!text.contains("bob@"));
            let viewer: Value =
                serde_json::from_str(shape(&row, AdminRole::Viewer, None).unwrap().json.get())
                    .unwrap();
            assert!(viewer.get("request_body").is_none());
        }
    }

    #[test]
    fn the_auditor_sees_keys_numbers_and_streams_redacted() {
        let request = br#"{"card_number":4111111111111111,"jane.roe@example.com":"x"}"#;
        let mut r = AuditRecord::request(1, "req_1", 200);
        r.request_body = moat_audit::Body::full(request);
        let sse = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"write to jane.r\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"oe@example.com\"}}]}\n\n",
            "data: [DONE]\n\n"
        );
        r.response_body = moat_audit::Body::full(sse.as_bytes());
        let row = row(&serde_json::to_string(&r).unwrap());
        let shaped = shape(&row, AdminRole::Auditor, None).unwrap();
        let text = shaped.json.get();
        for leak in ["4111111111111111", "jane.roe", "jane.r", "oe@example.com"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        let auditor: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            auditor["request_body"]["full"],
            serde_json::json!({"card_number": "[REDACTED:card]", "[REDACTED:email]": "x"})
        );
        let stream = auditor["response_body"]["full"].as_str().unwrap();
        assert!(stream.contains("write to [REDACTED:email]"), "{stream}");
        assert!(stream.ends_with("data: [DONE]\n\n"), "{stream}");
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
