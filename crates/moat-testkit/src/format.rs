//! Which format a request asks its answer in, read from each protocol's own field.
//!
//! | protocol | field | structured forms |
//! |---|---|---|
//! | Chat Completions | `response_format` | `{type: "json_schema", json_schema: {name, schema}}`, `{type: "json_object"}` |
//! | Responses | `text.format` | `{type: "json_schema", name, schema}` (flat), `{type: "json_object"}` |
//! | Messages | `output_config.format`, legacy `output_format` | `{type: "json_schema", schema}` |

use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::request::Fields;

/// The answer format a request asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Format<'a> {
    /// Free text: the default, and `{type: "text"}`.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid for this schema.
    JsonSchema(&'a Value),
}

impl Format<'_> {
    /// Whether the answer must be JSON.
    pub(crate) fn is_structured(&self) -> bool {
        !matches!(self, Format::Text)
    }
}

/// `response_format` of a Chat Completions request.
pub(crate) fn chat<'a>(fields: &Fields<'a>) -> Result<Format<'a>, ApiError> {
    let Some(format) = fields.get("response_format") else {
        return Ok(Format::Text);
    };
    let format = object(fields, format, "response_format")?;
    match openai_type(fields, format, "response_format")? {
        OpenAiType::Text => Ok(Format::Text),
        OpenAiType::JsonObject => Ok(Format::JsonObject),
        OpenAiType::JsonSchema => {
            let Some(spec) = format.get("json_schema").filter(|v| !v.is_null()) else {
                return Err(fields.missing("response_format.json_schema"));
            };
            let spec = object(fields, spec, "response_format.json_schema")?;
            named(fields, spec, "response_format.json_schema")?;
            Ok(spec
                .get("schema")
                .map_or(Format::JsonObject, Format::JsonSchema))
        }
    }
}

/// `text.format` of a Responses request (the flat form).
pub(crate) fn responses<'a>(fields: &Fields<'a>) -> Result<Format<'a>, ApiError> {
    let Some(text) = fields.get("text") else {
        return Ok(Format::Text);
    };
    let text = object(fields, text, "text")?;
    let Some(format) = text.get("format").filter(|v| !v.is_null()) else {
        return Ok(Format::Text);
    };
    let format = object(fields, format, "text.format")?;
    match openai_type(fields, format, "text.format")? {
        OpenAiType::Text => Ok(Format::Text),
        OpenAiType::JsonObject => Ok(Format::JsonObject),
        OpenAiType::JsonSchema => {
            named(fields, format, "text.format")?;
            match format.get("schema").filter(|v| !v.is_null()) {
                Some(schema) => Ok(Format::JsonSchema(schema)),
                None => Err(fields.missing("text.format.schema")),
            }
        }
    }
}

/// `output_config.format` of a Messages request, or the legacy top-level `output_format`.
pub(crate) fn anthropic<'a>(fields: &Fields<'a>) -> Result<Format<'a>, ApiError> {
    if let Some(config) = fields.get("output_config") {
        let config = object(fields, config, "output_config")?;
        if let Some(format) = config.get("format").filter(|v| !v.is_null()) {
            return anthropic_schema(fields, format, "output_config.format");
        }
    }
    match fields.get("output_format") {
        Some(format) => anthropic_schema(fields, format, "output_format"),
        None => Ok(Format::Text),
    }
}

fn anthropic_schema<'a>(
    fields: &Fields<'a>,
    format: &'a Value,
    path: &str,
) -> Result<Format<'a>, ApiError> {
    let format = object(fields, format, path)?;
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {}
        Some(_) => return Err(fields.invalid(&format!("{path}.type"), "'json_schema'")),
        None => return Err(fields.missing(&format!("{path}.type"))),
    }
    match format.get("schema").filter(|v| !v.is_null()) {
        Some(schema) => Ok(Format::JsonSchema(schema)),
        None => Err(fields.missing(&format!("{path}.schema"))),
    }
}

enum OpenAiType {
    Text,
    JsonObject,
    JsonSchema,
}

/// The `type` of an OpenAI format object, refused as OpenAI refuses an unknown one.
fn openai_type(
    fields: &Fields<'_>,
    format: &Map<String, Value>,
    path: &str,
) -> Result<OpenAiType, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(OpenAiType::Text),
        Some("json_object") => Ok(OpenAiType::JsonObject),
        Some("json_schema") => Ok(OpenAiType::JsonSchema),
        Some(other) => Err(ApiError::invalid_param(
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and \
                 'json_schema'."
            ),
            &format!("{path}.type"),
        )
        .with_code("invalid_value")),
        None => Err(fields.missing(&format!("{path}.type"))),
    }
}

/// OpenAI requires a schema's `name`.
fn named(fields: &Fields<'_>, spec: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    match spec.get("name") {
        Some(Value::String(name)) if !name.is_empty() => Ok(()),
        Some(_) => Err(fields.invalid(&format!("{path}.name"), "a non-empty string")),
        None => Err(fields.missing(&format!("{path}.name"))),
    }
}

fn object<'a>(
    fields: &Fields<'a>,
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| fields.invalid(path, "an object"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_core::Protocol;
    use serde_json::json;

    fn read(
        body: Value,
        protocol: Protocol,
        reader: for<'a, 'b> fn(&'b Fields<'a>) -> Result<Format<'a>, ApiError>,
    ) -> Result<String, String> {
        let body = body.as_object().unwrap().clone();
        let fields = Fields::new(&body, protocol);
        reader(&fields)
            .map(|f| match f {
                Format::Text => "text".to_owned(),
                Format::JsonObject => "object".to_owned(),
                Format::JsonSchema(s) => s.to_string(),
            })
            .map_err(|e| e.message)
    }

    #[test]
    fn chat_formats() {
        let chat = |body| read(body, Protocol::OpenAi, chat);
        assert_eq!(chat(json!({})).unwrap(), "text");
        assert_eq!(
            chat(json!({"response_format": {"type": "text"}})).unwrap(),
            "text"
        );
        assert_eq!(
            chat(json!({"response_format": {"type": "json_object"}})).unwrap(),
            "object"
        );
        let schema = json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": true}}});
        assert_eq!(chat(schema).unwrap(), r#"{"type":"object"}"#);
        let unnamed = json!({"response_format": {"type": "json_schema", "json_schema": {}}});
        assert!(chat(unnamed).unwrap_err().contains("json_schema.name"));
        let odd = json!({"response_format": {"type": "yaml"}});
        assert!(chat(odd).unwrap_err().contains("'yaml'"));
    }

    #[test]
    fn responses_formats() {
        let responses = |body| read(body, Protocol::OpenAi, responses);
        assert_eq!(responses(json!({"text": {}})).unwrap(), "text");
        let flat = json!({"text": {"format": {"type": "json_schema", "name": "x",
            "schema": {"type": "object"}}}});
        assert_eq!(responses(flat).unwrap(), r#"{"type":"object"}"#);
        let nested = json!({"text": {"format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": {}}}}});
        assert!(responses(nested).unwrap_err().contains("text.format.name"));
        assert_eq!(
            responses(json!({"text": {"format": {"type": "json_object"}}})).unwrap(),
            "object"
        );
    }

    #[test]
    fn anthropic_formats() {
        let anthropic = |body| read(body, Protocol::Anthropic, anthropic);
        assert_eq!(
            anthropic(json!({"output_config": {"effort": "low"}})).unwrap(),
            "text"
        );
        let ga = json!({"output_config": {"effort": "low",
            "format": {"type": "json_schema", "schema": {"type": "object"}}}});
        assert_eq!(anthropic(ga).unwrap(), r#"{"type":"object"}"#);
        let legacy = json!({"output_format": {"type": "json_schema", "schema": {"type": "array"}}});
        assert_eq!(anthropic(legacy).unwrap(), r#"{"type":"array"}"#);
        let bare = json!({"output_config": {"format": {"type": "json_schema"}}});
        assert_eq!(
            anthropic(bare).unwrap_err(),
            "output_config.format.schema: Field required"
        );
    }
}
