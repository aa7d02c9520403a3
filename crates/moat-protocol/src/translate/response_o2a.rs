//! OpenAI `chat.completion` object -> Anthropic Messages response.

use serde_json::{json, Map, Value};

use super::json::{str_field, upstream_object};
use super::mapping::stop_reason_for_finish_reason;
use super::TranslateError;
use crate::usage::Usage;

/// Translates the first choice of a `chat.completion` into an Anthropic message answering a
/// client that asked for `client_model`.
///
/// The id is the OpenAI id prefixed with `msg_`. Content blocks come in Anthropic's order:
/// a thinking block from `reasoning_content` (or `reasoning`, as some servers name it; the
/// signature is empty as there is none to give), a text block (or the refusal text, with
/// `stop_reason: "refusal"`), then one
/// `tool_use` block per tool call. Arguments that are not a JSON object become `input: {}`:
/// the client's tool then reports the missing arguments and the model can retry, which serves an
/// agent better than failing the whole turn. Usage is in Anthropic semantics (`input_tokens`
/// without the cached tokens).
pub fn openai_chat_to_anthropic_response(
    body: &Value,
    client_model: &str,
) -> Result<Value, TranslateError> {
    let response = upstream_object(body, "response")?;
    let choice = response
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .ok_or_else(|| TranslateError::upstream("upstream response has no choices"))?;
    let message = choice
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| TranslateError::upstream("upstream response choice has no message"))?;
    let mut content = Vec::new();
    if let Some(reasoning) = reasoning_text(message) {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    if let Some(text) = message_text(message) {
        content.push(json!({"type": "text", "text": text}));
    }
    let calls = message.get("tool_calls").and_then(Value::as_array);
    for (index, call) in calls.into_iter().flatten().enumerate() {
        content.push(tool_use_block(call, index)?);
    }
    let has_tool_calls = calls.is_some_and(|calls| !calls.is_empty());
    let finish_reason = choice.get("finish_reason").and_then(Value::as_str);
    let stop_reason = match finish_reason {
        // A structured-output refusal: `refusal` set, `content` empty, finish_reason `stop`.
        Some("stop") | None if is_refusal(message) => "refusal",
        reason => stop_reason_for_finish_reason(reason, has_tool_calls),
    };
    let usage = Usage::from_openai_chat(body).unwrap_or_default();
    Ok(json!({
        "id": format!("msg_{}", str_field(response, "id").unwrap_or_default()),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage.to_anthropic_json(),
    }))
}

/// Reasoning text under the names OpenAI-compatible servers use.
pub(super) fn reasoning_text(object: &Map<String, Value>) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
        .filter(|text| !text.is_empty())
}

/// Whether the message is a refusal: refusal text and no content.
fn is_refusal(message: &Map<String, Value>) -> bool {
    let refused = str_field(message, "refusal").is_some_and(|r| !r.is_empty());
    let content = match message.get("content") {
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Array(parts)) => !parts.is_empty(),
        _ => false,
    };
    refused && !content
}

/// `content` as a string or text parts, else the refusal.
fn message_text(message: &Map<String, Value>) -> Option<String> {
    let text = match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    if !text.is_empty() {
        return Some(text);
    }
    str_field(message, "refusal")
        .filter(|refusal| !refusal.is_empty())
        .map(str::to_owned)
}

fn tool_use_block(call: &Value, index: usize) -> Result<Value, TranslateError> {
    let function = call.get("function").unwrap_or(&Value::Null);
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::upstream("upstream tool call has no function name"))?;
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| format!("toolu_{index}"), str::to_owned);
    Ok(json!({
        "type": "tool_use",
        "id": id,
        "name": name,
        "input": parse_input(function.get("arguments")),
    }))
}

/// JSON-string (or, from lenient servers, object) arguments -> an input object, `{}` otherwise.
fn parse_input(arguments: Option<&Value>) -> Value {
    let parsed = match arguments {
        Some(Value::String(text)) => serde_json::from_str(text).ok(),
        Some(object @ Value::Object(_)) => Some(object.clone()),
        _ => None,
    };
    parsed.filter(Value::is_object).unwrap_or_else(|| json!({}))
}
