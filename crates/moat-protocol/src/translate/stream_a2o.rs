//! Anthropic Messages stream -> OpenAI Chat Completions chunk stream, one event at a time.

use bytes::Bytes;
use serde_json::{json, Value};

use super::anthropic_event::{fold_message_delta, AnthropicEvent};
use super::mapping::finish_reason_for_stop_reason;
use super::response_a2o::{openai_usage_json, REFUSAL_TEXT};
use super::TranslateError;
use crate::errors::{anthropic_error_to_openai, openai_error};
use crate::sse::{encode_data, SseEvent, DONE};
use crate::usage::{AnthropicUsage, Usage};

/// Translates one Anthropic stream into OpenAI `data: {chunk}` frames.
///
/// Every chunk carries the same id (`chatcmpl-` + the Anthropic message id); the first carries
/// `delta.role`. Tool calls are numbered 0, 1, ... in order of appearance, independently of the
/// Anthropic block index. `message_delta` yields the `finish_reason` chunk; `message_stop` the
/// usage chunk (when the client asked for it) and `[DONE]`. An upstream `error` event becomes
/// `data: {"error": ...}` and ends the stream. The stream never ends with `[DONE]` unless
/// `message_stop` was seen.
#[derive(Debug, Clone)]
pub struct AnthropicToOpenAiStream {
    client_model: String,
    created: i64,
    include_usage: bool,
    id: String,
    usage: Option<AnthropicUsage>,
    /// Anthropic block index -> OpenAI tool call index.
    tool_blocks: Vec<(u64, usize)>,
    started: bool,
    finish_sent: bool,
    stop_reason: Option<String>,
    ended: bool,
    /// How text blocks go out (see [`Self::structured_output`]).
    text: TextMode,
}

/// Where a text delta goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TextMode {
    /// `delta.content`, always (no structured output asked).
    Content,
    /// A structured output was asked; the text so far (whitespace only) is held until its first
    /// character says whether it is the JSON or a refusal.
    Undecided(String),
    /// `delta.content`: the answer is the JSON.
    Json,
    /// `delta.refusal`: the answer is a refusal.
    Refusal,
}

impl AnthropicToOpenAiStream {
    /// A translator for a client that asked for `client_model`; `created` is the unix time put
    /// in every chunk and `include_usage` mirrors the client's `stream_options.include_usage`.
    pub fn new(client_model: &str, created: i64, include_usage: bool) -> Self {
        Self {
            client_model: client_model.to_owned(),
            created,
            include_usage,
            id: "chatcmpl-moat".to_owned(),
            usage: None,
            tool_blocks: Vec::new(),
            started: false,
            finish_sent: false,
            stop_reason: None,
            ended: false,
            text: TextMode::Content,
        }
    }

    /// For a client that asked for a structured output: constrained decoding makes the answer
    /// start with `{` or `[`, so text that starts otherwise is a refusal and streams as
    /// `delta.refusal` with finish_reason `stop`, the way OpenAI's structured outputs refuse.
    /// (A refusal stop reason after JSON has begun stays `content_filter`.)
    pub fn structured_output(mut self, asked: bool) -> Self {
        if asked {
            self.text = TextMode::Undecided(String::new());
        }
        self
    }

    /// Translates one upstream event into zero or more client frames. Events after the end of
    /// the stream are ignored; data that is not JSON is an error (see [`Self::fail`]).
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Vec<Bytes>, TranslateError> {
        if self.ended {
            return Ok(Vec::new());
        }
        let mut frames = Vec::new();
        match AnthropicEvent::parse(event)? {
            AnthropicEvent::MessageStart(data) => self.on_message_start(&data, &mut frames),
            AnthropicEvent::BlockStart(data) => self.on_block_start(&data, &mut frames),
            AnthropicEvent::BlockDelta(data) => self.on_block_delta(&data, &mut frames),
            AnthropicEvent::MessageDelta(data) => self.on_message_delta(&data, &mut frames),
            AnthropicEvent::MessageStop => self.on_message_stop(&mut frames),
            AnthropicEvent::Error(data) => {
                let body = anthropic_error_to_openai(0, &data);
                frames.push(encode_data(&body.to_string()));
                self.ended = true;
            }
            AnthropicEvent::Other => {}
        }
        Ok(frames)
    }

    /// Call when the upstream stream ends. Unless `message_stop` or an error was seen, returns an
    /// error frame: a truncated answer must never look complete.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        self.fail("upstream stream ended before the response was complete")
    }

    /// Ends the stream with an OpenAI error frame carrying `message` (e.g. on an upstream read
    /// error or timeout). Returns nothing if the stream already ended.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        let body = openai_error(message, "server_error", None, None);
        vec![encode_data(&body.to_string())]
    }

    /// Usage seen so far, in OpenAI semantics.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(AnthropicUsage::to_usage)
    }

    /// The Anthropic stop reason seen, if any.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    fn on_message_start(&mut self, data: &Value, frames: &mut Vec<Bytes>) {
        let message = &data["message"];
        if let Some(id) = message["id"].as_str() {
            self.id = format!("chatcmpl-{id}");
        }
        let mut usage = AnthropicUsage::default();
        usage.apply(&message["usage"]);
        self.usage = Some(usage);
        self.ensure_started(frames);
    }

    fn ensure_started(&mut self, frames: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            frames.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn on_block_start(&mut self, data: &Value, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        let block = &data["content_block"];
        match block["type"].as_str() {
            Some("tool_use") => {
                self.flush_text(frames);
                let tool_index = self.tool_blocks.len();
                let block_index = data["index"].as_u64().unwrap_or_default();
                self.tool_blocks.push((block_index, tool_index));
                let call = json!({
                    "index": tool_index,
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": ""},
                });
                frames.push(self.chunk(json!({"tool_calls": [call]}), None));
            }
            Some("text") => self.push_text(frames, &block["text"]),
            Some("thinking") => self.push_delta(frames, "reasoning_content", &block["thinking"]),
            _ => {}
        }
    }

    fn on_block_delta(&mut self, data: &Value, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        let delta = &data["delta"];
        match delta["type"].as_str() {
            Some("text_delta") => self.push_text(frames, &delta["text"]),
            Some("thinking_delta") => {
                self.push_delta(frames, "reasoning_content", &delta["thinking"])
            }
            Some("input_json_delta") => {
                let fragment = delta["partial_json"].as_str().unwrap_or_default();
                let block_index = data["index"].as_u64().unwrap_or_default();
                let tool = self
                    .tool_blocks
                    .iter()
                    .find(|(block, _)| *block == block_index);
                if let (Some(&(_, tool_index)), false) = (tool, fragment.is_empty()) {
                    let call = json!({"index": tool_index, "function": {"arguments": fragment}});
                    frames.push(self.chunk(json!({"tool_calls": [call]}), None));
                }
            }
            _ => {} // signature_delta and citations_delta have no OpenAI counterpart.
        }
    }

    /// A text fragment of the answer, as content or refusal (see [`TextMode`]).
    fn push_text(&mut self, frames: &mut Vec<Bytes>, text: &Value) {
        let key = match &mut self.text {
            TextMode::Content | TextMode::Json => "content",
            TextMode::Refusal => "refusal",
            TextMode::Undecided(held) => {
                held.push_str(text.as_str().unwrap_or_default());
                let decided = match held.trim_start().chars().next() {
                    None => return,
                    Some('{' | '[') => TextMode::Json,
                    Some(_) => TextMode::Refusal,
                };
                let held = std::mem::take(held);
                self.text = decided;
                return self.push_text(frames, &Value::String(held));
            }
        };
        self.push_delta(frames, key, text);
    }

    /// Held whitespace goes out as content before the answer ends.
    fn flush_text(&mut self, frames: &mut Vec<Bytes>) {
        if let TextMode::Undecided(held) = &mut self.text {
            let held = std::mem::take(held);
            self.push_delta(frames, "content", &Value::String(held));
        }
    }

    /// A non-empty text fragment as `delta[key]`.
    fn push_delta(&self, frames: &mut Vec<Bytes>, key: &str, text: &Value) {
        if let Some(text) = text.as_str().filter(|text| !text.is_empty()) {
            let mut delta = serde_json::Map::new();
            delta.insert(key.to_owned(), Value::String(text.to_owned()));
            frames.push(self.chunk(Value::Object(delta), None));
        }
    }

    fn on_message_delta(&mut self, data: &Value, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        fold_message_delta(data, &mut self.usage, &mut self.stop_reason);
        self.push_finish(frames);
    }

    fn push_finish(&mut self, frames: &mut Vec<Bytes>) {
        if self.finish_sent {
            return;
        }
        self.finish_sent = true;
        let stop_reason = self.stop_reason.clone();
        let stop_reason = stop_reason.as_deref();
        if stop_reason == Some("refusal") && matches!(self.text, TextMode::Undecided(_)) {
            // A structured-output refusal that said nothing.
            self.text = TextMode::Refusal;
            self.push_delta(frames, "refusal", &Value::from(REFUSAL_TEXT));
        }
        self.flush_text(frames);
        let reason = match (&self.text, stop_reason) {
            (TextMode::Refusal, Some("max_tokens" | "model_context_window_exceeded")) => "length",
            (TextMode::Refusal, _) => "stop",
            _ => finish_reason_for_stop_reason(stop_reason),
        };
        frames.push(self.chunk(json!({}), Some(reason)));
    }

    fn on_message_stop(&mut self, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        self.push_finish(frames);
        if self.include_usage {
            let usage = openai_usage_json(self.usage().unwrap_or_default());
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.client_model,
                "choices": [],
                "usage": usage,
            });
            frames.push(encode_data(&chunk.to_string()));
        }
        frames.push(Bytes::from_static(DONE));
        self.ended = true;
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.client_model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        encode_data(&chunk.to_string())
    }
}
