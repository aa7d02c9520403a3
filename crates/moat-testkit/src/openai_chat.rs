//! OpenAI Chat Completions (`POST /v1/chat/completions`), streamed and not.

use moat_core::Protocol;
use serde_json::{json, Map, Value};

use crate::answer::{Answer, Ask};
use crate::errors::ApiError;
use crate::format;
use crate::reply::{Reply, SseEvent, Transcript};
use crate::request::Fields;
use crate::text::{content_text, count_words, id_suffix, stable_hash};
use crate::tools::{self, ToolChoice, ToolSpec};

/// Largest `n` OpenAI accepts.
const MAX_CHOICES: u64 = 128;

/// Serves one chat completion request.
pub(crate) fn complete(body: &Map<String, Value>, created: i64) -> Result<Reply, ApiError> {
    let fields = Fields::new(body, Protocol::OpenAi);
    let model = fields.required_str("model")?;
    let messages = fields.required_array("messages")?;
    for (i, message) in messages.iter().enumerate() {
        if message.get("role").and_then(Value::as_str).is_none() {
            return Err(fields.missing(&format!("messages[{i}].role")));
        }
    }
    let stream = fields.flag("stream")?;
    let include_usage = match fields.get("stream_options") {
        None => false,
        Some(_) if !stream => {
            return Err(ApiError::invalid_param(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
            ))
        }
        Some(options) => options
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let max = match fields.positive("max_completion_tokens")? {
        Some(max) => Some(max),
        None => fields.positive("max_tokens")?,
    };
    let n = fields.positive("n")?.unwrap_or(1);
    if n > MAX_CHOICES {
        return Err(fields.invalid("n", "an integer of at most 128"));
    }

    let offered = function_tools(&fields)?;
    let choice = tool_choice(&fields)?;
    let after_tool_result = messages.last().and_then(|m| m.get("role")) == Some(&json!("tool"));
    let tool = tools::select(&offered, &choice, after_tool_result).map_err(|name| {
        ApiError::invalid_param(
            format!("Invalid value for 'tool_choice': function '{name}' is not in 'tools'."),
            "tool_choice",
        )
    })?;

    let ask = Ask {
        max,
        tool,
        format: format::chat(&fields)?,
    };
    let prompt = last_user_text(messages);
    let completion = Completion {
        id: format!(
            "chatcmpl-{}",
            id_suffix(stable_hash(&["chat", model, &prompt]), 29)
        ),
        model,
        created,
        answers: (0..n)
            .map(|i| Answer::new(model, &prompt, i, ask))
            .collect(),
        prompt_tokens: messages
            .iter()
            .map(|m| count_words(&content_text(m.get("content").unwrap_or(&Value::Null))))
            .sum(),
    };
    Ok(if stream {
        Reply::Stream(completion.chunks(include_usage))
    } else {
        Reply::Json(completion.object())
    })
}

/// The function tools of a chat request (`{type: "function", function: {name, parameters}}`);
/// other tool types are not something the sim calls.
fn function_tools<'a>(fields: &Fields<'a>) -> Result<Vec<ToolSpec<'a>>, ApiError> {
    let mut specs = Vec::new();
    for (i, tool) in fields.array("tools")?.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            continue;
        }
        let function = tool.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
        let Some(name) = name else {
            return Err(fields.missing(&format!("tools[{i}].function.name")));
        };
        specs.push(ToolSpec {
            name,
            schema: function.and_then(|f| f.get("parameters")),
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
            let named = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match (choice.get("type").and_then(Value::as_str), named) {
                (Some("function"), Some(name)) => Ok(ToolChoice::Named(name.to_owned())),
                (Some("function"), None) => Err(fields.missing("tool_choice.function.name")),
                // `allowed_tools` and custom-tool choices: the sim picks as for `auto`.
                _ => Ok(ToolChoice::Auto),
            }
        }
        Some(_) => Err(fields.invalid("tool_choice", "a string or an object")),
    }
}

/// Text of the last `user` message: what the reply is seeded by.
fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default()
}

/// A completed chat completion, ready to render either way.
struct Completion<'a> {
    id: String,
    model: &'a str,
    created: i64,
    answers: Vec<Answer>,
    prompt_tokens: u64,
}

impl Completion<'_> {
    fn object(&self) -> Value {
        let choices: Vec<Value> = self
            .answers
            .iter()
            .zip(0u64..)
            .map(|(answer, index)| {
                let message = match answer {
                    Answer::Text(g) => json!({
                        "role": "assistant", "content": g.text(), "refusal": null, "annotations": [],
                    }),
                    Answer::Tool(call) => json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [{
                            "id": call.id("call_", 24),
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }],
                        "refusal": null,
                        "annotations": [],
                    }),
                    Answer::Refusal(g) => json!({
                        "role": "assistant", "content": null, "refusal": g.text(), "annotations": [],
                    }),
                };
                json!({
                    "index": index, "message": message, "logprobs": null,
                    "finish_reason": finish_reason(answer),
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        })
    }

    /// The stream: per choice a role delta, one delta per word or JSON piece (or refusal word, or
    /// the tool call's first delta and argument fragments), a finish delta; then the usage chunk
    /// if asked, then `[DONE]`.
    fn chunks(&self, include_usage: bool) -> Transcript {
        let mut transcript = Transcript::unnamed();
        let chunk = |choices: Value, usage: Option<Value>| {
            let mut chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "service_tier": "default",
                "system_fingerprint": "fp_sim",
                "choices": choices,
            });
            if include_usage {
                chunk["usage"] = usage.unwrap_or(Value::Null);
            }
            chunk
        };
        let delta = |index: u64, delta: Value, finish: Option<&str>| json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        for (answer, index) in self.answers.iter().zip(0u64..) {
            match answer {
                Answer::Text(g) => {
                    let first = json!({"role": "assistant", "content": "", "refusal": null});
                    transcript.push(SseEvent::data(&chunk(delta(index, first, None), None)));
                    for word in g.deltas() {
                        let d = delta(index, json!({"content": word}), None);
                        transcript.push(SseEvent::data(&chunk(d, None)).paced());
                    }
                }
                Answer::Refusal(g) => {
                    let first = json!({"role": "assistant", "content": null, "refusal": ""});
                    transcript.push(SseEvent::data(&chunk(delta(index, first, None), None)));
                    for word in g.deltas() {
                        let d = delta(index, json!({"refusal": word}), None);
                        transcript.push(SseEvent::data(&chunk(d, None)).paced());
                    }
                }
                Answer::Tool(call) => {
                    let first = json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [{
                            "index": 0,
                            "id": call.id("call_", 24),
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }],
                        "refusal": null,
                    });
                    transcript.push(SseEvent::data(&chunk(delta(index, first, None), None)));
                    for fragment in &call.fragments {
                        let d = json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]});
                        transcript
                            .push(SseEvent::data(&chunk(delta(index, d, None), None)).paced());
                    }
                }
            }
            let last = delta(index, json!({}), Some(finish_reason(answer)));
            transcript.push(SseEvent::data(&chunk(last, None)));
        }
        if include_usage {
            transcript.push(SseEvent::data(&chunk(json!([]), Some(self.usage()))));
        }
        transcript.push(SseEvent::done());
        transcript
    }

    fn usage(&self) -> Value {
        let completion: u64 = self.answers.iter().map(Answer::tokens).sum();
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens.saturating_add(completion),
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        })
    }
}

fn finish_reason(answer: &Answer) -> &'static str {
    match answer {
        Answer::Tool(_) => "tool_calls",
        Answer::Text(g) | Answer::Refusal(g) if g.truncated => "length",
        Answer::Text(_) | Answer::Refusal(_) => "stop",
    }
}
