//! One request's way through the sim: read and record it, apply its fault, authenticate, route,
//! and play the reply.

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use moat_core::Protocol;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::errors::ApiError;
use crate::fault::Plan;
use crate::playback::{self, SimBody};
use crate::reply::Reply;
use crate::state::Shared;
use crate::{anthropic, embeddings, models, openai_chat, responses, RecordedRequest};

/// Largest request body the sim reads; larger ones get a 413.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Serves one request. `kill` resets the connection (for `ResetBeforeHeaders`).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    kill: CancellationToken,
    request: Request<Incoming>,
) -> Response<SimBody> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let protocol = protocol_of(path, &parts.headers);
    let request_id = shared.next_request_id();

    let (bytes, read_error) = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => (collected.to_bytes(), None),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            (Bytes::new(), Some(ApiError::too_large()))
        }
        Err(err) => {
            let message = format!("Could not read the request body: {err}");
            (Bytes::new(), Some(ApiError::invalid(message)))
        }
    };
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    shared.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or(path, |pq| pq.as_str())
            .to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.clone().unwrap_or(Value::Null),
    });

    let model = body
        .as_ref()
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str);
    let mut stream_fault = None;
    if let Some(fault) = shared.take_fault(model) {
        tracing::debug!(?fault, path, "applying fault");
        match fault.plan(protocol) {
            Plan::Reset => {
                kill.cancel();
                // The connection task drops this future together with the connection.
                return std::future::pending().await;
            }
            Plan::Hang => return std::future::pending().await,
            Plan::Delay(delay) => tokio::time::sleep(delay).await,
            Plan::Status(reply) => return playback::status(protocol, &request_id, reply, model),
            Plan::Error(err) => return playback::error(protocol, &request_id, &err),
            Plan::Stream(fault) => stream_fault = Some(fault),
        }
    }

    let result = match read_error {
        Some(err) => Err(err),
        None => authorize(
            shared.options.api_key.as_deref(),
            protocol,
            path,
            &parts.headers,
        )
        .and_then(|()| {
            let now = shared.clock.now_secs();
            route(&parts.method, path, &parts.headers, body.as_ref(), now)
        }),
    };
    match result {
        Ok(Reply::Json(value)) => playback::json(protocol, &request_id, &value, stream_fault),
        Ok(Reply::Stream(transcript)) => playback::stream(
            protocol,
            &request_id,
            transcript,
            stream_fault,
            shared.options.word_delay,
        ),
        Err(err) => {
            tracing::debug!(%err, path, "request rejected");
            playback::error(protocol, &request_id, &err)
        }
    }
}

/// The protocol whose shapes a path answers in. `/v1/models` serves both; Anthropic clients are
/// recognised by their `anthropic-version` header.
fn protocol_of(path: &str, headers: &HeaderMap) -> Protocol {
    let anthropic_path = path == "/v1/messages" || path.starts_with("/v1/messages/");
    let anthropic_models =
        path.starts_with("/v1/models") && headers.contains_key("anthropic-version");
    if anthropic_path || anthropic_models {
        Protocol::Anthropic
    } else {
        Protocol::OpenAi
    }
}

/// Checks the API key when one is required: OpenAI routes take `Authorization: Bearer`, Anthropic
/// routes `x-api-key` or Bearer, the shared models route either.
fn authorize(
    key: Option<&str>,
    protocol: Protocol,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(key) = key else { return Ok(()) };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header(AUTHORIZATION.as_str()).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let x_api_key = header("x-api-key");
    let accepts_x_api_key = protocol == Protocol::Anthropic || path.starts_with("/v1/models");
    let valid = bearer == Some(key) || (accepts_x_api_key && x_api_key == Some(key));
    if valid {
        Ok(())
    } else {
        Err(ApiError::unauthorized(protocol))
    }
}

fn route(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Option<&Value>,
    now: i64,
) -> Result<Reply, ApiError> {
    let expect = |allowed: &Method| {
        if method == allowed {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(method.as_str(), path))
        }
    };
    match path {
        "/v1/chat/completions" => {
            expect(&Method::POST)?;
            openai_chat::complete(json_object(body, Protocol::OpenAi)?, now)
        }
        "/v1/responses" => {
            expect(&Method::POST)?;
            responses::create(json_object(body, Protocol::OpenAi)?, now)
        }
        "/v1/embeddings" => {
            expect(&Method::POST)?;
            embeddings::create(json_object(body, Protocol::OpenAi)?)
        }
        "/v1/messages" => {
            expect(&Method::POST)?;
            require_anthropic_version(headers)?;
            anthropic::messages(json_object(body, Protocol::Anthropic)?)
        }
        "/v1/messages/count_tokens" => {
            expect(&Method::POST)?;
            require_anthropic_version(headers)?;
            anthropic::count_tokens(json_object(body, Protocol::Anthropic)?)
        }
        "/v1/models" => {
            expect(&Method::GET)?;
            Ok(models::list())
        }
        _ => match path.strip_prefix("/v1/models/") {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                expect(&Method::GET)?;
                Ok(models::retrieve(id))
            }
            _ => Err(ApiError::unknown_route(
                protocol_of(path, headers),
                method.as_str(),
                path,
            )),
        },
    }
}

fn require_anthropic_version(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key("anthropic-version") {
        Ok(())
    } else {
        Err(ApiError::invalid("anthropic-version: header is required"))
    }
}

/// The body as a JSON object, or the provider's 400 for a body that is not one.
fn json_object(body: Option<&Value>, protocol: Protocol) -> Result<&Map<String, Value>, ApiError> {
    body.and_then(Value::as_object).ok_or_else(|| {
        ApiError::invalid(match protocol {
            Protocol::OpenAi => {
                "We could not parse the JSON body of your request. (HINT: This likely means you \
                 aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
                 but what was sent was not valid JSON.)"
            }
            Protocol::Anthropic => "There was an error parsing the body of your request.",
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    http::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn credentials_follow_the_protocol() {
        let bearer = headers(&[("authorization", "Bearer k")]);
        let x_key = headers(&[("x-api-key", "k")]);
        let wrong = headers(&[("authorization", "Bearer nope")]);
        let openai = Protocol::OpenAi;
        let anthropic = Protocol::Anthropic;
        assert!(authorize(None, openai, "/v1/chat/completions", &wrong).is_ok());
        assert!(authorize(Some("k"), openai, "/v1/chat/completions", &bearer).is_ok());
        assert!(authorize(Some("k"), openai, "/v1/chat/completions", &x_key).is_err());
        assert!(authorize(Some("k"), openai, "/v1/chat/completions", &wrong).is_err());
        assert!(authorize(Some("k"), anthropic, "/v1/messages", &x_key).is_ok());
        assert!(authorize(Some("k"), anthropic, "/v1/messages", &bearer).is_ok());
        assert!(authorize(Some("k"), openai, "/v1/models", &x_key).is_ok());
    }

    #[test]
    fn models_speak_anthropic_to_anthropic_clients() {
        let anthropic = headers(&[("anthropic-version", "2023-06-01")]);
        assert_eq!(protocol_of("/v1/models", &anthropic), Protocol::Anthropic);
        assert_eq!(
            protocol_of("/v1/models", &HeaderMap::new()),
            Protocol::OpenAi
        );
        assert_eq!(
            protocol_of("/v1/messages/count_tokens", &HeaderMap::new()),
            Protocol::Anthropic
        );
    }
}
