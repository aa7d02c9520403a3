//! Estimating a stream's output tokens from its content deltas, for a stream whose budget
//! reservation is not a true upper bound (no output cap, the model's maximum unknown): the relay
//! adds each delta's estimate before forwarding it, and the budget hold must cover the total.
//!
//! The estimate is meant to run ahead of the provider's count: every string fragment counts
//! `ceil(bytes / 3)` tokens (English averages about four bytes a token) and at least one. Text,
//! reasoning and tool-call arguments count; metadata, roles and Anthropic's thinking signatures
//! do not. Each event is read into a few typed fields whose strings are measured, never copied;
//! no JSON tree is built.

use moat_protocol::sse::SseEvent;
use moat_protocol::usage::StreamKind;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// Bytes of text counted as one token.
const BYTES_PER_TOKEN: u64 = 3;

/// The estimated output tokens of one event of a stream of `kind`: zero for events that carry
/// no content; for one whose shape is unexpected, its whole data's worth.
pub(super) fn content_tokens(kind: StreamKind, event: &SseEvent) -> u64 {
    let data = event.data.as_str();
    if data.is_empty() || event.is_done() {
        return 0;
    }
    let parsed = match kind {
        StreamKind::OpenAiChat => serde_json::from_str::<ChatChunk>(data).map(|c| c.choices.0),
        StreamKind::Anthropic => {
            let named = match event.event.as_deref() {
                Some(name) => name == "content_block_delta",
                None => data.contains("\"content_block_delta\""),
            };
            if !named {
                return 0;
            }
            serde_json::from_str::<AnthropicDelta>(data).map(|e| e.delta.tokens())
        }
        StreamKind::OpenAiResponses => {
            let named = match event.event.as_deref() {
                Some(name) => name.ends_with(".delta"),
                None => data.contains(".delta\""),
            };
            if !named {
                return 0;
            }
            serde_json::from_str::<ResponsesDelta>(data).map(|e| e.delta.0)
        }
    };
    parsed.unwrap_or_else(|_| tokens_of(data.len()))
}

fn tokens_of(bytes: usize) -> u64 {
    match bytes {
        0 => 0,
        n => (n as u64).div_ceil(BYTES_PER_TOKEN),
    }
}

/// Something that counts tokens.
trait Count {
    fn tokens(&self) -> u64;
}

/// A JSON string's estimated tokens (0 for an empty one, or any other value).
#[derive(Default)]
struct Text(u64);

impl Count for Text {
    fn tokens(&self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Text, E> {
        Ok(Text(tokens_of(v.len())))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Text, E> {
        Ok(Text(0))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Text, E> {
        Ok(Text(0))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Text, E> {
        Ok(Text(0))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Text, E> {
        Ok(Text(0))
    }

    fn visit_unit<E>(self) -> Result<Text, E> {
        Ok(Text(0))
    }

    fn visit_none<E>(self) -> Result<Text, E> {
        Ok(Text(0))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(0))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(0))
    }
}

/// The summed tokens of a JSON array's items (0 for `null`), read without collecting them.
struct Sum<T>(u64, PhantomData<T>);

impl<T> Default for Sum<T> {
    fn default() -> Sum<T> {
        Sum(0, PhantomData)
    }
}

impl<T> Count for Sum<T> {
    fn tokens(&self) -> u64 {
        self.0
    }
}

impl<'de, T: Deserialize<'de> + Count> Deserialize<'de> for Sum<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sum<T>, D::Error> {
        d.deserialize_any(SumVisitor(PhantomData))
    }
}

struct SumVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Count> Visitor<'de> for SumVisitor<T> {
    type Value = Sum<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array or null")
    }

    fn visit_unit<E>(self) -> Result<Sum<T>, E> {
        Ok(Sum::default())
    }

    fn visit_none<E>(self) -> Result<Sum<T>, E> {
        Ok(Sum::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sum<T>, A::Error> {
        let mut total = 0u64;
        while let Some(item) = seq.next_element::<T>()? {
            total = total.saturating_add(item.tokens());
        }
        Ok(Sum(total, PhantomData))
    }
}

impl<T: Count> Count for Option<T> {
    fn tokens(&self) -> u64 {
        self.as_ref().map_or(0, Count::tokens)
    }
}

/// An OpenAI chat chunk: only its choices' deltas count.
#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Sum<ChatChoice>,
}

#[derive(Deserialize)]
struct ChatChoice {
    #[serde(default)]
    delta: Option<ChatDelta>,
}

impl Count for ChatChoice {
    fn tokens(&self) -> u64 {
        self.delta.tokens()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatDelta {
    content: Text,
    reasoning_content: Text,
    reasoning: Text,
    refusal: Text,
    tool_calls: Sum<ToolCall>,
    function_call: Option<Function>,
}

impl Count for ChatDelta {
    fn tokens(&self) -> u64 {
        [
            self.content.tokens(),
            self.reasoning_content.tokens(),
            self.reasoning.tokens(),
            self.refusal.tokens(),
            self.tool_calls.tokens(),
            self.function_call.tokens(),
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }
}

#[derive(Deserialize)]
struct ToolCall {
    #[serde(default)]
    function: Option<Function>,
}

impl Count for ToolCall {
    fn tokens(&self) -> u64 {
        self.function.tokens()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Function {
    name: Text,
    arguments: Text,
}

impl Count for Function {
    fn tokens(&self) -> u64 {
        self.name.tokens().saturating_add(self.arguments.tokens())
    }
}

/// An Anthropic `content_block_delta`: text, thinking or a tool input's JSON fragment.
#[derive(Deserialize)]
struct AnthropicDelta {
    #[serde(default)]
    delta: Option<AnthropicContent>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicContent {
    text: Text,
    thinking: Text,
    partial_json: Text,
}

impl Count for AnthropicContent {
    fn tokens(&self) -> u64 {
        self.text
            .tokens()
            .saturating_add(self.thinking.tokens())
            .saturating_add(self.partial_json.tokens())
    }
}

/// A Responses `*.delta` event: its `delta` string.
#[derive(Deserialize)]
struct ResponsesDelta {
    #[serde(default)]
    delta: Text,
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
    fn openai_chat_counts_text_reasoning_and_tool_fragments() {
        let k = StreamKind::OpenAiChat;
        let tokens = |data: &str| content_tokens(k, &event(None, data));
        let role = r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#;
        assert_eq!(tokens(role), 0);
        // " hello" is 6 bytes: 2 tokens; "x" 1 byte: still 1.
        let text = r#"{"choices":[{"index":0,"delta":{"content":" hello"}}]}"#;
        assert_eq!(tokens(text), 2);
        let two =
            r#"{"choices":[{"delta":{"content":"x"}},{"delta":{"reasoning_content":"abcd"}}]}"#;
        assert_eq!(tokens(two), 1 + 2);
        let tool = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"get","arguments":"{\"a\":"}}]}}]}"#;
        assert_eq!(tokens(tool), 1 + 2);
        // Escapes count as the text they decode to.
        let escaped = r#"{"choices":[{"delta":{"content":"\u00e9\n"}}]}"#;
        assert_eq!(tokens(escaped), 1);
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9}}"#;
        assert_eq!(tokens(usage), 0);
        assert_eq!(tokens(r#"{"choices":null}"#), 0);
        assert_eq!(tokens("[DONE]"), 0);
        // An unexpected shape counts in full.
        assert_eq!(tokens(r#"{"choices":{"x":1}}"#), 7);
    }

    #[test]
    fn anthropic_counts_only_content_deltas_and_not_signatures() {
        let k = StreamKind::Anthropic;
        let tokens = |name: &str, data: &str| content_tokens(k, &event(Some(name), data));
        let text = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello there"}}"#;
        assert_eq!(tokens("content_block_delta", text), 4);
        let thinking = r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#;
        assert_eq!(tokens("content_block_delta", thinking), 1);
        let json = r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}"#;
        assert_eq!(tokens("content_block_delta", json), 3);
        let signature = r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}"#;
        assert_eq!(tokens("content_block_delta", signature), 0);
        let start = r#"{"type":"message_start","message":{"content":[{"type":"text","text":"long text here"}]}}"#;
        assert_eq!(tokens("message_start", start), 0);
        assert_eq!(tokens("ping", r#"{"type":"ping"}"#), 0);
        // Unnamed events are recognised by their type.
        assert_eq!(content_tokens(k, &event(None, text)), 4);
    }

    #[test]
    fn responses_count_every_delta_event() {
        let k = StreamKind::OpenAiResponses;
        let tokens = |name: &str, data: &str| content_tokens(k, &event(Some(name), data));
        let text = r#"{"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,"delta":"Hi!"}"#;
        assert_eq!(tokens("response.output_text.delta", text), 1);
        let args =
            r#"{"type":"response.function_call_arguments.delta","delta":"{\"q\":\"weather\"}"}"#;
        assert_eq!(tokens("response.function_call_arguments.delta", args), 5);
        let done = r#"{"type":"response.output_text.done","text":"Hi! and much more"}"#;
        assert_eq!(tokens("response.output_text.done", done), 0);
        let created = r#"{"type":"response.created","response":{}}"#;
        assert_eq!(tokens("response.created", created), 0);
    }
}
