//! Forwarding: try the route's targets in order, translating where the target speaks the other
//! protocol, until one answers or a failure that no fallback can help.

use crate::body::{self, BodyPeek};
use crate::error::GatewayError;
use crate::pipeline::Endpoint;
use crate::relay;
use crate::routing::Target;
use crate::telemetry::{upstream_error, RequestRecord};
use crate::upstream::Operation;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use moat_core::Protocol;
use moat_protocol::translate;
use serde_json::Value;

/// One client request on its way upstream.
pub struct Exchange {
    /// The endpoint the client called.
    pub endpoint: Endpoint,
    /// The client's body as received.
    pub raw: Bytes,
    /// The body's routing fields.
    pub peek: BodyPeek,
    /// The whole body as JSON, parsed the first time a translation needs it.
    pub parsed: Option<Value>,
    /// The client's headers.
    pub headers: HeaderMap,
    /// The client's query string.
    pub query: Option<String>,
    /// Unix seconds at arrival, for `created` fields of translated responses.
    pub created: i64,
    /// Keep-alive interval for a streamed answer.
    pub keepalive: std::time::Duration,
    /// The criticality of the request's workflow (`medium` without one): it will pick the
    /// timeouts.
    #[expect(
        dead_code,
        reason = "read by the failover timeouts by criticality, next"
    )]
    pub criticality: moat_config::Criticality,
}

impl Exchange {
    /// The body as a JSON tree, parsed once on first use (translation and estimates need it;
    /// passthrough does not).
    fn json(&mut self) -> Result<&Value, GatewayError> {
        let parsed = match self.parsed.take() {
            Some(v) => v,
            None => serde_json::from_slice(&self.raw).map_err(|e| {
                GatewayError::invalid(format!("request body is not valid JSON: {e}"), None)
            })?,
        };
        Ok(self.parsed.insert(parsed))
    }
}

/// How a request reaches a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Same protocol: the body goes as sent (model renamed), the answer comes back byte for byte.
    Passthrough(Operation),
    /// An OpenAI chat request to an Anthropic target.
    ChatViaMessages,
    /// An Anthropic messages request to an OpenAI-kind target.
    MessagesViaChat,
    /// An Anthropic token count for an OpenAI-kind target, which has no such endpoint: estimated here.
    EstimateTokens,
}

impl Mode {
    /// How `endpoint` reaches a target of `kind`; `None` if it cannot.
    pub fn of(endpoint: Endpoint, kind: Protocol) -> Option<Mode> {
        use Endpoint::*;
        match (endpoint, kind) {
            (ChatCompletions, Protocol::OpenAi) => {
                Some(Mode::Passthrough(Operation::ChatCompletions))
            }
            (ChatCompletions, Protocol::Anthropic) => Some(Mode::ChatViaMessages),
            (Messages, Protocol::Anthropic) => Some(Mode::Passthrough(Operation::Messages)),
            (Messages, Protocol::OpenAi) => Some(Mode::MessagesViaChat),
            (Embeddings, Protocol::OpenAi) => Some(Mode::Passthrough(Operation::Embeddings)),
            (Responses, Protocol::OpenAi) => Some(Mode::Passthrough(Operation::Responses)),
            (CountTokens, Protocol::Anthropic) => Some(Mode::Passthrough(Operation::CountTokens)),
            (CountTokens, Protocol::OpenAi) => Some(Mode::EstimateTokens),
            (Embeddings | Responses, Protocol::Anthropic) => None,
        }
    }
}

/// Tries each target of `plan` in order. Failures before the first response byte that another target
/// may fix (unreachable, timeout, 408, 409, 429, 5xx) move on to the next; anything else is answered.
pub async fn forward(
    mut exchange: Exchange,
    plan: Vec<Target>,
    record: &mut RequestRecord,
) -> Result<Response, GatewayError> {
    let mut last_error = None;
    let usable: Vec<(Target, Mode)> = plan
        .into_iter()
        .filter_map(|t| Mode::of(exchange.endpoint, t.provider.kind).map(|m| (t, m)))
        .collect();
    if usable.is_empty() {
        return Err(GatewayError::invalid(
            format!(
                "model '{}' has no target that serves {}: {} needs an OpenAI-kind provider",
                exchange.peek.model,
                exchange.endpoint.operation(),
                exchange.endpoint.operation()
            ),
            Some("model"),
        ));
    }
    let count = usable.len();
    for (i, (target, mode)) in usable.into_iter().enumerate() {
        record.attempts += 1;
        record.provider = Some(target.provider.name.clone());
        record.response_model = Some(target.model.clone());
        match attempt(&mut exchange, &target, mode, record).await {
            Ok(Attempted::Done(response)) => return Ok(response),
            Ok(Attempted::Streaming(build)) => {
                return Ok(build(std::mem::replace(record, RequestRecord::detached())))
            }
            Err(error) => {
                upstream_error(&target.provider.name, error.kind());
                let last = i + 1 == count;
                if last || !retryable(&error) {
                    return Err(error);
                }
                tracing::info!(provider = %target.provider.name, model = %target.model, error = %error, "trying next target");
                last_error = Some(error);
            }
        }
    }
    // Unreachable in practice: the loop returns on its last target.
    Err(last_error.unwrap_or(GatewayError::UnknownModel(exchange.peek.model)))
}

/// An attempt that succeeded: a finished response, or a stream that takes over the request record.
enum Attempted {
    Done(Response),
    Streaming(Box<dyn FnOnce(RequestRecord) -> Response + Send>),
}

async fn attempt(
    exchange: &mut Exchange,
    target: &Target,
    mode: Mode,
    record: &mut RequestRecord,
) -> Result<Attempted, GatewayError> {
    if mode == Mode::EstimateTokens {
        return Ok(Attempted::Done(relay::estimated_token_count(
            exchange.json()?,
            record,
        )));
    }
    let (op, body) = upstream_body(exchange, target, mode)?;
    let query = match mode {
        Mode::Passthrough(_) => exchange.query.as_deref(),
        _ => None,
    };
    let provider = &target.provider;
    let response = provider.send(op, query, body, &exchange.headers).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(relay::upstream_failure(response, provider).await);
    }
    let is_sse = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let ctx = relay::RelayContext {
        endpoint: exchange.endpoint,
        mode,
        provider: provider.clone(),
        target_model: target.model.clone(),
        created: exchange.created,
        client_wants_usage: exchange.peek.include_usage,
        wants_base64: exchange.peek.wants_base64,
        keepalive: exchange.keepalive,
    };
    if exchange.peek.stream && is_sse {
        return Ok(Attempted::Streaming(Box::new(move |record| {
            relay::stream(response, ctx, record)
        })));
    }
    relay::buffered(response, ctx, record)
        .await
        .map(Attempted::Done)
}

/// The upstream operation and body for `mode`.
fn upstream_body(
    exchange: &mut Exchange,
    target: &Target,
    mode: Mode,
) -> Result<(Operation, Bytes), GatewayError> {
    let (op, value) = match mode {
        Mode::Passthrough(op) => {
            // OpenAI streams are metered from their usage chunk, so moat asks for it; the relay
            // removes it again if the client had not.
            let force_usage = op == Operation::ChatCompletions && exchange.peek.stream;
            return Ok((
                op,
                body::passthrough(&exchange.raw, &exchange.peek, &target.model, force_usage),
            ));
        }
        Mode::ChatViaMessages => (
            Operation::Messages,
            translate::openai_chat_to_anthropic_request(exchange.json()?, &target.model)?,
        ),
        Mode::MessagesViaChat => (
            Operation::ChatCompletions,
            translate::anthropic_to_openai_chat_request(exchange.json()?, &target.model)?,
        ),
        Mode::EstimateTokens => return Ok((Operation::CountTokens, Bytes::new())),
    };
    let bytes =
        serde_json::to_vec(&value).map_err(|e| GatewayError::invalid(e.to_string(), None))?;
    Ok((op, Bytes::from(bytes)))
}

/// Whether another target may succeed where this one failed.
fn retryable(error: &GatewayError) -> bool {
    match error {
        GatewayError::UpstreamUnavailable { .. } => true,
        GatewayError::UpstreamStatus { status, .. } => {
            matches!(status, 408 | 409 | 429 | 500..=599)
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_another_target_may_fix_are_retried() {
        let status = |s| GatewayError::UpstreamStatus {
            provider: "p".into(),
            status: s,
            body: Bytes::new(),
            protocol: Protocol::OpenAi,
            retry_after: None,
        };
        assert!(retryable(&status(503)) && retryable(&status(429)));
        assert!(!retryable(&status(400)) && !retryable(&status(401)));
        assert!(retryable(&GatewayError::UpstreamUnavailable {
            message: String::new(),
            timeout: true
        }));
        assert!(!retryable(&GatewayError::invalid("x", None)));
    }

    #[test]
    fn modes_cover_every_endpoint_and_kind() {
        assert_eq!(Mode::of(Endpoint::Embeddings, Protocol::Anthropic), None);
        assert_eq!(
            Mode::of(Endpoint::ChatCompletions, Protocol::Anthropic),
            Some(Mode::ChatViaMessages)
        );
        assert_eq!(
            Mode::of(Endpoint::CountTokens, Protocol::OpenAi),
            Some(Mode::EstimateTokens)
        );
    }
}
