//! The request settings a Responses answer repeats back, and the `response` object built
//! around the output.

use serde_json::{json, Value};

use super::contract::ENCRYPTED_REASONING;
use super::response::openai_responses_usage_json;
use crate::translate::json::{field, Object};
use crate::usage::Usage;

/// The settings of a Responses request that its answer echoes, taken once from the client's
/// request (before translation) and kept for the answer or the whole stream.
///
/// Fields the client left out get OpenAI's defaults, so the official SDKs' `Response` model
/// finds every field it requires (`tools`, `tool_choice`, `parallel_tool_calls`). `store` is
/// echoed as sent, `false` when absent: moat stores nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesEcho {
    fields: Object,
    encrypted_reasoning: bool,
}

/// Echoed request fields, in the order OpenAI writes them, with the default for each.
fn echoed() -> [(&'static str, Value); 18] {
    [
        ("background", json!(false)),
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("max_tool_calls", Value::Null),
        ("parallel_tool_calls", json!(true)),
        ("previous_response_id", Value::Null),
        ("prompt_cache_key", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("safety_identifier", Value::Null),
        ("store", json!(false)),
        ("temperature", Value::Null),
        ("text", json!({"format": {"type": "text"}})),
        ("tool_choice", json!("auto")),
        ("tools", json!([])),
        ("top_logprobs", json!(0)),
        ("top_p", Value::Null),
        ("truncation", json!("disabled")),
        ("user", Value::Null),
    ]
}

impl Default for ResponsesEcho {
    /// The echo of a request that set nothing: OpenAI's defaults.
    fn default() -> Self {
        Self::from_request(&Value::Null)
    }
}

impl ResponsesEcho {
    /// Takes the echoed fields from a Responses request body (any JSON: what is not an object
    /// echoes only defaults).
    pub fn from_request(request: &Value) -> Self {
        let empty = Object::new();
        let request = request.as_object().unwrap_or(&empty);
        let mut fields = Object::new();
        for (key, default) in echoed() {
            let value = field(request, key).cloned().unwrap_or(default);
            fields.insert(key.to_owned(), value);
        }
        let metadata = field(request, "metadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        fields.insert("metadata".to_owned(), metadata);
        let encrypted_reasoning = field(request, "include")
            .and_then(Value::as_array)
            .is_some_and(|include| include.iter().any(|e| e == ENCRYPTED_REASONING));
        Self {
            fields,
            encrypted_reasoning,
        }
    }

    /// Whether the client asked for `reasoning.encrypted_content`.
    pub fn encrypted_reasoning(&self) -> bool {
        self.encrypted_reasoning
    }

    /// Whether the client asked for a structured output (`text.format.type` `json_schema` or
    /// `json_object`), whose refusals are answered as a `refusal` part alone.
    pub fn structured_output(&self) -> bool {
        let kind = self
            .fields
            .get("text")
            .and_then(|text| text.pointer("/format/type"))
            .and_then(Value::as_str);
        matches!(kind, Some("json_schema" | "json_object"))
    }

    /// The `response` object for `answer`, with the echoed settings.
    pub(super) fn response(&self, answer: Answer) -> Value {
        let mut out = Object::new();
        out.insert("id".to_owned(), Value::String(answer.id));
        out.insert("object".to_owned(), json!("response"));
        out.insert("created_at".to_owned(), json!(answer.created_at));
        out.insert("status".to_owned(), json!(answer.status));
        out.insert("error".to_owned(), answer.error.unwrap_or(Value::Null));
        let incomplete = answer
            .incomplete_reason
            .map_or(Value::Null, |reason| json!({"reason": reason}));
        out.insert("incomplete_details".to_owned(), incomplete);
        out.insert("model".to_owned(), json!(answer.model));
        out.insert("output".to_owned(), Value::Array(answer.output));
        out.extend(self.fields.clone());
        let usage = answer
            .usage
            .map_or(Value::Null, openai_responses_usage_json);
        out.insert("usage".to_owned(), usage);
        Value::Object(out)
    }
}

/// What one `response` object says besides the echoed settings.
pub(super) struct Answer<'a> {
    /// `resp_...`.
    pub id: String,
    /// The model the client asked for.
    pub model: &'a str,
    /// Unix seconds.
    pub created_at: i64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: &'a str,
    /// `incomplete_details.reason`, when incomplete.
    pub incomplete_reason: Option<&'a str>,
    /// `{code, message}`, when failed.
    pub error: Option<Value>,
    /// The output items.
    pub output: Vec<Value>,
    /// Usage, once known.
    pub usage: Option<Usage>,
}
