//! Responses `instructions` and `input` -> Anthropic `system` blocks and alternating `messages`.

use serde_json::{json, Value};

use super::contract::SEND_EVERYTHING;
use super::reasoning;
use crate::translate::contract::anthropic_target;
use crate::translate::json::{child, expect_object, expect_str, field, item, str_field, Object};
use crate::translate::messages_o2a::{
    content_blocks_with, image_block, inline_document_block, parse_arguments, text_block,
    tool_result, AnthropicConversation, Place, Turns,
};
use crate::translate::TranslateError;

/// Converts `instructions` (the first system block) and `input`: a string is one user message;
/// items are converted in order, system/developer messages to system blocks, `function_call`
/// items to `tool_use` blocks of the assistant, `function_call_output` items to `tool_result`
/// blocks of the user (placed first in their message), `reasoning` items carrying a moat token
/// back to thinking blocks (others are dropped: Anthropic cannot read OpenAI's). Consecutive
/// items of one role merge, since Anthropic requires alternation.
pub(super) fn convert_input(
    request: &Object,
    target_model: &str,
) -> Result<AnthropicConversation, TranslateError> {
    let mut system = Vec::new();
    match field(request, "instructions") {
        None => {}
        Some(Value::String(text)) => system.extend(text_block(text)),
        Some(_) => {
            return Err(TranslateError::invalid(
                "instructions",
                "instructions must be a string",
            ))
        }
    }
    let mut turns = Turns::default();
    match field(request, "input") {
        None => return Err(TranslateError::invalid("input", "input is required")),
        Some(Value::String(text)) => turns.push("user", text_block(text).into_iter().collect()),
        Some(Value::Array(items)) => {
            for (index, entry) in items.iter().enumerate() {
                let path = item("input", index);
                let entry = expect_object(entry, &path)?;
                convert_item(entry, &path, target_model, &mut system, &mut turns)?;
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "input",
                "input must be a string or an array of items",
            ))
        }
    }
    Ok(AnthropicConversation {
        system,
        messages: turns.into_messages(),
    })
}

fn convert_item(
    entry: &Object,
    path: &str,
    target_model: &str,
    system: &mut Vec<Value>,
    turns: &mut Turns,
) -> Result<(), TranslateError> {
    // A message may leave out its type (the SDKs' "easy input message").
    let kind = match str_field(entry, "type") {
        None if field(entry, "type").is_none() => "message",
        _ => expect_str(entry, "type", path)?,
    };
    match kind {
        "message" => {
            let content = field(entry, "content");
            let content_path = child(path, "content");
            let parts =
                |part: &Value, path: &str, place| part_block(part, path, place, target_model);
            let convert = |place| content_blocks_with(content, &content_path, place, &parts);
            match expect_str(entry, "role", path)? {
                "system" | "developer" => system.extend(convert(Place::System)?),
                "user" => turns.push("user", convert(Place::User)?),
                "assistant" => turns.push("assistant", convert(Place::Assistant)?),
                other => {
                    let param = child(path, "role");
                    return Err(TranslateError::invalid(
                        &param,
                        format!(
                            "{param} must be user, assistant, system or developer, not '{other}'"
                        ),
                    ));
                }
            }
        }
        "function_call" => turns.push("assistant", vec![tool_use_block(entry, path)?]),
        "function_call_output" => {
            let block = tool_result_block(entry, path, target_model)?;
            turns.push("user", vec![block]);
        }
        "reasoning" => {
            let token = str_field(entry, "encrypted_content");
            let restored = match token {
                Some(token) => reasoning::open(token, &child(path, "encrypted_content"))?,
                None => None,
            };
            turns.push("assistant", restored.into_iter().collect());
        }
        "item_reference" => {
            let remedy =
                format!("the item it refers to is stored at OpenAI, and {SEND_EVERYTHING}");
            let target = anthropic_target(target_model);
            return Err(TranslateError::unsupported(path, &target, &remedy));
        }
        other => {
            let remedy = format!("'{other}' items belong to tools it cannot run");
            let target = anthropic_target(target_model);
            return Err(TranslateError::unsupported(
                child(path, "type"),
                &target,
                &remedy,
            ));
        }
    }
    Ok(())
}

/// One Responses content part -> at most one Anthropic block: text parts anywhere, `refusal`
/// in assistant messages, images and files in user messages and tool outputs.
fn part_block(
    part: &Value,
    path: &str,
    place: Place,
    target_model: &str,
) -> Result<Option<Value>, TranslateError> {
    let part = expect_object(part, path)?;
    let kind = expect_str(part, "type", path)?;
    match (kind, place) {
        ("input_text" | "output_text", _) => Ok(text_block(expect_str(part, "text", path)?)),
        ("refusal", Place::Assistant) => Ok(text_block(expect_str(part, "refusal", path)?)),
        ("input_image", Place::User | Place::ToolResult) => {
            if field(part, "image_url").is_none() && field(part, "file_id").is_some() {
                return Err(uploaded_file(path, target_model));
            }
            image_block(part, path).map(Some)
        }
        ("input_file", Place::User | Place::ToolResult) => {
            document_block(part, path, target_model).map(Some)
        }
        _ => {
            let param = child(path, "type");
            Err(TranslateError::invalid(
                &param,
                format!("{param} '{kind}' is not supported here by Anthropic models"),
            ))
        }
    }
}

/// An `input_file` part: inline `file_data` (a PDF data: URL) -> a base64 document, `file_url`
/// -> a url document; a `file_id` is refused.
fn document_block(part: &Object, path: &str, target_model: &str) -> Result<Value, TranslateError> {
    if field(part, "file_data").is_none() {
        if let Some(url) = str_field(part, "file_url") {
            if url.starts_with("https://") || url.starts_with("http://") {
                return Ok(json!({"type": "document", "source": {"type": "url", "url": url}}));
            }
        }
        if field(part, "file_id").is_some() {
            return Err(uploaded_file(path, target_model));
        }
    }
    inline_document_block(part, path)
}

/// A `file_id`: the file is stored at OpenAI, where an OpenAI-kind target of the route can
/// read it, so this is a refusal (the next target is tried), not a malformed request.
fn uploaded_file(path: &str, target_model: &str) -> TranslateError {
    TranslateError::unsupported(
        child(path, "file_id"),
        &anthropic_target(target_model),
        "files uploaded to OpenAI cannot be read from it: send the file inline (a data: URL) or by https URL",
    )
}

/// A `function_call` item -> a `tool_use` block with the call's `call_id` as its id.
fn tool_use_block(entry: &Object, path: &str) -> Result<Value, TranslateError> {
    let call_id = expect_str(entry, "call_id", path)?;
    let name = expect_str(entry, "name", path)?;
    let input = parse_arguments(field(entry, "arguments"), &child(path, "arguments"))?;
    Ok(json!({"type": "tool_use", "id": call_id, "name": name, "input": input}))
}

/// A `function_call_output` item -> a `tool_result` block; `output` is a string or parts.
fn tool_result_block(
    entry: &Object,
    path: &str,
    target_model: &str,
) -> Result<Value, TranslateError> {
    let call_id = expect_str(entry, "call_id", path)?;
    let output_path = child(path, "output");
    let parts = |part: &Value, path: &str, place| part_block(part, path, place, target_model);
    tool_result(call_id, field(entry, "output"), &output_path, &parts)
}
