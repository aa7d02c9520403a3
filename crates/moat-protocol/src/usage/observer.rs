//! Watches a response stream on the side and keeps its usage, stop reason and clean ending.

use memchr::memmem::Finder;
use serde_json::Value;
use std::sync::LazyLock;

use super::{AnthropicUsage, Usage};
use crate::sse::SseEvent;

/// Which protocol a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Chat Completions chunks ending with `data: [DONE]`.
    OpenAiChat,
    /// Responses API typed events ending with `response.completed` (or incomplete/failed).
    OpenAiResponses,
    /// Anthropic Messages events ending with `message_stop`.
    Anthropic,
}

/// Whether an event can carry usage, a stop reason or the stream's end. Most events of a stream are
/// content deltas that carry none; skipping them saves building a JSON tree per token.
fn may_matter(kind: StreamKind, event: &SseEvent) -> bool {
    let data = event.data.as_str();
    match kind {
        // OpenAI sends `"usage": null` on every chunk of a metered stream: only a non-null one counts.
        StreamKind::OpenAiChat => has_usage(data) || has_finish_reason(data),
        StreamKind::Anthropic => match event.event.as_deref() {
            Some(name) => matches!(name, "message_start" | "message_delta" | "message_stop"),
            None => !data.contains("\"content_block_"),
        },
        StreamKind::OpenAiResponses => match event.event.as_deref() {
            Some(name) => name.starts_with("response.") && !name.contains(".delta"),
            None => true,
        },
    }
}

/// Whether some occurrence of the JSON key `key` (given with its quotes) in `data` has a value
/// other than `null`. A cheap pre-check before parsing; false positives only cost the parse.
pub fn has_non_null(data: &str, key: &str) -> bool {
    non_null_after(data, &Finder::new(key))
}

/// Whether an OpenAI chunk carries a non-null `usage` (every chunk of a metered stream carries
/// `"usage": null`).
pub fn has_usage(data: &str) -> bool {
    static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"usage\""));
    non_null_after(data, &USAGE)
}

/// Whether an OpenAI chunk is the one `stream_options.include_usage` adds: no choices (or
/// `"choices": null`, as some servers send), only usage. Parsed only when it carries usage.
pub fn is_usage_only_chunk(data: &str) -> bool {
    if !has_usage(data) {
        return false;
    }
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(v) => {
            let no_choices = match v.get("choices") {
                None | Some(serde_json::Value::Null) => true,
                Some(serde_json::Value::Array(a)) => a.is_empty(),
                Some(_) => false,
            };
            no_choices && v.get("usage").is_some_and(|u| !u.is_null())
        }
        Err(_) => false,
    }
}

fn has_finish_reason(data: &str) -> bool {
    static FINISH: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"finish_reason\""));
    non_null_after(data, &FINISH)
}

fn non_null_after(data: &str, key: &Finder<'_>) -> bool {
    let len = key.needle().len();
    key.find_iter(data.as_bytes()).any(|at| {
        let rest = data.get(at + len..).unwrap_or("").trim_start();
        let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
        !rest.starts_with("null")
    })
}

/// Accumulates what a stream says about usage and how it ended, one event at a time.
///
/// Lenient by design: unparsable data is ignored, so a relay never fails because of metering.
#[derive(Debug, Clone, Default)]
pub struct UsageObserver {
    usage: Option<Usage>,
    anthropic: Option<AnthropicUsage>,
    stop_reason: Option<String>,
    completed: bool,
}

impl UsageObserver {
    /// An observer that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event of a stream of `kind`.
    pub fn observe(&mut self, kind: StreamKind, event: &SseEvent) {
        if event.is_done() {
            if kind == StreamKind::OpenAiChat {
                self.completed = true;
            }
            return;
        }
        if !may_matter(kind, event) {
            return;
        }
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        match kind {
            StreamKind::OpenAiChat => self.observe_chat(&data),
            StreamKind::OpenAiResponses => self.observe_responses(event.event.as_deref(), &data),
            StreamKind::Anthropic => self.observe_anthropic(&data),
        }
    }

    /// The usage reported so far, if any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the stream reached its protocol's clean end (`[DONE]`, `message_stop`,
    /// `response.completed` or `response.incomplete`).
    pub fn completed(&self) -> bool {
        self.completed
    }

    /// The last finish or stop reason seen, in the stream's own vocabulary.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    fn observe_chat(&mut self, chunk: &Value) {
        let reason = chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .rev()
            .find_map(|choice| choice.get("finish_reason").and_then(Value::as_str));
        if let Some(reason) = reason {
            self.stop_reason = Some(reason.to_owned());
        }
        if let Some(usage) = Usage::from_openai_chat(chunk) {
            self.usage = Some(usage);
        }
    }

    fn observe_responses(&mut self, name: Option<&str>, data: &Value) {
        let kind = data.get("type").and_then(Value::as_str).or(name);
        let ended_cleanly = match kind {
            Some("response.completed" | "response.incomplete") => true,
            Some("response.failed") => false,
            _ => return,
        };
        let response = data.get("response").unwrap_or(&Value::Null);
        if let Some(usage) = Usage::from_openai_responses(response) {
            self.usage = Some(usage);
        }
        let reason = response
            .pointer("/incomplete_details/reason")
            .or_else(|| response.get("status"))
            .and_then(Value::as_str);
        if let Some(reason) = reason {
            self.stop_reason = Some(reason.to_owned());
        }
        self.completed = ended_cleanly;
    }

    fn observe_anthropic(&mut self, data: &Value) {
        match data.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let mut parts = AnthropicUsage::default();
                if let Some(usage) = data.pointer("/message/usage") {
                    parts.apply(usage);
                }
                self.set_anthropic(parts);
            }
            Some("message_delta") => {
                let mut parts = self.anthropic.unwrap_or_default();
                if let Some(usage) = data.get("usage") {
                    parts.apply(usage);
                }
                self.set_anthropic(parts);
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
            }
            Some("message_stop") => self.completed = true,
            _ => {}
        }
    }

    fn set_anthropic(&mut self, parts: AnthropicUsage) {
        self.anthropic = Some(parts);
        self.usage = Some(parts.to_usage());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod prefilter_tests {
    use super::*;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_string),
            data: data.to_string(),
            raw: bytes::Bytes::new(),
        }
    }

    #[test]
    fn only_events_that_can_carry_usage_or_an_end_are_parsed() {
        let chat = StreamKind::OpenAiChat;
        assert!(!may_matter(
            chat,
            &event(
                None,
                r#"{"choices":[{"delta":{"content":"\"usage\""},"finish_reason":null}]}"#
            )
        ));
        assert!(may_matter(
            chat,
            &event(
                None,
                r#"{"choices":[{"delta":{},"finish_reason": "stop"}]}"#
            )
        ));
        assert!(may_matter(
            chat,
            &event(None, r#"{"choices":[],"usage":{"prompt_tokens":1}}"#)
        ));
        let metered_delta =
            r#"{"choices":[{"delta":{"content":"a"},"finish_reason":null}],"usage":null}"#;
        assert!(!may_matter(chat, &event(None, metered_delta)));
        let anthropic = StreamKind::Anthropic;
        assert!(!may_matter(
            anthropic,
            &event(Some("content_block_delta"), "{}")
        ));
        assert!(may_matter(anthropic, &event(Some("message_delta"), "{}")));
        assert!(may_matter(
            anthropic,
            &event(None, r#"{"type":"message_stop"}"#)
        ));
        let responses = StreamKind::OpenAiResponses;
        assert!(!may_matter(
            responses,
            &event(Some("response.output_text.delta"), "{}")
        ));
        assert!(may_matter(
            responses,
            &event(Some("response.completed"), "{}")
        ));
    }
}
