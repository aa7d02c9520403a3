//! Upstream stream events parsed once, for the translators that read them.

use serde_json::Value;

use super::TranslateError;
use crate::sse::SseEvent;
use crate::usage::AnthropicUsage;

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

/// Folds a `message_delta`'s data into what a translator keeps of the stream: the cumulative
/// usage it carries, and the stop reason once there is one.
pub(super) fn fold_message_delta(
    data: &Value,
    usage: &mut Option<AnthropicUsage>,
    stop_reason: &mut Option<String>,
) {
    usage
        .get_or_insert_with(AnthropicUsage::default)
        .apply(&data["usage"]);
    if let Some(reason) = data["delta"]["stop_reason"].as_str() {
        *stop_reason = Some(reason.to_owned());
    }
}
