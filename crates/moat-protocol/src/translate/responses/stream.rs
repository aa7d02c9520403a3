//! Anthropic Messages stream -> Responses API event stream, one event at a time.

use bytes::Bytes;
use serde_json::{json, Value};

use super::echo::{Answer, ResponsesEcho};
use super::events::Events;
use super::items::{
    function_call_item, message_item, opens_json, output_text, reasoning_item, refusal, ItemIds,
    Outcome,
};
use super::reasoning;
use crate::errors::anthropic_error_to_openai;
use crate::sse::SseEvent;
use crate::translate::anthropic_event::{fold_message_delta, AnthropicEvent};
use crate::translate::response_a2o::REFUSAL_TEXT;
use crate::translate::TranslateError;
use crate::usage::{AnthropicUsage, Usage};

/// Translates one Anthropic stream into Responses events (`event: <type>` + `data: {...}`),
/// numbered by `sequence_number` from 0.
///
/// `message_start` -> `response.created` and `response.in_progress` (status `in_progress`, no
/// output). Each output item (see [`super::anthropic_to_responses_response`] for which block
/// makes which item) is `response.output_item.added`, its deltas, then its closing events and
/// `response.output_item.done`:
/// - message: `response.content_part.added` (an empty `output_text`),
///   `response.output_text.delta` per text delta, `response.output_text.done`,
///   `response.content_part.done`; a refusal adds a `refusal` part the same way
///   (`response.refusal.delta`, `response.refusal.done`). When the client asked for a structured
///   output, the first non-blank character of a message decides its part: `{` or `[` begins the
///   JSON (`output_text`), anything else is a refusal streamed as the `refusal` part alone, the
///   way OpenAI's structured outputs refuse. Leading whitespace waits for that character (it goes
///   out as `output_text` if the item closes first); a refusal stop reason with nothing said is a
///   `refusal` part with a fixed text;
/// - function call (added with empty `arguments`): `response.function_call_arguments.delta` per
///   `input_json_delta`, `response.function_call_arguments.done`;
/// - reasoning: `response.reasoning_text.delta` per thinking delta and
///   `response.reasoning_text.done` (raw thinking is reasoning content, not a summary); the
///   `encrypted_content` token, which needs the signature sent last, only in the done item.
///
/// An item closes when the next block starts or at `message_delta`, whose stop reason decides
/// the last item's status. `message_stop` -> `response.completed`, or `response.incomplete`
/// when the answer was cut at `max_tokens`, with the whole response (all items, usage). An
/// upstream `error` event, [`Self::fail`] or a stream that ends early ([`Self::finish`]) ->
/// an `error` event and `response.failed`, which ends the stream: a truncated answer never looks
/// complete. There is no `[DONE]`. Events after the end are ignored.
#[derive(Debug, Clone)]
pub struct AnthropicToResponsesStream {
    echo: ResponsesEcho,
    client_model: String,
    created_at: i64,
    ids: ItemIds,
    events: Events,
    usage: Option<AnthropicUsage>,
    stop_reason: Option<String>,
    started: bool,
    /// `message_delta` was seen: the last item has its final status.
    settled: bool,
    ended: bool,
    open: Option<Open>,
}

/// The item being streamed.
#[derive(Debug, Clone)]
struct Open {
    /// The item id.
    id: String,
    /// The Anthropic block index its deltas carry.
    block: u64,
    body: Body,
}

/// What the open item has gathered.
#[derive(Debug, Clone)]
enum Body {
    Message {
        text: String,
        part: Part,
    },
    Call {
        call_id: Value,
        name: Value,
        arguments: String,
    },
    Reasoning {
        thinking: String,
        signature: String,
        /// The data of a `redacted_thinking` block.
        redacted: Option<String>,
    },
}

/// What a message item's text streams as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// An `output_text` part (the answer, or a structured output's JSON).
    Text,
    /// A structured output whose text is blank so far: no part is open, the text is held.
    Undecided,
    /// A `refusal` part: a structured output's refusal.
    Refusal,
}

impl AnthropicToResponsesStream {
    /// A translator for a client that asked for `client_model` with the request `echo` was
    /// taken from; `created_at` is the unix time put in every `response` object.
    pub fn new(echo: ResponsesEcho, client_model: &str, created_at: i64) -> Self {
        Self {
            echo,
            client_model: client_model.to_owned(),
            created_at,
            ids: ItemIds::new(None),
            events: Events::default(),
            usage: None,
            stop_reason: None,
            started: false,
            settled: false,
            ended: false,
            open: None,
        }
    }

    /// Translates one upstream event into zero or more client events. Events after the end of
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
                self.fail_with(&body["error"], &mut frames);
            }
            AnthropicEvent::Other => {}
        }
        Ok(frames)
    }

    /// Call when the upstream stream ends. Unless `message_stop` or an error was seen, returns an
    /// `error` event and `response.failed`: a truncated answer must never look complete.
    pub fn finish(&mut self) -> Vec<Bytes> {
        self.fail("upstream stream ended before the response was complete")
    }

    /// Ends the stream with an `error` event carrying `message` and `response.failed` (e.g. on an
    /// upstream read error or timeout). Returns nothing if the stream already ended.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        let mut frames = Vec::new();
        if !self.ended {
            let error = json!({"message": message, "type": "server_error", "code": "server_error"});
            self.fail_with(&error, &mut frames);
        }
        frames
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
        if !self.started {
            self.ids = ItemIds::new(message["id"].as_str());
        }
        self.usage
            .get_or_insert_with(AnthropicUsage::default)
            .apply(&message["usage"]);
        self.ensure_started(frames);
    }

    fn ensure_started(&mut self, frames: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        for kind in ["response.created", "response.in_progress"] {
            let response = self.response("in_progress", None, None);
            self.events
                .emit(frames, kind, json!({"response": response}));
        }
    }

    fn on_block_start(&mut self, data: &Value, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        let block = &data["content_block"];
        let index = data["index"].as_u64().unwrap_or_default();
        let kind = block["type"].as_str().unwrap_or_default();
        match kind {
            "text" => match &mut self.open {
                // A run of text blocks stays one message item.
                Some(open) if matches!(open.body, Body::Message { .. }) => open.block = index,
                _ => {
                    self.close("completed", frames);
                    self.open = Some(self.open_message(index, frames));
                }
            },
            "tool_use" => {
                self.close("completed", frames);
                self.open = Some(self.open_call(index, block, frames));
            }
            "thinking" | "redacted_thinking" => {
                self.close("completed", frames);
                self.open = Some(self.open_reasoning(index, block, frames));
            }
            // Server tool blocks have no Responses counterpart, nor do they end a run of text.
            _ => return,
        }
        // Content in the start event itself (not sent by Anthropic today) counts as a delta.
        for (key, delta) in [("text", "text_delta"), ("thinking", "thinking_delta")] {
            if let Some(text) = block[key].as_str().filter(|text| !text.is_empty()) {
                let delta = json!({"type": delta, key: text});
                self.on_block_delta(&json!({"index": index, "delta": delta}), frames);
            }
        }
    }

    fn open_message(&mut self, block: u64, frames: &mut Vec<Bytes>) -> Open {
        let id = self.next_id("msg");
        self.events
            .added(frames, message_item(&id, "in_progress", Vec::new()));
        let part = if self.echo.structured_output() {
            Part::Undecided
        } else {
            self.part_added(frames, &id, 0, output_text(""));
            Part::Text
        };
        let body = Body::Message {
            text: String::new(),
            part,
        };
        Open { id, block, body }
    }

    fn open_reasoning(&mut self, block: u64, start: &Value, frames: &mut Vec<Bytes>) -> Open {
        let id = self.next_id("rs");
        self.events.added(frames, reasoning_item(&id, "", None));
        let redacted = (start["type"] == "redacted_thinking")
            .then(|| start["data"].as_str().unwrap_or_default().to_owned());
        let body = Body::Reasoning {
            thinking: String::new(),
            signature: start["signature"].as_str().unwrap_or_default().to_owned(),
            redacted,
        };
        Open { id, block, body }
    }

    fn open_call(&mut self, block: u64, start: &Value, frames: &mut Vec<Bytes>) -> Open {
        let id = self.next_id("fc");
        let (call_id, name) = (start["id"].clone(), start["name"].clone());
        let item = function_call_item(&id, "in_progress", &call_id, &name, "");
        self.events.added(frames, item);
        let body = Body::Call {
            call_id,
            name,
            arguments: String::new(),
        };
        let mut open = Open { id, block, body };
        // An input given whole in the start event (not streamed as JSON deltas).
        if let Some(input) = start["input"].as_object().filter(|input| !input.is_empty()) {
            self.arguments_delta(&mut open, &Value::Object(input.clone()).to_string(), frames);
        }
        open
    }

    fn on_block_delta(&mut self, data: &Value, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        let index = data["index"].as_u64().unwrap_or_default();
        let delta = &data["delta"];
        let Some(mut open) = self.open.take_if(|open| open.block == index) else {
            return;
        };
        let text = |key: &str| delta[key].as_str().unwrap_or_default().to_owned();
        match (&mut open.body, delta["type"].as_str()) {
            (Body::Message { text: all, part }, Some("text_delta")) => {
                let fragment = text("text");
                all.push_str(&fragment);
                if *part == Part::Undecided {
                    let Some(json) = opens_json(all) else {
                        self.open = Some(open);
                        return;
                    };
                    *part = if json { Part::Text } else { Part::Refusal };
                    let empty = if json { output_text("") } else { refusal("") };
                    self.part_added(frames, &open.id, 0, empty);
                    // The held whitespace goes out with the character that decided.
                    self.text_delta((&open.id, 0), *part, all, frames);
                } else {
                    self.text_delta((&open.id, 0), *part, &fragment, frames);
                }
            }
            (Body::Call { .. }, Some("input_json_delta")) => {
                self.arguments_delta(&mut open, &text("partial_json"), frames);
            }
            (Body::Reasoning { thinking, .. }, Some("thinking_delta")) => {
                let fragment = text("thinking");
                if !fragment.is_empty() {
                    thinking.push_str(&fragment);
                    let extra = json!({"delta": fragment});
                    let kind = "response.reasoning_text.delta";
                    self.events.part_event(frames, kind, &open.id, 0, extra);
                }
            }
            (Body::Reasoning { signature, .. }, Some("signature_delta")) => {
                signature.push_str(&text("signature"));
            }
            _ => {} // citations_delta, and deltas that do not fit the block.
        }
        self.open = Some(open);
    }

    /// A non-empty fragment of part `index` of message `id`, as a `part` streams it.
    fn text_delta(
        &mut self,
        (id, index): (&str, usize),
        part: Part,
        fragment: &str,
        frames: &mut Vec<Bytes>,
    ) {
        if fragment.is_empty() {
            return;
        }
        let (kind, extra) = match part {
            Part::Refusal => ("response.refusal.delta", json!({"delta": fragment})),
            _ => (
                "response.output_text.delta",
                json!({"delta": fragment, "logprobs": []}),
            ),
        };
        self.events.part_event(frames, kind, id, index, extra);
    }

    fn arguments_delta(&mut self, open: &mut Open, fragment: &str, frames: &mut Vec<Bytes>) {
        if let Body::Call { arguments, .. } = &mut open.body {
            if !fragment.is_empty() {
                arguments.push_str(fragment);
                let kind = "response.function_call_arguments.delta";
                let extra = json!({"delta": fragment});
                self.events.item_event(frames, kind, &open.id, extra);
            }
        }
    }

    fn on_message_delta(&mut self, data: &Value, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        fold_message_delta(data, &mut self.usage, &mut self.stop_reason);
        self.settle(frames);
    }

    /// Closes the last item with the status the stop reason gives it, adding the refusal part
    /// when Anthropic refused.
    fn settle(&mut self, frames: &mut Vec<Bytes>) {
        if self.settled {
            return;
        }
        self.settled = true;
        let outcome = self.outcome();
        if !outcome.refused {
            return self.close(outcome.last_item_status(), frames);
        }
        let (id, text, part) = match self.open.take() {
            Some(Open {
                id,
                body: Body::Message { text, part },
                ..
            }) => (id, text, part),
            other => {
                self.open = other;
                self.close("completed", frames);
                let id = self.next_id("msg");
                let item = message_item(&id, "in_progress", Vec::new());
                self.events.added(frames, item);
                // A message of its own holding only the refusal.
                (id, String::new(), Part::Undecided)
            }
        };
        self.close_message(&id, &text, part, true, outcome.last_item_status(), frames);
    }

    fn on_message_stop(&mut self, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        self.settle(frames);
        self.close("completed", frames);
        let outcome = self.outcome();
        let response = self.response(outcome.status, outcome.incomplete_reason, None);
        let kind = if outcome.incomplete_reason.is_some() {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.events
            .emit(frames, kind, json!({"response": response}));
        self.ended = true;
    }

    fn outcome(&self) -> Outcome {
        Outcome::of(self.stop_reason.as_deref())
    }

    /// Closes the open item (if any) with `status`.
    fn close(&mut self, status: &str, frames: &mut Vec<Bytes>) {
        let Some(Open { id, body, .. }) = self.open.take() else {
            return;
        };
        match body {
            Body::Message { text, part } => {
                self.close_message(&id, &text, part, false, status, frames);
            }
            Body::Call {
                call_id,
                name,
                arguments,
            } => {
                // Anthropic streams a call without parameters as no JSON at all.
                let arguments = if arguments.is_empty() {
                    "{}".to_owned()
                } else {
                    arguments
                };
                let kind = "response.function_call_arguments.done";
                let extra = json!({"arguments": arguments, "name": name});
                self.events.item_event(frames, kind, &id, extra);
                let item = function_call_item(&id, status, &call_id, &name, &arguments);
                self.events.done(frames, item);
            }
            Body::Reasoning {
                thinking,
                signature,
                redacted,
            } => {
                if !thinking.is_empty() {
                    let kind = "response.reasoning_text.done";
                    let extra = json!({"text": thinking});
                    self.events.part_event(frames, kind, &id, 0, extra);
                }
                let block = match redacted {
                    Some(data) => json!({"type": "redacted_thinking", "data": data}),
                    None => {
                        json!({"type": "thinking", "thinking": thinking, "signature": signature})
                    }
                };
                let token = self
                    .echo
                    .encrypted_reasoning()
                    .then(|| reasoning::seal(&block))
                    .flatten();
                self.events
                    .done(frames, reasoning_item(&id, &thinking, token));
            }
        }
    }

    /// Closes message item `id`, whose text is `text` streamed as `part`, with `status`; when
    /// Anthropic `refused`, the message ends with a refusal part.
    fn close_message(
        &mut self,
        id: &str,
        text: &str,
        part: Part,
        refused: bool,
        status: &str,
        frames: &mut Vec<Bytes>,
    ) {
        let content = match (part, refused) {
            // Refused with nothing said, or in a message of its own: the fixed text.
            (Part::Undecided, true) => {
                self.part_added(frames, id, 0, refusal(""));
                self.text_delta((id, 0), Part::Refusal, REFUSAL_TEXT, frames);
                vec![self.finish_refusal(id, 0, REFUSAL_TEXT, frames)]
            }
            // Only whitespace came: it is text after all.
            (Part::Undecided, false) => {
                self.part_added(frames, id, 0, output_text(""));
                self.text_delta((id, 0), Part::Text, text, frames);
                vec![self.finish_text(id, text, frames)]
            }
            (Part::Text, _) => {
                let mut content = vec![self.finish_text(id, text, frames)];
                if refused {
                    self.part_added(frames, id, 1, refusal(""));
                    self.text_delta((id, 1), Part::Refusal, REFUSAL_TEXT, frames);
                    content.push(self.finish_refusal(id, 1, REFUSAL_TEXT, frames));
                }
                content
            }
            // Its text, streamed already.
            (Part::Refusal, _) => vec![self.finish_refusal(id, 0, text, frames)],
        };
        self.events.done(frames, message_item(id, status, content));
    }

    /// The done events of the text part of message item `id`; returns the part.
    fn finish_text(&mut self, id: &str, text: &str, frames: &mut Vec<Bytes>) -> Value {
        let done = json!({"text": text, "logprobs": []});
        let part = json!({"part": output_text(text)});
        self.events
            .part_event(frames, "response.output_text.done", id, 0, done);
        self.events
            .part_event(frames, "response.content_part.done", id, 0, part);
        output_text(text)
    }

    /// The done events of refusal part `index` of message item `id`; returns the part.
    fn finish_refusal(
        &mut self,
        id: &str,
        index: usize,
        text: &str,
        frames: &mut Vec<Bytes>,
    ) -> Value {
        let done = json!({"refusal": text});
        let part = json!({"part": refusal(text)});
        self.events
            .part_event(frames, "response.refusal.done", id, index, done);
        self.events
            .part_event(frames, "response.content_part.done", id, index, part);
        refusal(text)
    }

    fn part_added(&mut self, frames: &mut Vec<Bytes>, id: &str, index: usize, part: Value) {
        let kind = "response.content_part.added";
        let extra = json!({"part": part});
        self.events.part_event(frames, kind, id, index, extra);
    }

    fn fail_with(&mut self, error: &Value, frames: &mut Vec<Bytes>) {
        self.ensure_started(frames);
        let message = error["message"].as_str().unwrap_or("upstream error");
        let kind = error["type"].as_str().unwrap_or("server_error");
        // Some clients require a string code: the type stands in when there is none.
        let code = error["code"].as_str().unwrap_or(kind);
        // Flat fields as the SDKs' types declare them, nested as the API sends them today.
        let nested = json!({"type": kind, "code": code, "message": message, "param": null});
        let event = json!({"code": code, "message": message, "param": null, "error": nested});
        self.events.emit(frames, "error", event);
        let failure = json!({"code": code, "message": message});
        let response = self.response("failed", None, Some(failure));
        let fields = json!({"response": response});
        self.events.emit(frames, "response.failed", fields);
        self.ended = true;
    }

    /// The `response` object in its current state.
    fn response(&self, status: &str, incomplete: Option<&str>, error: Option<Value>) -> Value {
        let done = status != "in_progress";
        self.echo.response(Answer {
            id: self.ids.response(),
            model: &self.client_model,
            created_at: self.created_at,
            status,
            incomplete_reason: incomplete,
            error,
            output: if done {
                self.events.done_items().to_vec()
            } else {
                Vec::new()
            },
            usage: if done { self.usage() } else { None },
        })
    }

    /// The id of the next item (`prefix` names its type).
    fn next_id(&self, prefix: &str) -> String {
        self.ids.item(prefix, self.events.output_index())
    }
}
