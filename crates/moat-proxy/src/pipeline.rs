//! The request path, top to bottom: authenticate, read, authorize, filter, detection gate,
//! policy (inventory and routing rules), route, limits and budget, forward, settle and record.
//!
//! Each stage is a call into the module or crate that owns it; this file only orders them. The
//! audit record (issue 5) slots in as a stage of its own.

use crate::auth::presented_key;
use crate::detection::NewEvent;
use crate::error::GatewayError;
use crate::forward::{forward, Exchange};
use crate::governance::BodyHold;
use crate::governance::Principal;
use crate::state::AppState;
use crate::telemetry::RequestRecord;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::BodyExt;
use moat_audit::{clip, MAX_CLIENT_STRING};
use moat_core::Protocol;
use moat_policy::limits::{LimitKind, RateStatus, Refusal, Scope, CONCURRENCY_RETRY_MS};
use std::net::SocketAddr;
use std::sync::Arc;

/// A wire endpoint moat serves, which fixes the client's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Endpoint {
    /// The protocol clients of this endpoint speak.
    pub fn protocol(self) -> Protocol {
        match self {
            Endpoint::ChatCompletions | Endpoint::Embeddings | Endpoint::Responses => {
                Protocol::OpenAi
            }
            Endpoint::Messages | Endpoint::CountTokens => Protocol::Anthropic,
        }
    }

    /// The operation name in logs and metrics.
    pub fn operation(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Responses => "responses",
            Endpoint::Messages => "messages",
            Endpoint::CountTokens => "count_tokens",
        }
    }

    fn streams(self) -> bool {
        matches!(
            self,
            Endpoint::ChatCompletions | Endpoint::Responses | Endpoint::Messages
        )
    }
}

/// Serves one request on `endpoint` from the client at `peer`.
pub async fn handle(
    state: Arc<AppState>,
    endpoint: Endpoint,
    peer: SocketAddr,
    request: Request<Body>,
) -> Response {
    let request_id: Arc<str> = Arc::from(new_request_id().as_str());
    let client = crate::forwarded::client_ip(
        peer.ip(),
        request.headers(),
        &state.config.server.trusted_proxies,
    );
    // 0. The audit log must be able to keep this request's record (backlog, writer state)
    // before anything else runs, so nothing is answered or sent upstream without evidence and
    // refusals cost nothing while the store fails. The refusal itself is counted, not recorded.
    if let Some(Err(error)) = state
        .audit
        .as_ref()
        .map(|log| log.admit().map_err(GatewayError::from))
    {
        // Debug only: a refusal must stay cheap under a flood; the writer logs the failure
        // itself, `/readyz` is red and `moat_audit_refused_total` counts these.
        tracing::debug!(request_id = %request_id, error = %error, "request refused: audit log unavailable");
        let mut response = error.into_protocol_response(endpoint.protocol());
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-moat-request-id", v);
        }
        return response;
    }
    let mut record = RequestRecord::new(Arc::clone(&request_id), endpoint.operation());
    if let Some(log) = &state.audit {
        record.audit = Some(Arc::clone(log));
        record.audit_input.ts_ms = state.clock.now_ms();
        record.audit_input.user_agent = request
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| clip(ua, MAX_CLIENT_STRING).into_owned());
    }
    let mut response = match run(&state, endpoint, peer, request, &mut record).await {
        // A streamed response carries the record and finishes it when the stream ends.
        Ok(response) => response,
        Err(error) => {
            let error = state.refusals.data_plane(client, error);
            if let GatewayError::AuthThrottled { .. } = error {
                // Past its limit an address's refusals write no audit record: they cannot
                // flood the log (the first `auth_failures_per_minute` a minute do).
                record.audit = None;
            }
            // The message may quote what the client sent (a model name): bounded on the line.
            let message = error.to_string();
            let message = clip(&message, MAX_CLIENT_STRING);
            if error.fault() == crate::error::Fault::Client {
                tracing::debug!(request_id = %request_id, error = %message, "request refused");
            } else {
                tracing::warn!(request_id = %request_id, error = %message, "request failed");
            }
            let outcome = match error.fault() {
                crate::error::Fault::Client => "deny",
                _ => "fail",
            };
            record.decide(error.stage(), outcome, Some(error.to_string()));
            record.finish(error.status().as_u16(), None, Some(error.kind()));
            error.into_protocol_response(endpoint.protocol())
        }
    };
    // `audit.durability = "sync"`: an answer that is already whole (an error, a buffered
    // answer) goes out only once its record is committed; a stream waits at its end.
    // Past `audit.commit_timeout` the answer is replaced by a 503: it was not recorded in time.
    if let (Some(ack), Some(log)) = (record.audit_ack.take(), &state.audit) {
        if let Err(error) = log.committed(ack).await.map_err(GatewayError::from) {
            tracing::error!(request_id = %request_id, error = %error, "answer withheld: its audit record was not committed");
            response = error.into_protocol_response(endpoint.protocol());
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-moat-request-id", v);
    }
    response
}

async fn run(
    state: &AppState,
    endpoint: Endpoint,
    peer: SocketAddr,
    request: Request<Body>,
    record: &mut RequestRecord,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();

    // 1. Authenticate before reading a byte of the body.
    let presented = presented_key(&parts.headers).ok_or(GatewayError::MissingKey)?;
    let key = state.keys.authenticate(presented).await?;
    let key = key.ok_or(moat_policy::ScopeError::InvalidKey)?;
    record.key_id = Some(key.id.clone());
    record.account = Some(key.account.clone());
    // The key's workflow as registered now: one snapshot for the whole request.
    let registered = key
        .workflow
        .as_deref()
        .and_then(|w| state.governance.workflow(w));
    if let Some(log) = &state.audit {
        // Bodies are kept by the key's workflow's sensitivity (unregistered: internal).
        let sensitivity = registered
            .as_deref()
            .map_or(Default::default(), |w| w.sensitivity);
        record.audit_input.policy = Some(log.config().bodies.for_sensitivity(sensitivity));
    }

    // 2. Admit before reading: the requests per minute and concurrency of the key, its workflow
    // and its account (tokens per minute and budgets need the body: stage 8), then the key's
    // budget of body bytes in flight as the body arrives. A refused request is answered
    // without reading its body.
    let governance = &state.governance;
    let workflow = registered.as_deref();
    let tier = state.guard.tiers.of(&key.account);
    let who = Principal {
        key: &key,
        tier: &tier.name,
        workflow,
    };
    let entry = governance.admit_entry(&who)?;
    let mut hold = governance.bodies().hold(&key.id);

    // Read and parse, within the size and time limits.
    let bytes = read_body(
        body,
        &parts.headers,
        state.config.server.max_body_bytes,
        state.config.server.read_timeout,
        &mut hold,
        state.clock.now_ms(),
    )
    .await?;
    // Held until the record is dropped: the body stays in memory (upstream, audit) until then.
    record.body_hold = Some(hold);
    if record.audit.is_some() {
        record.audit_input.request_body = Some(bytes.clone());
    }
    let peek = crate::body::peek(&bytes)?;
    // Routing uses the name as sent; the record and the log line keep a bounded copy.
    record.model = Some(clip(&peek.model, MAX_CLIENT_STRING).into_owned());
    record.model_configured = state.routes.contains(&peek.model);
    if peek.stream && !endpoint.streams() {
        let message = format!("{} does not support streaming", endpoint.operation());
        return Err(GatewayError::invalid(message, Some("stream")));
    }

    // 3. Authorize: key scope (expiry, revocation, source network, model), on the client's
    // address as the trusted proxies in front of moat report it.
    let client = crate::forwarded::client_ip(
        peer.ip(),
        &parts.headers,
        &state.config.server.trusted_proxies,
    );
    if record.audit.is_some() {
        record.audit_input.source_ip = Some(client.to_string());
    }
    moat_policy::authorize(&key, Some(&peek.model), client, state.clock.now_secs())?;

    // 4. Filter: blocked-pattern lists and the parameter policy of the account's tier; the same
    // view gives the detector its features.
    let detection = &state.detection;
    let inspected = crate::filter::check(
        &state.guard,
        endpoint,
        &bytes,
        &key,
        detection.extractor(),
        record,
    )?;

    // 5. Detection gate: the current action on the account and its end user.
    let arrived_ms = state.clock.now_ms();
    let admission = detection.gate(&key.account, inspected.as_ref(), arrived_ms, record)?;
    let (bytes, peek) = match (admission.cap_output, &inspected) {
        (Some(cap), Some(i)) => crate::detection::cap_output(bytes, peek, i.api, cap)?,
        _ => (bytes, peek),
    };

    // 6. Policy: the workflow inventory and the routing rules.
    record.workflow = workflow.map(|w| w.name.clone());
    let headers = &parts.headers;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let decision = governance.policy(&who, &peek.model, &header)?;
    if workflow.is_none() {
        record.decide("policy", "unregistered", key.workflow.clone());
    }
    if let Some(rule) = decision.rule {
        record.decide("policy", "route", Some(format!("rule {}", rule.name)));
    }

    // 7. Route: the model's targets and fallbacks, only to providers the rule allows.
    let model = decision.model(&peek.model);
    let mut plan = state
        .routes
        .plan(model)
        .ok_or_else(|| GatewayError::UnknownModel(model.to_string()))?;
    if let (Some(rule), false) = (decision.rule, decision.only_tags.is_empty()) {
        plan.retain(|t| {
            t.provider
                .tags
                .iter()
                .any(|tag| decision.only_tags.contains(tag))
        });
        if plan.is_empty() {
            return Err(GatewayError::NoCompliantTarget {
                rule: rule.name.clone(),
                model: model.to_string(),
                tags: decision.only_tags.to_vec(),
            });
        }
    }

    // A workflow's objectives: targets that ran slow for it lately go last and, if it routes
    // around, targets whose estimated cost breaks its cost objective drop out while one remains.
    if let Some(w) = workflow {
        let output = peek
            .max_output
            .unwrap_or(state.config.governance.default_output_tokens)
            .saturating_mul(peek.choices);
        let input = bytes.len() as u64 / 4;
        state.guardrails.steer(w, &mut plan, |t| {
            governance.price(&t.model).map(|p| {
                p.cost(&moat_policy::price::TokenUsage {
                    input,
                    cached_input: 0,
                    cache_write: 0,
                    output,
                })
            })
        });
        record.watch = state.guardrails.watch(w);
    }

    // 8. Limits and budget: admitted and reserved, or refused, before anything goes upstream;
    // the reservation covers every target the request may reach, context fallbacks included.
    let context_plan = state.routes.context_plan(model, decision.only_tags);
    let reachable = [plan.as_slice(), context_plan.as_deref().unwrap_or_default()];
    record.settlement = Some(governance.admit(&who, &peek, bytes.len(), &reachable, entry)?);
    let rate_status = record.settlement.as_ref().and_then(|s| s.rate_status());

    // 10. Record, for the detector: the event leaves with the usage when the record finishes.
    if let Some(i) = inspected {
        record.detect = detection.pending(NewEvent {
            ts_ms: arrived_ms,
            request_id: Arc::clone(&record.request_id),
            account: key.account.clone(),
            end_user: {
                record.audit_input.end_user.clone_from(&i.end_user);
                i.end_user
            },
            // Keys stand in for accounts until accounts have records of their own.
            account_created_ms: (key.created_at > 0).then(|| key.created_at.saturating_mul(1000)),
            ip: client,
            features: i.features,
        });
    }

    // 9. Forward, failing over along the plan; relay, and settle usage, limits and budget (in
    // the response or at stream end).
    let exchange = Exchange {
        endpoint,
        raw: bytes,
        context_plan,
        failover: Arc::clone(&state.failover),
        peek,
        parsed: None,
        headers: parts.headers,
        query: parts.uri.query().map(str::to_string),
        created: state.clock.now_secs(),
        keepalive: state.config.server.stream_keepalive,
        criticality: workflow.map_or(Default::default(), |w| w.criticality),
    };
    let mut response = forward(exchange, plan, record).await?;
    if let Some(status) = rate_status {
        let now = state.clock.now_ms();
        crate::governance::headers::status(&mut response, endpoint.protocol(), &status, now);
    }
    Ok(response)
}

/// Reads the whole body, refusing it past `limit` bytes (413: at once when its
/// `Content-Length` says so), past `timeout`, or when the key's budget of body bytes in flight
/// cannot cover it (429: its `Content-Length` reserved before a byte is read, a chunked body
/// frame by frame).
async fn read_body(
    mut body: Body,
    headers: &http::HeaderMap,
    limit: usize,
    timeout: std::time::Duration,
    hold: &mut BodyHold,
    now_ms: i64,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let over_budget = |hold: &BodyHold| GatewayError::RateLimited {
        refusal: Refusal {
            scope: Scope::Key,
            id: Arc::from(hold.key()),
            kind: LimitKind::BodyBytes,
            limit: hold.limit(),
            retry_after_ms: CONCURRENCY_RETRY_MS,
            status: RateStatus::default(),
        },
        at_ms: now_ms,
    };
    if let Some(n) = declared {
        if !hold.cover(n) {
            return Err(over_budget(hold));
        }
    }
    let read = async {
        let mut buf = bytes::BytesMut::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| GatewayError::BodyRead(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let total = buf.len() + data.len();
            if total > limit {
                return Err(GatewayError::BodyTooLarge { limit });
            }
            if !hold.cover(total as u64) {
                return Err(over_budget(hold));
            }
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(GatewayError::BodyRead(format!(
            "body not received within {} s",
            timeout.as_secs()
        ))),
    }
}

/// A random request id, `req_` and 24 hex digits.
fn new_request_id() -> String {
    let n: u128 = rand::random();
    format!("req_{:024x}", n & ((1u128 << 96) - 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_shaped() {
        let a = new_request_id();
        assert_eq!(a.len(), 28);
        assert_ne!(a, new_request_id());
    }
}
