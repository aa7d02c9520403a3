//! Anthropic Messages response -> OpenAI `chat.completion` object.

use serde_json::{json, Value};

use super::json::{str_field, upstream_object, Object};
use super::mapping::finish_reason_for_stop_reason;
use super::TranslateError;
use crate::usage::Usage;

/// The refusal text given to an OpenAI client when Anthropic refused without saying anything.
pub(super) const REFUSAL_TEXT: &str = "The model declined to answer this request.";

/// Translates an Anthropic message into a `chat.completion` answering a client that asked for
/// `client_model`, created at `created_unix` (seconds; the caller owns the clock).
///
/// The id is the Anthropic id prefixed with `chatcmpl-`, so it still finds the upstream log
/// line. Text blocks are concatenated into `content` (`null` when there are only tool calls),
/// `tool_use` blocks become `tool_calls` with JSON-string arguments, thinking blocks are joined
/// into `reasoning_content` (their signatures cannot travel), and other block types (server tool
/// blocks, `redacted_thinking`) are dropped. Usage follows OpenAI semantics (see
/// [`openai_usage_json`]). A `refusal` stop reason is finish_reason `content_filter`; when the
/// client asked for a structured output (`structured_output`, see [`asks_structured_output`]) it
/// is answered the way OpenAI's structured outputs refuse instead: the text in `refusal`,
/// `content: null`, finish_reason `stop`, which the SDKs' `parse` helpers report as a refusal.
pub fn anthropic_to_openai_chat_response(
    body: &Value,
    client_model: &str,
    created_unix: i64,
    structured_output: bool,
) -> Result<Value, TranslateError> {
    let message = upstream_object(body, "response")?;
    let blocks = content_blocks(message)?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("thinking") => reasoning.push_str(block["thinking"].as_str().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(tool_call(block)),
            _ => {}
        }
    }
    let stop_reason = str_field(message, "stop_reason");
    // A refusal after the JSON had begun (a classifier stopping it) stays content_filter, as it
    // does in a stream.
    let json_begun = text.trim_start().starts_with(['{', '[']);
    let refused = structured_output && stop_reason == Some("refusal") && !json_begun;
    let mut reply = if refused {
        // OpenAI's structured-output refusal: the text in `refusal`, no content.
        let refusal = if text.is_empty() {
            REFUSAL_TEXT.to_owned()
        } else {
            text
        };
        json!({"role": "assistant", "content": null, "refusal": refusal})
    } else {
        let content = match (text.is_empty(), tool_calls.is_empty()) {
            (true, false) => Value::Null,
            _ => Value::String(text),
        };
        json!({"role": "assistant", "content": content})
    };
    let finish_reason = if refused {
        "stop"
    } else {
        finish_reason_for_stop_reason(stop_reason)
    };
    if !reasoning.is_empty() {
        reply["reasoning_content"] = Value::String(reasoning);
    }
    if !tool_calls.is_empty() {
        reply["tool_calls"] = Value::Array(tool_calls);
    }
    let usage = message
        .get("usage")
        .and_then(Usage::from_anthropic)
        .unwrap_or_default();
    Ok(json!({
        "id": format!("chatcmpl-{}", str_field(message, "id").unwrap_or_default()),
        "object": "chat.completion",
        "created": created_unix,
        "model": client_model,
        "choices": [{
            "index": 0,
            "message": reply,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": openai_usage_json(usage),
    }))
}

/// Whether an OpenAI chat request asks for a structured output (`response_format` of type
/// `json_schema` or `json_object`).
pub fn asks_structured_output(request: &Value) -> bool {
    let kind = request
        .pointer("/response_format/type")
        .and_then(Value::as_str);
    matches!(kind, Some("json_schema" | "json_object"))
}

/// The content blocks of an Anthropic message (none when `content` is absent or `null`).
pub(super) fn content_blocks(message: &Object) -> Result<&[Value], TranslateError> {
    match message.get("content") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(blocks)) => Ok(blocks),
        Some(_) => Err(TranslateError::upstream(
            "upstream response content is not an array",
        )),
    }
}

/// Usage for an OpenAI client from Anthropic numbers: `prompt_tokens` = input + cache read +
/// cache write, `prompt_tokens_details.cached_tokens` = cache read, plus Anthropic's raw
/// `cache_creation_input_tokens` and `cache_read_input_tokens`, which clients may rely on for
/// cost.
pub fn openai_usage_json(usage: Usage) -> Value {
    with_anthropic_cache_counts(usage.to_openai_chat_json(), usage)
}

/// `json` (an OpenAI usage object) plus Anthropic's raw `cache_creation_input_tokens` and
/// `cache_read_input_tokens`.
pub(super) fn with_anthropic_cache_counts(mut json: Value, usage: Usage) -> Value {
    if let Some(object) = json.as_object_mut() {
        object.insert(
            "cache_creation_input_tokens".to_owned(),
            json!(usage.cache_write_tokens),
        );
        object.insert(
            "cache_read_input_tokens".to_owned(),
            json!(usage.cache_read_tokens),
        );
    }
    json
}

fn tool_call(block: &Value) -> Value {
    json!({
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": arguments_json(block)},
    })
}

/// A `tool_use` block's `input` as OpenAI's JSON-string arguments (`{}` when absent).
pub(super) fn arguments_json(block: &Value) -> String {
    match block.get("input") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(input) => input.to_string(),
    }
}
