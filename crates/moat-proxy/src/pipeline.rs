//! The request path, top to bottom: authenticate, read, authorize, route, forward, settle.
//!
//! Each stage is a call into the module or crate that owns it; this file only orders them. Later
//! planes (filters, detection gate, limits and budgets, audit) slot in between as stages of their own.

use crate::auth::presented_key;
use crate::error::GatewayError;
use crate::forward::{forward, Exchange};
use crate::state::AppState;
use crate::telemetry::RequestRecord;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use moat_core::Protocol;
use serde_json::Value;
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
    let mut record = RequestRecord::new(Arc::clone(&request_id), endpoint.operation());
    let mut response = match run(&state, endpoint, peer, request, &mut record).await {
        // A streamed response carries the record and finishes it when the stream ends.
        Ok(response) => response,
        Err(error) => {
            if error.fault() == crate::error::Fault::Client {
                tracing::debug!(request_id = %request_id, error = %error, "request refused");
            } else {
                tracing::warn!(request_id = %request_id, error = %error, "request failed");
            }
            record.finish(error.status().as_u16(), None, Some(error.kind()));
            error.into_protocol_response(endpoint.protocol())
        }
    };
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
    record.key_id = Some(key.id.clone());
    record.account = Some(key.account.clone());

    // 2. Read and parse, within the size and time limits.
    let bytes = read_body(
        body,
        state.config.server.max_body_bytes,
        state.config.server.read_timeout,
    )
    .await?;
    let json = parse_object(&bytes)?;
    let model = required_model(&json)?;
    record.model = Some(model.clone());
    let stream = stream_flag(&json, endpoint)?;

    // 3. Authorize: key scope (expiry, revocation, source network, model).
    moat_policy::authorize(&key, Some(&model), peer.ip(), state.clock.now_secs())?;

    // 4. Route.
    let plan = state
        .routes
        .plan(&model)
        .ok_or_else(|| GatewayError::UnknownModel(model.clone()))?;

    // 5. Forward, failing over along the plan; 6. settle usage (in the response or at stream end).
    let exchange = Exchange {
        endpoint,
        body: json,
        stream,
        headers: parts.headers,
        query: parts.uri.query().map(str::to_string),
        client_model: model,
        created: state.clock.now_secs(),
    };
    forward(exchange, plan, record).await
}

/// Reads the whole body, refusing it past `limit` bytes or `timeout`.
async fn read_body(
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, GatewayError> {
    let limited = Limited::new(body, limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Ok(Err(e)) => Err(GatewayError::BodyRead(e.to_string())),
        Err(_) => Err(GatewayError::BodyRead(format!(
            "body not received within {} s",
            timeout.as_secs()
        ))),
    }
}

fn parse_object(bytes: &[u8]) -> Result<Value, GatewayError> {
    if bytes.is_empty() {
        return Err(GatewayError::invalid(
            "request body is empty; expected a JSON object",
            None,
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| GatewayError::invalid(format!("request body is not valid JSON: {e}"), None))?;
    if !value.is_object() {
        return Err(GatewayError::invalid(
            "request body must be a JSON object",
            None,
        ));
    }
    Ok(value)
}

fn required_model(json: &Value) -> Result<String, GatewayError> {
    match json.get("model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(GatewayError::invalid(
            "you must provide a model parameter",
            Some("model"),
        )),
        Some(_) => Err(GatewayError::invalid(
            "'model' must be a string",
            Some("model"),
        )),
    }
}

fn stream_flag(json: &Value, endpoint: Endpoint) -> Result<bool, GatewayError> {
    match json.get("stream") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) if endpoint.streams() => Ok(true),
        Some(Value::Bool(true)) => Err(GatewayError::invalid(
            format!("{} does not support streaming", endpoint.operation()),
            Some("stream"),
        )),
        Some(_) => Err(GatewayError::invalid(
            "'stream' must be a boolean",
            Some("stream"),
        )),
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
    fn bodies_are_checked_field_by_field() {
        assert!(parse_object(b"").is_err());
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"{").is_err());
        let ok = parse_object(br#"{"model":"m","stream":true}"#).unwrap();
        assert_eq!(required_model(&ok).unwrap(), "m");
        assert!(stream_flag(&ok, Endpoint::ChatCompletions).unwrap());
        assert!(stream_flag(&ok, Endpoint::Embeddings).is_err());
        assert!(required_model(&parse_object(br#"{"model":3}"#).unwrap()).is_err());
        assert!(stream_flag(
            &parse_object(br#"{"stream":"yes"}"#).unwrap(),
            Endpoint::Messages
        )
        .is_err());
    }

    #[test]
    fn request_ids_are_unique_and_shaped() {
        let a = new_request_id();
        assert_eq!(a.len(), 28);
        assert_ne!(a, new_request_id());
    }
}
