//! OpenAI Responses (`POST /v1/responses`): a stateless relay's view, streamed as typed events.

use moat_core::Protocol;
use serde_json::{json, Map, Value};

use crate::answer::{Answer, Ask};
use crate::errors::ApiError;
use crate::format;
use crate::reply::{Reply, SseEvent, Transcript};
use crate::request::Fields;
use crate::text::{content_text, count_words, id_suffix, stable_hash, Generation};
use crate::tools::{self, ToolCall, ToolChoice, ToolSpec};

/// Serves one Responses request.
pub(crate) fn create(body: &Map<String, Value>, created: i64) -> Result<Reply, ApiError> {
    let fields = Fields::new(body, Protocol::OpenAi);
    let model = fields.required_str("model")?;
    if let Some(previous) = fields.get("previous_response_id") {
        // The sim keeps no state, like a relay serving `store: false` clients.
        let id = previous.as_str().unwrap_or_default();
        return Err(ApiError::invalid_param(
            format!("Previous response with id '{id}' not found."),
            "previous_response_id",
        )
        .with_code("previous_response_not_found"));
    }
    let items: Vec<Value> = match fields.get("input") {
        None => Vec::new(),
        Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(fields.invalid("input", "a string or an array of input items")),
    };
    let instructions = fields.opt_str("instructions")?;
    let max = fields.positive("max_output_tokens")?;
    let stream = fields.flag("stream")?;

    let offered = function_tools(&fields)?;
    let choice = tool_choice(&fields)?;
    let after_tool_result =
        items.last().and_then(|i| i.get("type")) == Some(&json!("function_call_output"));
    let tool = tools::select(&offered, &choice, after_tool_result).map_err(|name| {
        ApiError::invalid_param(
            format!("Tool choice '{name}' not found in 'tools' parameter."),
            "tool_choice",
        )
    })?;

    let ask = Ask {
        max,
        tool,
        format: format::responses(&fields)?,
    };
    let prompt = last_user_text(&items);
    let seed = stable_hash(&["responses", model, &prompt]);
    let response = Response {
        fields,
        id: format!("resp_{}", id_suffix(seed, 48)),
        item_id: format!("msg_{}", id_suffix(seed ^ 1, 48)),
        created,
        model,
        input_tokens: instructions.map_or(0, count_words)
            + items.iter().map(item_tokens).sum::<u64>(),
        answer: Answer::new(model, &prompt, 0, ask),
    };
    Ok(if stream {
        Reply::Stream(response.events())
    } else {
        Reply::Json(response.object(response.status(), vec![response.output_item()], true))
    })
}

/// Flat function tools (`{type: "function", name, parameters}`); hosted tools are not called.
fn function_tools<'a>(fields: &Fields<'a>) -> Result<Vec<ToolSpec<'a>>, ApiError> {
    let mut specs = Vec::new();
    for (i, tool) in fields.array("tools")?.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            continue;
        }
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return Err(fields.missing(&format!("tools[{i}].name")));
        };
        specs.push(ToolSpec {
            name,
            schema: tool.get("parameters"),
        });
    }
    Ok(specs)
}

fn tool_choice(fields: &Fields<'_>) -> Result<ToolChoice, ApiError> {
    match fields.get("tool_choice") {
        None => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            _ => Err(fields.invalid("tool_choice", "'none', 'auto', 'required' or an object")),
        },
        Some(Value::Object(choice)) => {
            let name = choice.get("name").and_then(Value::as_str);
            match (choice.get("type").and_then(Value::as_str), name) {
                (Some("function"), Some(name)) => Ok(ToolChoice::Named(name.to_owned())),
                (Some("function"), None) => Err(fields.missing("tool_choice.name")),
                _ => Ok(ToolChoice::Auto),
            }
        }
        Some(_) => Err(fields.invalid("tool_choice", "a string or an object")),
    }
}

fn last_user_text(items: &[Value]) -> String {
    items
        .iter()
        .rev()
        .find(|i| i.get("role").and_then(Value::as_str) == Some("user"))
        .map(|i| content_text(i.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default()
}

/// Input tokens of one item: its message text, or a tool output's text.
fn item_tokens(item: &Value) -> u64 {
    let text = match item.get("type").and_then(Value::as_str) {
        Some("function_call_output") => content_text(item.get("output").unwrap_or(&Value::Null)),
        _ => content_text(item.get("content").unwrap_or(&Value::Null)),
    };
    count_words(&text)
}

/// One response, ready to render as an object or as events.
struct Response<'a> {
    fields: Fields<'a>,
    id: String,
    item_id: String,
    created: i64,
    model: &'a str,
    input_tokens: u64,
    answer: Answer,
}

impl Response<'_> {
    fn status(&self) -> &'static str {
        if self.answer.truncated() {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The response object; request settings are echoed back as OpenAI does.
    fn object(&self, status: &str, output: Vec<Value>, with_usage: bool) -> Value {
        let echo = |name: &str, default: Value| self.fields.get(name).cloned().unwrap_or(default);
        let incomplete = (status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
        let output_tokens = self.answer.tokens();
        let usage = with_usage.then(|| {
            json!({
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.input_tokens.saturating_add(output_tokens),
            })
        });
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": incomplete,
            "instructions": echo("instructions", Value::Null),
            "max_output_tokens": echo("max_output_tokens", Value::Null),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": echo("parallel_tool_calls", Value::Bool(true)),
            "previous_response_id": null,
            "reasoning": echo("reasoning", json!({"effort": null, "summary": null})),
            "service_tier": "default",
            "store": echo("store", Value::Bool(true)),
            "temperature": echo("temperature", json!(1.0)),
            "text": echo("text", json!({"format": {"type": "text"}})),
            "tool_choice": echo("tool_choice", json!("auto")),
            "tools": echo("tools", json!([])),
            "top_p": echo("top_p", json!(1.0)),
            "truncation": echo("truncation", json!("disabled")),
            "usage": usage,
            "user": null,
            "metadata": echo("metadata", json!({})),
        })
    }

    /// The finished output item.
    fn output_item(&self) -> Value {
        match &self.answer {
            Answer::Text(g) => self.message_item(self.status(), vec![text_part(&g.text())]),
            Answer::Refusal(g) => self.message_item(self.status(), vec![refusal_part(&g.text())]),
            Answer::Tool(call) => self.call_item(call, "completed", &call.arguments),
        }
    }

    fn message_item(&self, status: &str, content: Vec<Value>) -> Value {
        json!({
            "id": self.item_id, "type": "message", "status": status, "role": "assistant",
            "content": content,
        })
    }

    fn call_item(&self, call: &ToolCall, status: &str, arguments: &str) -> Value {
        json!({
            "id": call.id("fc_", 48),
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": call.id("call_", 24),
            "name": call.name,
        })
    }

    /// The typed event stream, each event with an increasing `sequence_number`.
    fn events(&self) -> Transcript {
        let mut events = Events::default();
        let in_progress = self.object("in_progress", Vec::new(), false);
        events.push("response.created", json!({"response": in_progress}));
        events.push("response.in_progress", json!({"response": in_progress}));
        match &self.answer {
            Answer::Text(g) => self.content_events(&mut events, g, &TEXT),
            Answer::Refusal(g) => self.content_events(&mut events, g, &REFUSAL),
            Answer::Tool(call) => {
                let id = call.id("fc_", 48);
                let at = json!({"item_id": id, "output_index": 0});
                let item = self.call_item(call, "in_progress", "");
                events.push(
                    "response.output_item.added",
                    json!({"output_index": 0, "item": item}),
                );
                for fragment in &call.fragments {
                    let delta = with(&at, "delta", json!(fragment));
                    events.push_paced("response.function_call_arguments.delta", delta);
                }
                let mut done = with(&at, "arguments", json!(call.arguments));
                done["name"] = json!(call.name);
                events.push("response.function_call_arguments.done", done);
            }
        }
        let item = self.output_item();
        events.push(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        );
        let status = self.status();
        let last = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        let response = self.object(status, vec![item], true);
        events.push(last, json!({"response": response}));
        events.transcript
    }

    /// The events of a message with one content part: added, deltas, done.
    fn content_events(&self, events: &mut Events, g: &Generation, kind: &PartKind) {
        let at = json!({"item_id": self.item_id, "output_index": 0, "content_index": 0});
        let item = self.message_item("in_progress", Vec::new());
        events.push(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        );
        events.push(
            "response.content_part.added",
            with(&at, "part", (kind.part)("")),
        );
        for piece in g.deltas() {
            let mut delta = with(&at, "delta", json!(piece));
            if kind.logprobs {
                delta["logprobs"] = json!([]);
            }
            events.push_paced(kind.delta, delta);
        }
        let mut done = with(&at, kind.field, json!(g.text()));
        if kind.logprobs {
            done["logprobs"] = json!([]);
        }
        events.push(kind.done, done);
        events.push(
            "response.content_part.done",
            with(&at, "part", (kind.part)(&g.text())),
        );
    }
}

/// How one kind of content part streams.
struct PartKind {
    part: fn(&str) -> Value,
    delta: &'static str,
    done: &'static str,
    /// The field of the done event that carries the whole content.
    field: &'static str,
    logprobs: bool,
}

const TEXT: PartKind = PartKind {
    part: text_part,
    delta: "response.output_text.delta",
    done: "response.output_text.done",
    field: "text",
    logprobs: true,
};

const REFUSAL: PartKind = PartKind {
    part: refusal_part,
    delta: "response.refusal.delta",
    done: "response.refusal.done",
    field: "refusal",
    logprobs: false,
};

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn refusal_part(refusal: &str) -> Value {
    json!({"type": "refusal", "refusal": refusal})
}

/// `base` with one more field.
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[key] = value;
    out
}

/// Builds the transcript, stamping `type` and `sequence_number` on every event.
struct Events {
    transcript: Transcript,
    next: u64,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            transcript: Transcript::named("response.output_text.delta"),
            next: 0,
        }
    }
}

impl Events {
    fn event(&mut self, name: &'static str, mut payload: Value) -> SseEvent {
        let mut data = Map::new();
        data.insert("type".to_owned(), json!(name));
        data.insert("sequence_number".to_owned(), json!(self.next));
        if let Value::Object(fields) = &mut payload {
            data.append(fields);
        }
        self.next += 1;
        SseEvent::named(name, &Value::Object(data))
    }

    fn push(&mut self, name: &'static str, payload: Value) {
        let event = self.event(name, payload);
        self.transcript.push(event);
    }

    fn push_paced(&mut self, name: &'static str, payload: Value) {
        let event = self.event(name, payload).paced();
        self.transcript.push(event);
    }
}
