//! OpenAI Chat Completions chunk stream -> Anthropic Messages stream, one event at a time.

use bytes::Bytes;
use serde_json::{json, Value};

use super::anthropic_event::event_json;
use super::mapping::stop_reason_for_finish_reason;
use super::response_o2a::reasoning_text;
use super::TranslateError;
use crate::errors::{anthropic_error, openai_error_to_anthropic};
use crate::sse::{encode_event, SseEvent};
use crate::usage::Usage;

/// Translates one OpenAI chunk stream (first choice) into Anthropic `event:` frames.
///
/// `message_start` comes with the first chunk, with zero usage since OpenAI reports usage only
/// at the end. Reasoning, text and each tool call get their own content block; a block closes
/// when the next kind starts or the choice finishes. Tool arguments travel as `input_json_delta`
/// fragments, with no initial `{}`. After a `finish_reason`, the chunk carrying usage (or
/// `[DONE]`, or the end of the upstream) yields `message_delta` with the stop reason and final
/// usage, then `message_stop`.
///
/// Servers stream the fragments of one tool call contiguously in practice; should a fragment
/// return to a call whose block was already closed, it is sent as a delta for that block's index,
/// where SDK accumulators still attach it to the right call.
#[derive(Debug, Clone)]
pub struct OpenAiToAnthropicStream {
    client_model: String,
    started: bool,
    open: Option<OpenBlock>,
    next_block: usize,
    /// OpenAI tool call index -> Anthropic block index.
    tools: Vec<(u64, usize)>,
    finish_reason: Option<String>,
    /// Whether the answer came as `delta.refusal` (a structured-output refusal).
    refused: bool,
    usage: Option<Usage>,
    ended: bool,
}

/// The content block currently open, with its Anthropic index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(usize),
    Thinking(usize),
    Tool(usize),
}

impl OpenBlock {
    fn index(self) -> usize {
        match self {
            OpenBlock::Text(index) | OpenBlock::Thinking(index) | OpenBlock::Tool(index) => index,
        }
    }
}

impl OpenAiToAnthropicStream {
    /// A translator for a client that asked for `client_model`.
    pub fn new(client_model: &str) -> Self {
        Self {
            client_model: client_model.to_owned(),
            started: false,
            open: None,
            next_block: 0,
            tools: Vec::new(),
            finish_reason: None,
            refused: false,
            usage: None,
            ended: false,
        }
    }

    /// Translates one upstream event (a chunk, `[DONE]` or `{"error": ...}`) into zero or more
    /// client frames. Events after the end are ignored; data that is not JSON is an error.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Vec<Bytes>, TranslateError> {
        if self.ended {
            return Ok(Vec::new());
        }
        let mut frames = Vec::new();
        if event.is_done() {
            // A server that says it is done without a finish_reason still ended cleanly.
            self.ensure_started("", &mut frames);
            self.finalize(&mut frames);
            return Ok(frames);
        }
        let chunk = event_json(event)?;
        if chunk.get("error").is_some_and(|error| !error.is_null()) {
            let body = openai_error_to_anthropic(0, &chunk);
            frames.push(encode_event(Some("error"), &body.to_string()));
            self.ended = true;
            return Ok(frames);
        }
        self.ensure_started(chunk["id"].as_str().unwrap_or_default(), &mut frames);
        let usage = Usage::from_openai_chat(&chunk);
        if usage.is_some() {
            self.usage = usage;
        }
        if let Some(choice) = chunk["choices"].as_array().and_then(|c| c.first()) {
            self.on_choice(choice, &mut frames);
        }
        if self.finish_reason.is_some() && usage.is_some() {
            self.finalize(&mut frames);
        }
        Ok(frames)
    }

    /// Call when the upstream stream ends. After a `finish_reason` the message is finalized;
    /// without one an `error` event says the upstream ended early.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        if self.finish_reason.is_none() {
            return self.fail("upstream stream ended before the response was complete");
        }
        let mut frames = Vec::new();
        self.finalize(&mut frames);
        frames
    }

    /// Ends the stream with an Anthropic `api_error` event carrying `message`. Returns nothing if
    /// the stream already ended.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        let body = anthropic_error("api_error", message);
        vec![encode_event(Some("error"), &body.to_string())]
    }

    /// Usage reported by the upstream so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The OpenAI finish reason seen, if any.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    fn ensure_started(&mut self, id: &str, frames: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let start = json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_{id}"),
                "type": "message",
                "role": "assistant",
                "model": self.client_model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        });
        frames.push(frame("message_start", &start));
    }

    fn on_choice(&mut self, choice: &Value, frames: &mut Vec<Bytes>) {
        let delta = &choice["delta"];
        if let Some(text) = delta.as_object().and_then(reasoning_text) {
            self.thinking(text, frames);
        }
        for key in ["content", "refusal"] {
            if let Some(text) = delta[key].as_str().filter(|text| !text.is_empty()) {
                self.refused |= key == "refusal";
                self.text(text, frames);
            }
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for call in calls {
                self.tool_fragment(call, frames);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
            self.close_block(frames);
        }
    }

    fn text(&mut self, text: &str, frames: &mut Vec<Bytes>) {
        let index = match self.open {
            Some(OpenBlock::Text(index)) => index,
            _ => self.open_block(OpenBlock::Text, json!({"type": "text", "text": ""}), frames),
        };
        push_delta(frames, index, json!({"type": "text_delta", "text": text}));
    }

    fn thinking(&mut self, text: &str, frames: &mut Vec<Bytes>) {
        let index = match self.open {
            Some(OpenBlock::Thinking(index)) => index,
            _ => {
                let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                self.open_block(OpenBlock::Thinking, block, frames)
            }
        };
        push_delta(
            frames,
            index,
            json!({"type": "thinking_delta", "thinking": text}),
        );
    }

    fn tool_fragment(&mut self, call: &Value, frames: &mut Vec<Bytes>) {
        let openai_index = self.tool_call_index(call);
        let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        let known = self.tools.iter().find(|(index, _)| *index == openai_index);
        let block_index = match known {
            Some(&(_, block_index)) => block_index,
            None => {
                let id = call["id"]
                    .as_str()
                    .map_or_else(|| format!("toolu_{}", self.next_block), str::to_owned);
                let name = call["function"]["name"].as_str().unwrap_or_default();
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let block_index = self.open_block(OpenBlock::Tool, block, frames);
                self.tools.push((openai_index, block_index));
                block_index
            }
        };
        if !arguments.is_empty() {
            let delta = json!({"type": "input_json_delta", "partial_json": arguments});
            push_delta(frames, block_index, delta);
        }
    }

    /// The call's `index`; servers that omit it get one from the id, or the latest call.
    fn tool_call_index(&self, call: &Value) -> u64 {
        if let Some(index) = call["index"].as_u64() {
            return index;
        }
        let latest = self.tools.last().map(|(index, _)| *index);
        match call["id"].as_str() {
            Some(_) => latest.map_or(0, |index| index + 1),
            None => latest.unwrap_or_default(),
        }
    }

    /// Closes the open block and opens `block` as the next index.
    fn open_block(
        &mut self,
        kind: fn(usize) -> OpenBlock,
        block: Value,
        frames: &mut Vec<Bytes>,
    ) -> usize {
        self.close_block(frames);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(kind(index));
        let start = json!({"type": "content_block_start", "index": index, "content_block": block});
        frames.push(frame("content_block_start", &start));
        index
    }

    fn close_block(&mut self, frames: &mut Vec<Bytes>) {
        if let Some(open) = self.open.take() {
            let stop = json!({"type": "content_block_stop", "index": open.index()});
            frames.push(frame("content_block_stop", &stop));
        }
    }

    fn finalize(&mut self, frames: &mut Vec<Bytes>) {
        self.close_block(frames);
        let stop_reason = match self.finish_reason.as_deref() {
            // A structured-output refusal arrives as `delta.refusal` with finish_reason `stop`.
            Some("stop") | None if self.refused => "refusal",
            reason => stop_reason_for_finish_reason(reason, !self.tools.is_empty()),
        };
        let delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": self.usage.unwrap_or_default().to_anthropic_json(),
        });
        frames.push(frame("message_delta", &delta));
        frames.push(frame("message_stop", &json!({"type": "message_stop"})));
        self.ended = true;
    }
}

fn frame(name: &str, data: &Value) -> Bytes {
    encode_event(Some(name), &data.to_string())
}

fn push_delta(frames: &mut Vec<Bytes>, index: usize, delta: Value) {
    let event = json!({"type": "content_block_delta", "index": index, "delta": delta});
    frames.push(frame("content_block_delta", &event));
}
