//! Error bodies in the shape each protocol's SDK expects, and translation between the two.
//!
//! Messages from a well-formed envelope travel verbatim. Anything else an upstream may answer
//! (HTML from a load balancer, plain text, unexpected JSON) still becomes a valid envelope, with
//! the text, cut to [`MAX_FALLBACK_MESSAGE_CHARS`], as the message.

mod mapping;
mod mask;

pub use mapping::{anthropic_type_for_status, openai_type_for_status};
pub use mask::{mask_error_body, mask_secrets, mask_value, masked};

use serde_json::{json, Value};

/// How many characters of an unrecognised error body are kept as the message.
pub const MAX_FALLBACK_MESSAGE_CHARS: usize = 1000;

/// An OpenAI error body: `{"error":{"message","type","param","code"}}`.
pub fn openai_error(message: &str, r#type: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({
        "error": {
            "message": message,
            "type": r#type,
            "param": param,
            "code": code,
        }
    })
}

/// An Anthropic error body: `{"type":"error","error":{"type","message"}}`.
pub fn anthropic_error(r#type: &str, message: &str) -> Value {
    json!({
        "type": "error",
        "error": {
            "type": r#type,
            "message": message,
        }
    })
}

/// Reads an upstream error body: its JSON if it parses, else its text as a JSON string.
pub fn parse_error_body(raw: &[u8]) -> Value {
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

/// Translates an OpenAI(-compatible) error body answered with `status` into an Anthropic one.
///
/// The Anthropic type follows the status (OpenAI's own types are too irregular, e.g. `requests`
/// or `invalid_request_error` on a 401); a status below 400, as for an error inside a stream,
/// falls back to the OpenAI type. `insufficient_quota` always becomes `billing_error`.
pub fn openai_error_to_anthropic(status: u16, body: &Value) -> Value {
    let error = body.get("error");
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .or_else(|| body.get(name))
            .and_then(Value::as_str)
    };
    let r#type = mapping::anthropic_type_for_openai(status, field("type"), field("code"));
    let message = match error {
        Some(Value::String(text)) => fallback_text(status, text),
        _ => field("message")
            .or_else(|| body.get("detail").and_then(Value::as_str))
            .map_or_else(|| fallback_message(status, body), str::to_owned),
    };
    anthropic_error(r#type, &message)
}

/// Translates an Anthropic error body answered with `status` into an OpenAI one.
///
/// Anthropic's types are precise, so a recognised type decides; otherwise the status does.
pub fn anthropic_error_to_openai(status: u16, body: &Value) -> Value {
    let error = body.get("error").filter(|e| e.is_object());
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str);
    let spend_limit = error
        .and_then(|e| e.pointer("/details/error_code"))
        .and_then(Value::as_str)
        == Some("enforced_spend_limit_reached");
    let (r#type, code) = if spend_limit {
        ("insufficient_quota", Some("insufficient_quota"))
    } else {
        mapping::openai_type_for_anthropic(status, field("type"))
    };
    let message = field("message").map_or_else(|| fallback_message(status, body), str::to_owned);
    openai_error(&message, r#type, None, code)
}

/// The message for a body that is not a recognised envelope.
fn fallback_message(status: u16, body: &Value) -> String {
    match body {
        Value::Null => fallback_text(status, ""),
        Value::String(text) => fallback_text(status, text),
        Value::Object(map) if map.is_empty() => fallback_text(status, ""),
        other => fallback_text(status, &other.to_string()),
    }
}

/// `text` trimmed and cut to a sane length, or a generic message when it is empty.
fn fallback_text(status: u16, text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return if status >= 400 {
            format!("upstream returned HTTP {status}")
        } else {
            "upstream returned an error".to_owned()
        };
    }
    match text.char_indices().nth(MAX_FALLBACK_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
