//! OpenAI chat `messages` -> Anthropic `system` blocks and alternating `messages`.

use serde_json::{json, Value};

use super::json::{child, expect_array, expect_object, expect_str, field, item, Object};
use super::TranslateError;

/// The two halves of an Anthropic conversation.
pub(super) struct AnthropicConversation {
    /// Text blocks from system and developer messages, in their original order.
    pub system: Vec<Value>,
    /// User and assistant messages, alternating.
    pub messages: Vec<Value>,
}

/// Converts `messages`: system/developer messages become system blocks (not merged), tool
/// messages become `tool_result` blocks in a user message, and consecutive messages of one role
/// merge into one, since Anthropic requires alternation. Messages left without any content
/// (e.g. an assistant message with `content: ""` and no tool calls) are dropped.
pub(super) fn convert_messages(messages: &Value) -> Result<AnthropicConversation, TranslateError> {
    let list = expect_array(messages, "messages")?;
    let mut system = Vec::new();
    let mut turns = Turns::default();
    for (index, message) in list.iter().enumerate() {
        let path = item("messages", index);
        let message = expect_object(message, &path)?;
        let content = field(message, "content");
        let content_path = child(&path, "content");
        match expect_str(message, "role", &path)? {
            "system" | "developer" => {
                system.extend(content_blocks(content, &content_path, Place::System)?);
            }
            "user" => {
                let blocks = content_blocks(content, &content_path, Place::User)?;
                turns.push("user", blocks);
            }
            "assistant" => turns.push("assistant", assistant_blocks(message, &path)?),
            "tool" => turns.push("user", vec![tool_result_block(message, &path)?]),
            other => {
                let param = child(&path, "role");
                return Err(TranslateError::invalid(
                    &param,
                    format!("{param} '{other}' is not supported by Anthropic models"),
                ));
            }
        }
    }
    Ok(AnthropicConversation {
        system,
        messages: turns.into_messages(),
    })
}

/// Where a content part appears; each place allows different part types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// A system or developer message.
    System,
    /// A user message.
    User,
    /// An assistant message.
    Assistant,
    /// The content of a tool result.
    ToolResult,
}

/// Converts one content part found at `path` in `place` into at most one Anthropic block.
pub(super) type PartConverter<'a> =
    dyn Fn(&Value, &str, Place) -> Result<Option<Value>, TranslateError> + 'a;

/// User and assistant turns being built: blocks pushed for the role of the last turn join it,
/// since Anthropic requires the roles to alternate.
#[derive(Default)]
pub(super) struct Turns(Vec<Turn>);

struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

impl Turns {
    /// Adds `blocks` said by `role` (nothing when empty).
    pub(super) fn push(&mut self, role: &'static str, blocks: Vec<Value>) {
        if blocks.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(last) if last.role == role => last.blocks.extend(blocks),
            _ => self.0.push(Turn { role, blocks }),
        }
    }

    /// The Anthropic messages; in each user message the tool results come first, as Anthropic
    /// wants.
    pub(super) fn into_messages(self) -> Vec<Value> {
        self.0
            .into_iter()
            .map(|mut turn| {
                if turn.role == "user" {
                    turn.blocks
                        .sort_by_key(|block| block["type"] != "tool_result");
                }
                json!({"role": turn.role, "content": turn.blocks})
            })
            .collect()
    }
}

fn content_blocks(
    content: Option<&Value>,
    path: &str,
    place: Place,
) -> Result<Vec<Value>, TranslateError> {
    content_blocks_with(content, path, place, &part_block)
}

/// A content string (one text block) or array of parts (each converted by `convert`) -> blocks.
pub(super) fn content_blocks_with(
    content: Option<&Value>,
    path: &str,
    place: Place,
    convert: &PartConverter,
) -> Result<Vec<Value>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text_block(text).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (index, part) in parts.iter().enumerate() {
                blocks.extend(convert(part, &item(path, index), place)?);
            }
            Ok(blocks)
        }
        Some(_) => Err(TranslateError::invalid(
            path,
            format!("{path} must be a string or an array of parts"),
        )),
    }
}

/// An Anthropic text block; `None` for empty text, which Anthropic rejects.
pub(super) fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn part_block(part: &Value, path: &str, place: Place) -> Result<Option<Value>, TranslateError> {
    let part = expect_object(part, path)?;
    let kind = expect_str(part, "type", path)?;
    let block = match (kind, place) {
        ("text", _) => text_block(expect_str(part, "text", path)?),
        ("refusal", Place::Assistant) => text_block(expect_str(part, "refusal", path)?),
        ("image_url", Place::User | Place::ToolResult) => Some(image_block(part, path)?),
        ("file", Place::User) => Some(document_block(part, path)?),
        ("input_audio", _) => {
            return Err(TranslateError::invalid(
                path,
                format!("{path}: audio input is not supported by Anthropic models"),
            ))
        }
        _ => {
            let param = child(path, "type");
            return Err(TranslateError::invalid(
                &param,
                format!("{param} '{kind}' is not supported here by Anthropic models"),
            ));
        }
    };
    Ok(block.map(|block| with_cache_control(block, part)))
}

/// Keeps a `cache_control` marker some clients put on OpenAI parts, tools and messages.
fn with_cache_control(mut block: Value, from: &Object) -> Value {
    if let (Some(cache_control), Some(object)) =
        (field(from, "cache_control"), block.as_object_mut())
    {
        object.insert("cache_control".to_owned(), cache_control.clone());
    }
    block
}

/// An image part whose `image_url` is a URL string or `{url}` -> an Anthropic image block
/// (data: URL -> base64 source, http(s) URL -> url source).
pub(super) fn image_block(part: &Object, path: &str) -> Result<Value, TranslateError> {
    let url_path = child(path, "image_url");
    let url = match field(part, "image_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(Value::Object(image)) => expect_str(image, "url", &url_path)?,
        _ => {
            return Err(TranslateError::invalid(
                &url_path,
                format!("{url_path} must be an object with a url"),
            ))
        }
    };
    let source = if let Some(data_url) = url.strip_prefix("data:") {
        let (media_type, data) = parse_data_url(data_url).ok_or_else(|| bad_data_url(&url_path))?;
        json!({"type": "base64", "media_type": media_type, "data": data})
    } else if url.starts_with("https://") || url.starts_with("http://") {
        json!({"type": "url", "url": url})
    } else {
        return Err(TranslateError::invalid(
            &url_path,
            format!("{url_path} must be a base64 data: URL or an https URL"),
        ));
    };
    Ok(json!({"type": "image", "source": source}))
}

/// An OpenAI `file` part with inline `file_data` (a PDF) -> an Anthropic document block.
fn document_block(part: &Object, path: &str) -> Result<Value, TranslateError> {
    let file_path = child(path, "file");
    let file = expect_object(part.get("file").unwrap_or(&Value::Null), &file_path)?;
    inline_document_block(file, &file_path)
}

/// A file object at `file_path` with inline `file_data` (a data: URL) and an optional
/// `filename` -> an Anthropic document block with a base64 source.
pub(super) fn inline_document_block(
    file: &Object,
    file_path: &str,
) -> Result<Value, TranslateError> {
    let Some(file_data) = field(file, "file_data").and_then(Value::as_str) else {
        return Err(TranslateError::invalid(
            file_path,
            format!(
                "{file_path}: only inline file_data is supported by Anthropic models, not file_id"
            ),
        ));
    };
    let data_path = child(file_path, "file_data");
    let (media_type, data) = file_data
        .strip_prefix("data:")
        .and_then(parse_data_url)
        .ok_or_else(|| bad_data_url(&data_path))?;
    let mut block = json!({
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    });
    if let Some(filename) = field(file, "filename") {
        block["title"] = filename.clone();
    }
    Ok(block)
}

/// `media/type[;params];base64,DATA` (after `data:`) -> `(media/type, DATA)`.
fn parse_data_url(rest: &str) -> Option<(&str, &str)> {
    let (header, data) = rest.split_once(',')?;
    let header = header.strip_suffix(";base64")?;
    let media_type = header.split(';').next().unwrap_or_default();
    (!media_type.is_empty()).then_some((media_type, data))
}

fn bad_data_url(path: &str) -> TranslateError {
    TranslateError::invalid(
        path,
        format!("{path} must be a data: URL with a media type and base64 data"),
    )
}

fn assistant_blocks(message: &Object, path: &str) -> Result<Vec<Value>, TranslateError> {
    let content_path = child(path, "content");
    let mut blocks = content_blocks(field(message, "content"), &content_path, Place::Assistant)?;
    if let Some(calls) = field(message, "tool_calls") {
        let calls_path = child(path, "tool_calls");
        for (index, call) in expect_array(calls, &calls_path)?.iter().enumerate() {
            blocks.push(tool_use_block(call, &item(&calls_path, index))?);
        }
    }
    Ok(blocks)
}

fn tool_use_block(call: &Value, path: &str) -> Result<Value, TranslateError> {
    let call = expect_object(call, path)?;
    let id = expect_str(call, "id", path)?;
    let function_path = child(path, "function");
    let function = expect_object(call.get("function").unwrap_or(&Value::Null), &function_path)?;
    let name = expect_str(function, "name", &function_path)?;
    let arguments_path = child(&function_path, "arguments");
    let input = parse_arguments(field(function, "arguments"), &arguments_path)?;
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}

/// OpenAI's JSON-string arguments -> Anthropic's `input` object. Empty arguments, which some
/// clients send for functions without parameters, become `{}`.
pub(super) fn parse_arguments(
    arguments: Option<&Value>,
    path: &str,
) -> Result<Value, TranslateError> {
    match arguments {
        None => Ok(json!({})),
        Some(object @ Value::Object(_)) => Ok(object.clone()),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(json!({})),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(input @ Value::Object(_)) => Ok(input),
            Ok(_) => Err(TranslateError::invalid(
                path,
                format!("{path} must encode a JSON object"),
            )),
            Err(error) => Err(TranslateError::invalid(
                path,
                format!(
                    "{path} is not valid JSON: {}",
                    crate::json_error::describe(&error)
                ),
            )),
        },
        Some(_) => Err(TranslateError::invalid(
            path,
            format!("{path} must be a string of JSON"),
        )),
    }
}

fn tool_result_block(message: &Object, path: &str) -> Result<Value, TranslateError> {
    let id = expect_str(message, "tool_call_id", path)?;
    let content_path = child(path, "content");
    tool_result(id, field(message, "content"), &content_path, &part_block)
}

/// A `tool_result` block for the call `id`: a string result stays a string (empty when absent),
/// parts at `path` are converted by `convert`.
pub(super) fn tool_result(
    id: &str,
    content: Option<&Value>,
    path: &str,
    convert: &PartConverter,
) -> Result<Value, TranslateError> {
    let content = match content {
        None => Value::String(String::new()),
        Some(Value::String(text)) => Value::String(text.clone()),
        other => Value::Array(content_blocks_with(
            other,
            path,
            Place::ToolResult,
            convert,
        )?),
    };
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}
