//! Holding a stream back until its first token. A request whose criticality sets `first_token`
//! must see the answer start within that time, or move to another target; that is only possible
//! while nothing has gone to the client, so the response (headers included) waits for the first
//! content event, then carries everything that arrived so far.

use super::{respond, Relay, RelayContext};
use crate::error::GatewayError;
use crate::telemetry::RequestRecord;
use crate::upstream::error_chain;
use axum::response::Response;
use futures_util::StreamExt;
use http::StatusCode;
use hyper::body::Incoming;
use moat_protocol::sse::SseEvent;
use moat_protocol::usage::StreamKind;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// A streamed answer whose headers arrived, not yet handed to the client.
pub struct PendingStream {
    relay: Relay,
    status: StatusCode,
    ctx: RelayContext,
}

/// What a held stream has shown of its first token so far.
#[derive(Debug, Default)]
pub(super) struct Held {
    token: bool,
    error: Option<String>,
}

impl PendingStream {
    /// The relay of `response`, not yet started.
    pub fn new(response: http::Response<Incoming>, ctx: RelayContext) -> PendingStream {
        PendingStream {
            status: response.status(),
            relay: super::relay(response, &ctx),
            ctx,
        }
    }

    /// Waits until the upstream sends its first token (content, a tool call, or the end of the
    /// answer) before `until`, keeping everything that arrived for the client. A timeout, an
    /// upstream error event, a broken or an empty stream is an error a fallback may rescue:
    /// nothing has reached the client yet. `limit` is the time allowed, for the message.
    pub async fn first_token(
        &mut self,
        until: Instant,
        limit: Duration,
    ) -> Result<(), GatewayError> {
        let name = self.ctx.provider.name.clone();
        let relay = &mut self.relay;
        relay.held = Some(Held::default());
        let outcome = loop {
            if let Some(held) = &relay.held {
                if let Some(data) = &held.error {
                    break Err(unavailable(
                        format!("upstream {name} sent an error before its first token: {data}"),
                        false,
                    ));
                }
                if held.token {
                    break Ok(());
                }
            }
            if relay.finished {
                let why = relay.error.unwrap_or("upstream_stream_truncated");
                break Err(unavailable(
                    format!("upstream {name} stream ended before its first token ({why})"),
                    false,
                ));
            }
            match tokio::time::timeout_at(until, relay.upstream.next()).await {
                Ok(Some(Ok(chunk))) => relay.on_bytes(&chunk),
                Ok(Some(Err(e))) => {
                    break Err(unavailable(
                        format!(
                            "upstream {name} stream failed before its first token: {}",
                            error_chain(&e)
                        ),
                        false,
                    ))
                }
                Ok(None) => relay.on_end(),
                Err(_) => {
                    break Err(unavailable(
                        format!(
                            "upstream {name} sent no first token within {} ms",
                            limit.as_millis()
                        ),
                        true,
                    ))
                }
            }
        };
        relay.held = None;
        outcome
    }

    /// The client's response, which streams the rest and finishes `record` when it ends.
    pub fn respond(mut self, record: RequestRecord) -> Response {
        self.relay.attach(record, &self.ctx.target_model);
        respond(self.relay, self.status, &self.ctx)
    }
}

impl Held {
    /// Notes whether `event` is the first token or an error.
    pub(super) fn observe(&mut self, kind: StreamKind, event: &SseEvent) {
        if self.token || self.error.is_some() {
            return;
        }
        match first_token(kind, event) {
            Some(Seen::Token) => self.token = true,
            Some(Seen::Error) => self.error = Some(event.data.chars().take(300).collect()),
            None => {}
        }
    }
}

fn unavailable(message: String, timeout: bool) -> GatewayError {
    GatewayError::UpstreamUnavailable { message, timeout }
}

/// What an event says about the start of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Content, a tool call, reasoning, or the answer's end: the answer has started.
    Token,
    /// The upstream reports an error in the stream.
    Error,
}

/// Whether `event` of a stream of `kind` is its first token, an error, or neither (metadata,
/// an empty role delta, a ping).
fn first_token(kind: StreamKind, event: &SseEvent) -> Option<Seen> {
    if event.is_done() {
        return Some(Seen::Token);
    }
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    let name = data
        .get("type")
        .and_then(Value::as_str)
        .or(event.event.as_deref())
        .unwrap_or_default();
    if name == "error" || event.event.as_deref() == Some("error") {
        return Some(Seen::Error);
    }
    match kind {
        StreamKind::OpenAiChat => {
            if data.get("error").is_some_and(|e| !e.is_null()) {
                return Some(Seen::Error);
            }
            let choices = data.get("choices").and_then(Value::as_array);
            let started = choices.into_iter().flatten().any(|choice| {
                let delta = &choice["delta"];
                let text = |k: &str| delta[k].as_str().is_some_and(|s| !s.is_empty());
                !choice["finish_reason"].is_null()
                    || text("content")
                    || text("reasoning_content")
                    || text("reasoning")
                    || text("refusal")
                    || delta["tool_calls"]
                        .as_array()
                        .is_some_and(|c| !c.is_empty())
                    || delta["function_call"].is_object()
            });
            started.then_some(Seen::Token)
        }
        StreamKind::Anthropic => matches!(
            name,
            "content_block_delta" | "message_delta" | "message_stop"
        )
        .then_some(Seen::Token),
        StreamKind::OpenAiResponses => match name {
            "response.failed" => Some(Seen::Error),
            "response.completed" | "response.incomplete" => Some(Seen::Token),
            n if n.ends_with(".delta") => Some(Seen::Token),
            _ => None,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_string),
            data: data.to_string(),
            raw: Bytes::new(),
        }
    }

    #[test]
    fn openai_role_deltas_are_not_tokens_but_content_and_tools_are() {
        let k = StreamKind::OpenAiChat;
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(first_token(k, &event(None, role)), None);
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        assert_eq!(first_token(k, &event(None, text)), Some(Seen::Token));
        let tool = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}}]}"#;
        assert_eq!(first_token(k, &event(None, tool)), Some(Seen::Token));
        let stop = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(first_token(k, &event(None, stop)), Some(Seen::Token));
        let error = r#"{"error":{"message":"overloaded","type":"server_error"}}"#;
        assert_eq!(first_token(k, &event(None, error)), Some(Seen::Error));
        assert_eq!(first_token(k, &event(None, "[DONE]")), Some(Seen::Token));
    }

    #[test]
    fn anthropic_metadata_waits_and_deltas_start() {
        let k = StreamKind::Anthropic;
        for (name, data) in [
            ("message_start", r#"{"type":"message_start","message":{}}"#),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0}"#,
            ),
            ("ping", r#"{"type":"ping"}"#),
        ] {
            assert_eq!(first_token(k, &event(Some(name), data)), None, "{name}");
        }
        let delta =
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        assert_eq!(
            first_token(k, &event(Some("content_block_delta"), delta)),
            Some(Seen::Token)
        );
        let error =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            first_token(k, &event(Some("error"), error)),
            Some(Seen::Error)
        );
    }

    #[test]
    fn responses_deltas_and_endings() {
        let k = StreamKind::OpenAiResponses;
        let created = r#"{"type":"response.created","sequence_number":0}"#;
        assert_eq!(
            first_token(k, &event(Some("response.created"), created)),
            None
        );
        let delta = r#"{"type":"response.output_text.delta","delta":"Hi"}"#;
        assert_eq!(
            first_token(k, &event(Some("response.output_text.delta"), delta)),
            Some(Seen::Token)
        );
        let failed = r#"{"type":"response.failed"}"#;
        assert_eq!(
            first_token(k, &event(Some("response.failed"), failed)),
            Some(Seen::Error)
        );
    }
}
