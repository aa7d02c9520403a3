//! Upstream stream events parsed once, for the translators that read them.

use serde_json::Value;

use super::TranslateError;
use crate::sse::SseEvent;

/// The data of an upstream stream event as JSON; an upstream error when it is not JSON.
pub(super) fn event_json(event: &SseEvent) -> Result<Value, TranslateError> {
    serde_json::from_str(&event.data).map_err(|error| {
        TranslateError::upstream(format!("upstream stream event is not JSON: {error}"))
    })
}

/// The events of an Anthropic stream a translator acts on, with their data.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AnthropicEvent {
    /// `message_start`.
    MessageStart(Value),
    /// `content_block_start`.
    BlockStart(Value),
    /// `content_block_delta`.
    BlockDelta(Value),
    /// `message_delta`.
    MessageDelta(Value),
    /// `message_stop`.
    MessageStop,
    /// `error`, which can arrive after the 200.
    Error(Value),
    /// `ping`, `content_block_stop` and future event types: nothing to translate.
    Other,
}

impl AnthropicEvent {
    /// Reads one event; its type is the data's `type`, else the SSE event name.
    pub(super) fn parse(event: &SseEvent) -> Result<Self, TranslateError> {
        let data = event_json(event)?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default()
            .to_owned();
        Ok(match kind.as_str() {
            "message_start" => Self::MessageStart(data),
            "content_block_start" => Self::BlockStart(data),
            "content_block_delta" => Self::BlockDelta(data),
            "message_delta" => Self::MessageDelta(data),
            "message_stop" => Self::MessageStop,
            "error" => Self::Error(data),
            _ => Self::Other,
        })
    }
}
