//! Structured output across protocols: OpenAI `response_format` (chat) and `text.format`
//! (Responses) <-> Anthropic `output_config.format` (and the legacy beta `output_format`).
//!
//! | OpenAI | Anthropic |
//! |---|---|
//! | `json_schema` (`strict` or not) | `output_config.format: {type: "json_schema", schema}`, the schema adapted to what Anthropic accepts ([`anthropic_schema`]) |
//! | `json_object` | no JSON mode exists: one last system block asks for a single JSON object ([`JSON_OBJECT_INSTRUCTION`]); not guaranteed |
//! | `text` | nothing |
//!
//! Back from Anthropic, `json_schema` becomes `response_format: {type: "json_schema"}` named
//! `response`, `strict` only when the schema meets OpenAI's strict rules (every object closed and
//! every property required), since OpenAI rejects a strict schema that does not.

use serde_json::{json, Map, Value};

use super::json::{child, expect_object, field, str_field, Object};
use super::TranslateError;

/// The system text sent to an Anthropic target for OpenAI's `json_object` mode, which Anthropic
/// has no equivalent of. Appended as the last system block so cached prefixes still match.
pub const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with one valid JSON object and nothing else: no Markdown code fences, no text before or after it.";

/// The `name` OpenAI requires on a `json_schema` format, for schemas from Anthropic clients,
/// which give none.
const OPENAI_SCHEMA_NAME: &str = "response";

/// Deepest schema nesting adapted; deeper schemas are refused rather than walked.
const MAX_SCHEMA_DEPTH: usize = 64;

/// What the client asked the answer's text to be.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum OutputFormat {
    /// Free text (no format asked, or `type: "text"`).
    Text,
    /// Any single JSON object.
    JsonObject,
    /// JSON valid for `schema`.
    JsonSchema {
        /// OpenAI's schema name, if the client gave one.
        name: Option<String>,
        /// The JSON Schema.
        schema: Value,
    },
}

/// Reads chat's `response_format` (`{type, json_schema: {name, schema, strict}}`).
pub(super) fn from_chat(request: &Object) -> Result<OutputFormat, TranslateError> {
    let Some(format) = field(request, "response_format") else {
        return Ok(OutputFormat::Text);
    };
    let format = expect_object(format, "response_format")?;
    match str_field(format, "type") {
        Some("json_schema") => {
            let spec = expect_object(
                format.get("json_schema").unwrap_or(&Value::Null),
                "response_format.json_schema",
            )?;
            json_schema(spec, "response_format.json_schema")
        }
        kind => simple_kind(kind, "response_format.type"),
    }
}

/// Reads the Responses API's `text.format` (`{type, name, schema, strict}`, flat).
pub(super) fn from_responses(request: &Object) -> Result<OutputFormat, TranslateError> {
    let Some(text) = field(request, "text") else {
        return Ok(OutputFormat::Text);
    };
    let text = expect_object(text, "text")?;
    let Some(format) = field(text, "format") else {
        return Ok(OutputFormat::Text);
    };
    let format = expect_object(format, "text.format")?;
    match str_field(format, "type") {
        Some("json_schema") => json_schema(format, "text.format"),
        kind => simple_kind(kind, "text.format.type"),
    }
}

/// Reads Anthropic's `output_config.format`, else the legacy top-level `output_format`.
pub(super) fn from_anthropic(request: &Object) -> Result<OutputFormat, TranslateError> {
    let (format, path) = match field(request, "output_config").and_then(|c| c.get("format")) {
        Some(format) if !format.is_null() => (format, "output_config.format"),
        _ => match field(request, "output_format") {
            Some(format) => (format, "output_format"),
            None => return Ok(OutputFormat::Text),
        },
    };
    let format = expect_object(format, path)?;
    match str_field(format, "type") {
        Some("json_schema") => {
            let schema = field(format, "schema").ok_or_else(|| {
                let param = child(path, "schema");
                TranslateError::invalid(&param, format!("{param} is required"))
            })?;
            Ok(OutputFormat::JsonSchema {
                name: None,
                schema: schema.clone(),
            })
        }
        other => {
            let param = child(path, "type");
            Err(TranslateError::invalid(
                &param,
                format!(
                    "{param} '{}' is not supported: use json_schema",
                    other.unwrap_or("")
                ),
            ))
        }
    }
}

fn json_schema(spec: &Object, path: &str) -> Result<OutputFormat, TranslateError> {
    let schema = field(spec, "schema").cloned().unwrap_or_else(|| {
        // OpenAI allows a json_schema format without a schema: any JSON object.
        json!({"type": "object"})
    });
    if !schema.is_object() {
        let param = child(path, "schema");
        return Err(TranslateError::invalid(
            &param,
            format!("{param} must be an object"),
        ));
    }
    Ok(OutputFormat::JsonSchema {
        name: str_field(spec, "name").map(str::to_owned),
        schema,
    })
}

fn simple_kind(kind: Option<&str>, path: &str) -> Result<OutputFormat, TranslateError> {
    match kind {
        Some("text") => Ok(OutputFormat::Text),
        Some("json_object") => Ok(OutputFormat::JsonObject),
        other => Err(TranslateError::invalid(
            path,
            format!(
                "{path} must be text, json_object or json_schema, not '{}'",
                other.unwrap_or("")
            ),
        )),
    }
}

/// Applies `format` to an Anthropic request being built: `output_config.format` (merged with an
/// `effort` already there) for a schema, one more system block for `json_object`.
pub(super) fn apply_to_anthropic(
    format: &OutputFormat,
    param: &str,
    out: &mut Object,
) -> Result<(), TranslateError> {
    match format {
        OutputFormat::Text => Ok(()),
        OutputFormat::JsonObject => {
            let block = json!({"type": "text", "text": JSON_OBJECT_INSTRUCTION});
            match out.get_mut("system").and_then(Value::as_array_mut) {
                Some(blocks) => blocks.push(block),
                None => {
                    out.insert("system".to_owned(), Value::Array(vec![block]));
                }
            }
            Ok(())
        }
        OutputFormat::JsonSchema { schema, .. } => {
            let format = json!({"type": "json_schema", "schema": anthropic_schema(schema, param)?});
            let config = out
                .entry("output_config")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(config) = config.as_object_mut() {
                config.insert("format".to_owned(), format);
            }
            Ok(())
        }
    }
}

/// The OpenAI chat `response_format` for `format` (`None` for free text).
pub(super) fn to_chat_response_format(format: &OutputFormat) -> Option<Value> {
    match format {
        OutputFormat::Text => None,
        OutputFormat::JsonObject => Some(json!({"type": "json_object"})),
        OutputFormat::JsonSchema { name, schema } => Some(json!({
            "type": "json_schema",
            "json_schema": {
                "name": name.as_deref().unwrap_or(OPENAI_SCHEMA_NAME),
                "schema": schema,
                "strict": is_strict_compatible(schema, 0),
            },
        })),
    }
}

/// Keywords Anthropic's structured outputs do not accept: removed from the schema and stated in
/// its `description` instead, as Anthropic's own SDKs do, so the model still sees them.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "patternProperties",
];

/// `schema` adapted to Anthropic's structured outputs: every object schema closed
/// (`additionalProperties: false`, which Anthropic requires), unsupported constraints moved into
/// the description, `minItems` above 1 lowered to 1 (noted likewise). Schemas nested deeper than
/// 64 levels are refused, naming `param`.
pub fn anthropic_schema(schema: &Value, param: &str) -> Result<Value, TranslateError> {
    adapt(schema, 0).ok_or_else(|| {
        TranslateError::invalid(
            param,
            format!("{param} is nested deeper than {MAX_SCHEMA_DEPTH} levels"),
        )
    })
}

fn adapt(schema: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_SCHEMA_DEPTH {
        return None;
    }
    let Some(object) = schema.as_object() else {
        return match schema {
            Value::Array(items) => items
                .iter()
                .map(|item| adapt(item, depth + 1))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            other => Some(other.clone()),
        };
    };
    let mut out = Map::with_capacity(object.len() + 1);
    let mut moved = Vec::new();
    for (key, value) in object {
        if UNSUPPORTED_KEYWORDS.contains(&key.as_str()) {
            moved.push(format!("{key}: {value}"));
            continue;
        }
        if key == "minItems" && value.as_u64().is_some_and(|n| n > 1) {
            moved.push(format!("{key}: {value}"));
            out.insert(key.clone(), json!(1));
            continue;
        }
        let adapted = match key.as_str() {
            // Maps from names to schemas.
            "properties" | "$defs" | "definitions" => match value.as_object() {
                Some(children) => {
                    let mut map = Map::with_capacity(children.len());
                    for (name, child) in children {
                        map.insert(name.clone(), adapt(child, depth + 1)?);
                    }
                    Value::Object(map)
                }
                None => value.clone(),
            },
            // Schemas and lists of schemas.
            "items" | "anyOf" | "allOf" | "oneOf" | "prefixItems" | "not" => {
                adapt(value, depth + 1)?
            }
            // `enum`, `const`, `default`, `examples` and the rest are data, not schemas.
            _ => value.clone(),
        };
        out.insert(key.clone(), adapted);
    }
    let is_object = out.get("type").is_some_and(|t| match t {
        Value::String(t) => t == "object",
        Value::Array(types) => types.iter().any(|t| t == "object"),
        _ => false,
    }) || out.contains_key("properties");
    if is_object && !matches!(out.get("additionalProperties"), Some(Value::Bool(false))) {
        out.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    if !moved.is_empty() {
        let note = format!("{{{}}}", moved.join(", "));
        let description = match out.get("description").and_then(Value::as_str) {
            Some(text) => format!("{text}\n\n{note}"),
            None => note,
        };
        out.insert("description".to_owned(), Value::String(description));
    }
    Some(Value::Object(out))
}

/// Whether OpenAI accepts `schema` with `strict: true`: every object lists all its properties as
/// required and forbids others.
fn is_strict_compatible(schema: &Value, depth: usize) -> bool {
    if depth > MAX_SCHEMA_DEPTH {
        return false;
    }
    match schema {
        Value::Array(items) => items.iter().all(|s| is_strict_compatible(s, depth + 1)),
        Value::Object(object) => {
            if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                let closed = matches!(object.get("additionalProperties"), Some(Value::Bool(false)));
                let required: Vec<&str> = object
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !closed || !properties.keys().all(|k| required.contains(&k.as_str())) {
                    return false;
                }
            }
            object.iter().all(|(key, value)| match key.as_str() {
                "properties" | "$defs" | "definitions" => value
                    .as_object()
                    .is_none_or(|m| m.values().all(|s| is_strict_compatible(s, depth + 1))),
                "items" | "anyOf" | "allOf" | "oneOf" | "prefixItems" | "not" => {
                    is_strict_compatible(value, depth + 1)
                }
                _ => true,
            })
        }
        _ => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_closed_and_unsupported_constraints_move_to_the_description() {
        let schema = json!({
            "type": "object",
            "properties": {
                "age": {"type": "integer", "minimum": 0, "description": "years"},
                "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}, "minItems": 3},
            },
            "$defs": {"inner": {"type": "object", "properties": {}}},
            "required": ["age"],
        });
        let out = anthropic_schema(&schema, "s").unwrap();
        assert_eq!(out["additionalProperties"], false);
        assert_eq!(
            out["properties"]["age"]["description"],
            "years\n\n{minimum: 0}"
        );
        assert!(out["properties"]["age"].get("minimum").is_none());
        assert_eq!(out["properties"]["tags"]["minItems"], 1);
        assert_eq!(
            out["properties"]["tags"]["items"]["additionalProperties"],
            false
        );
        assert_eq!(out["$defs"]["inner"]["additionalProperties"], false);
        // Data keywords are left alone even when they look like schemas.
        let with_enum = json!({"type": "string", "enum": [{"type": "object"}]});
        assert_eq!(anthropic_schema(&with_enum, "s").unwrap(), with_enum);
    }

    #[test]
    fn a_hostile_nesting_depth_is_refused_not_walked() {
        let mut schema = json!({"type": "string"});
        for _ in 0..200 {
            schema = json!({"type": "array", "items": schema});
        }
        assert!(anthropic_schema(&schema, "s").is_err());
        assert!(!is_strict_compatible(&schema, 0));
    }

    #[test]
    fn strict_only_when_every_object_is_closed_and_fully_required() {
        let strict = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
        assert!(is_strict_compatible(&strict, 0));
        let optional = json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false});
        assert!(!is_strict_compatible(&optional, 0));
        let open =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert!(!is_strict_compatible(&open, 0));
        let nested = json!({"type": "array", "items": optional});
        assert!(!is_strict_compatible(&nested, 0));
    }

    #[test]
    fn formats_are_read_from_each_protocol() {
        let chat = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}}});
        assert_eq!(
            from_chat(chat.as_object().unwrap()).unwrap(),
            OutputFormat::JsonSchema {
                name: Some("n".into()),
                schema: json!({"type": "object"})
            }
        );
        let responses = json!({"text": {"format": {"type": "json_object"}}});
        assert_eq!(
            from_responses(responses.as_object().unwrap()).unwrap(),
            OutputFormat::JsonObject
        );
        let legacy =
            json!({"output_format": {"type": "json_schema", "schema": {"type": "object"}}});
        assert!(matches!(
            from_anthropic(legacy.as_object().unwrap()).unwrap(),
            OutputFormat::JsonSchema { .. }
        ));
        let bad = json!({"response_format": {"type": "xml"}});
        assert_eq!(
            from_chat(bad.as_object().unwrap()).unwrap_err().param(),
            Some("response_format.type")
        );
    }

    #[test]
    fn json_object_appends_a_system_block_and_schemas_merge_with_effort() {
        let mut out = Object::new();
        out.insert(
            "system".into(),
            json!([{"type": "text", "text": "be brief"}]),
        );
        apply_to_anthropic(&OutputFormat::JsonObject, "p", &mut out).unwrap();
        assert_eq!(out["system"][1]["text"], JSON_OBJECT_INSTRUCTION);
        let mut out = Object::new();
        out.insert("output_config".into(), json!({"effort": "low"}));
        let format = OutputFormat::JsonSchema {
            name: None,
            schema: json!({"type": "object", "properties": {}}),
        };
        apply_to_anthropic(&format, "p", &mut out).unwrap();
        assert_eq!(out["output_config"]["effort"], "low");
        assert_eq!(out["output_config"]["format"]["type"], "json_schema");
    }
}
