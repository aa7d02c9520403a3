//! Anthropic `system` and `messages` -> OpenAI chat messages.

use serde_json::{json, Value};

use super::json::{child, expect_array, expect_object, expect_str, field, item, str_field, Object};
use super::TranslateError;

/// `system` -> one OpenAI system message for a string, or one per text block, in order.
pub(super) fn system_messages(system: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    match system {
        None => Ok(Vec::new()),
        Some(Value::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![json!({"role": "system", "content": text})]),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(index, block)| {
                let path = item("system", index);
                let block = expect_object(block, &path)?;
                expect_type(block, "text", &path)?;
                Ok(json!({"role": "system", "content": expect_str(block, "text", &path)?}))
            })
            .collect(),
        Some(_) => Err(TranslateError::invalid(
            "system",
            "system must be a string or an array of text blocks",
        )),
    }
}

/// Converts `messages`. A user message's `tool_result` blocks become `role: "tool"` messages,
/// emitted before the rest of that user message; images inside tool results, which OpenAI tool
/// messages cannot carry, move to the front of that following user message. `thinking` and
/// `redacted_thinking` blocks are dropped: OpenAI-compatible servers cannot verify their
/// signatures. Assistant text blocks are concatenated without separator, as a stream would be.
pub(super) fn convert_messages(messages: &Value) -> Result<Vec<Value>, TranslateError> {
    let list = expect_array(messages, "messages")?;
    let mut out = Vec::with_capacity(list.len());
    for (index, message) in list.iter().enumerate() {
        let path = item("messages", index);
        let message = expect_object(message, &path)?;
        let content = message.get("content").unwrap_or(&Value::Null);
        let content_path = child(&path, "content");
        match expect_str(message, "role", &path)? {
            "user" => user_messages(content, &content_path, &mut out)?,
            "assistant" => out.extend(assistant_message(content, &content_path)?),
            other => {
                let param = child(&path, "role");
                return Err(TranslateError::invalid(
                    &param,
                    format!("{param} must be user or assistant, not '{other}'"),
                ));
            }
        }
    }
    Ok(out)
}

fn expect_type(block: &Object, expected: &str, path: &str) -> Result<(), TranslateError> {
    let kind = expect_str(block, "type", path)?;
    if kind == expected {
        return Ok(());
    }
    Err(unsupported_block(kind, path))
}

fn unsupported_block(kind: &str, path: &str) -> TranslateError {
    let param = child(path, "type");
    TranslateError::invalid(
        &param,
        format!("{param} '{kind}' is not supported by OpenAI models"),
    )
}

fn not_content(path: &str) -> TranslateError {
    TranslateError::invalid(
        path,
        format!("{path} must be a string or an array of content blocks"),
    )
}

fn user_messages(content: &Value, path: &str, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let blocks = match content {
        Value::String(text) => {
            out.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => return Err(not_content(path)),
    };
    let mut carried_images = Vec::new();
    let mut parts = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let path = item(path, index);
        let block = expect_object(block, &path)?;
        match expect_str(block, "type", &path)? {
            "tool_result" => out.push(tool_message(block, &path, &mut carried_images)?),
            "text" => {
                parts.push(json!({"type": "text", "text": expect_str(block, "text", &path)?}))
            }
            "image" => parts.push(image_part(block, &path)?),
            "document" => parts.push(document_part(block, &path)?),
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported_block(other, &path)),
        }
    }
    carried_images.append(&mut parts);
    if !carried_images.is_empty() {
        out.push(json!({"role": "user", "content": user_content(carried_images)}));
    }
    Ok(())
}

/// A single text part travels as a plain string, which every OpenAI-compatible server accepts.
fn user_content(mut parts: Vec<Value>) -> Value {
    if parts.len() == 1 && parts[0]["type"] == "text" {
        return parts.swap_remove(0)["text"].take();
    }
    Value::Array(parts)
}

/// A `tool_result` block -> a `role: "tool"` message; text parts are joined with newlines and
/// images are pushed to `images`. `is_error` has no OpenAI equivalent and is dropped.
fn tool_message(
    block: &Object,
    path: &str,
    images: &mut Vec<Value>,
) -> Result<Value, TranslateError> {
    let id = expect_str(block, "tool_use_id", path)?;
    let content_path = child(path, "content");
    let text = match field(block, "content") {
        None => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (index, part) in parts.iter().enumerate() {
                let path = item(&content_path, index);
                let part = expect_object(part, &path)?;
                match expect_str(part, "type", &path)? {
                    "text" => texts.push(expect_str(part, "text", &path)?),
                    "image" => images.push(image_part(part, &path)?),
                    other => return Err(unsupported_block(other, &path)),
                }
            }
            texts.join("\n")
        }
        Some(_) => return Err(not_content(&content_path)),
    };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

fn source<'a>(
    block: &'a Object,
    path: &str,
) -> Result<(&'a Object, &'a str, String), TranslateError> {
    let source_path = child(path, "source");
    let source = expect_object(block.get("source").unwrap_or(&Value::Null), &source_path)?;
    let kind = expect_str(source, "type", &source_path)?;
    Ok((source, kind, source_path))
}

fn base64_data_url(source: &Object, path: &str) -> Result<String, TranslateError> {
    let media_type = expect_str(source, "media_type", path)?;
    let data = expect_str(source, "data", path)?;
    Ok(format!("data:{media_type};base64,{data}"))
}

fn image_part(block: &Object, path: &str) -> Result<Value, TranslateError> {
    let (source, kind, source_path) = source(block, path)?;
    let url = match kind {
        "base64" => base64_data_url(source, &source_path)?,
        "url" => expect_str(source, "url", &source_path)?.to_owned(),
        other => return Err(unsupported_block(other, &source_path)),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A base64 PDF -> an OpenAI `file` part; a plain-text document -> a text part.
fn document_part(block: &Object, path: &str) -> Result<Value, TranslateError> {
    let cited = field(block, "citations").and_then(|c| c.get("enabled"));
    if cited.and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::unsupported(
            child(path, "citations"),
            "OpenAI-kind models",
            "they answer without citation blocks; remove citations.enabled, or call a model served by an Anthropic provider",
        ));
    }
    let (source, kind, source_path) = source(block, path)?;
    match kind {
        "base64" => {
            let filename = str_field(block, "title").unwrap_or("document.pdf");
            let file_data = base64_data_url(source, &source_path)?;
            Ok(json!({"type": "file", "file": {"filename": filename, "file_data": file_data}}))
        }
        "text" => Ok(json!({"type": "text", "text": expect_str(source, "data", &source_path)?})),
        other => Err(unsupported_block(other, &source_path)),
    }
}

fn assistant_message(content: &Value, path: &str) -> Result<Option<Value>, TranslateError> {
    let blocks = match content {
        Value::String(text) => return Ok(Some(json!({"role": "assistant", "content": text}))),
        Value::Array(blocks) => blocks,
        _ => return Err(not_content(path)),
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let path = item(path, index);
        let block = expect_object(block, &path)?;
        match expect_str(block, "type", &path)? {
            "text" => text.push_str(expect_str(block, "text", &path)?),
            "tool_use" => tool_calls.push(tool_call(block, &path)?),
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported_block(other, &path)),
        }
    }
    if text.is_empty() && tool_calls.is_empty() {
        return Ok(None);
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !tool_calls.is_empty() {
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Ok(Some(message))
}

fn tool_call(block: &Object, path: &str) -> Result<Value, TranslateError> {
    let id = expect_str(block, "id", path)?;
    let name = expect_str(block, "name", path)?;
    let arguments = field(block, "input").map_or_else(|| "{}".to_owned(), Value::to_string);
    Ok(json!({
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }))
}
