//! Tool calling: which tool the sim calls, and arguments that satisfy the tool's JSON schema.

use serde_json::{Map, Value};

use crate::schema::{self, Fill, Words};
use crate::text::{id_suffix, stable_hash};

/// Characters per streamed argument fragment.
const FRAGMENT_CHARS: usize = 8;

/// A tool the request offers: its name and its parameters' JSON schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ToolSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) schema: Option<&'a Value>,
}

/// The request's tool choice, in protocol-neutral terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    /// Never call a tool.
    None,
    /// Call one if offered (the sim always does).
    Auto,
    /// Must call one.
    Required,
    /// Must call this one.
    Named(String),
}

/// The tool to call, if any: none when tools are absent or forbidden, or when the last turn is a
/// tool result (the model answers it in text). `Err` carries a named choice that is not offered.
pub(crate) fn select<'a>(
    tools: &[ToolSpec<'a>],
    choice: &ToolChoice,
    after_tool_result: bool,
) -> Result<Option<ToolSpec<'a>>, String> {
    if let ToolChoice::Named(name) = choice {
        if !tools.iter().any(|t| t.name == name) {
            return Err(name.clone());
        }
    }
    if tools.is_empty() || *choice == ToolChoice::None || after_tool_result {
        return Ok(None);
    }
    Ok(match choice {
        ToolChoice::Named(name) => tools.iter().find(|t| t.name == name).copied(),
        _ => tools.first().copied(),
    })
}

/// One tool call the sim makes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) name: String,
    /// Arguments as an object (Anthropic's `input`).
    pub(crate) input: Value,
    /// Arguments as a JSON string (OpenAI's `arguments`).
    pub(crate) arguments: String,
    /// `arguments` in the pieces a stream sends, at least two.
    pub(crate) fragments: Vec<String>,
    seed: u64,
}

impl ToolCall {
    /// The call the sim makes to `tool` for this model and prompt.
    pub(crate) fn new(tool: ToolSpec<'_>, model: &str, prompt: &str) -> ToolCall {
        // Arguments are an object even when the schema is empty or says otherwise.
        let input = match tool
            .schema
            .map(|s| schema::example(s, Fill::Required, Words::Fixed))
        {
            Some(Value::Object(object)) => Value::Object(object),
            _ => Value::Object(Map::new()),
        };
        let arguments = input.to_string();
        let fragments = fragments(&arguments);
        ToolCall {
            name: tool.name.to_owned(),
            input,
            arguments,
            fragments,
            seed: stable_hash(&[model, prompt, tool.name]),
        }
    }

    /// A deterministic id: `prefix` followed by `len` alphanumerics (which differ per prefix).
    pub(crate) fn id(&self, prefix: &str, len: usize) -> String {
        let seed = self.seed ^ stable_hash(&[prefix]);
        format!("{prefix}{}", id_suffix(seed, len))
    }

    /// Output tokens of the call: one per argument fragment.
    pub(crate) fn tokens(&self) -> u64 {
        u64::try_from(self.fragments.len()).unwrap_or(u64::MAX)
    }
}

/// Splits `s` into pieces of a few characters (at char boundaries), at least two when it has two
/// characters or more, as providers stream tool arguments.
fn fragments(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let size = if chars.len() <= FRAGMENT_CHARS {
        chars.len().div_ceil(2).max(1)
    } else {
        FRAGMENT_CHARS
    };
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_fill_required_properties_by_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
                "unit": {"enum": ["c", "f"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
                "maybe": {"type": ["null", "string"]},
                "optional": {"type": "string"}
            },
            "required": ["city", "days", "metric", "unit", "tags", "where", "maybe"]
        });
        let call = ToolCall::new(
            ToolSpec {
                name: "f",
                schema: Some(&schema),
            },
            "m",
            "p",
        );
        assert_eq!(
            call.input,
            json!({"city": "sim", "days": 1, "metric": true, "unit": "c", "tags": ["sim"],
                   "where": {"lat": 1}, "maybe": "sim"})
        );
        assert_eq!(call.fragments.concat(), call.arguments);
        assert!(call.fragments.len() >= 2);
    }

    #[test]
    fn empty_arguments_still_stream_in_two_pieces() {
        let call = ToolCall::new(
            ToolSpec {
                name: "f",
                schema: None,
            },
            "m",
            "p",
        );
        assert_eq!(call.fragments, vec!["{", "}"]);
        assert_eq!(call.id("call_", 24), call.id("call_", 24));
    }

    #[test]
    fn selection_rules() {
        let tools = [
            ToolSpec {
                name: "a",
                schema: None,
            },
            ToolSpec {
                name: "b",
                schema: None,
            },
        ];
        let pick = |c: ToolChoice, after| select(&tools, &c, after).map(|t| t.map(|t| t.name));
        assert_eq!(pick(ToolChoice::Auto, false), Ok(Some("a")));
        assert_eq!(pick(ToolChoice::Named("b".into()), false), Ok(Some("b")));
        assert_eq!(pick(ToolChoice::None, false), Ok(None));
        assert_eq!(pick(ToolChoice::Required, true), Ok(None));
        assert_eq!(pick(ToolChoice::Named("z".into()), false), Err("z".into()));
    }
}
