//! Structured answers: JSON for the requested format, streamed in token-sized pieces, or a refusal.

use serde_json::{json, Value};

use crate::format::Format;
use crate::schema::{self, Fill, Words};
use crate::text::{self, stable_hash, Generation};

/// The marker in the last user text that makes a structured request refused.
pub(crate) const REFUSE_MARKER: &str = "[sim:refuse]";

/// What the sim says when it refuses.
pub(crate) const REFUSAL: &str = "I'm sorry, I can't help with that.";

/// Whether a request in `format` with this last user text gets a refusal.
pub(crate) fn refuses(format: &Format<'_>, prompt: &str) -> bool {
    format.is_structured() && prompt.contains(REFUSE_MARKER)
}

/// The refusal, one piece per word, at most `max` of them.
pub(crate) fn refusal(max: Option<u64>) -> Generation {
    let words: Vec<&str> = REFUSAL.split_whitespace().collect();
    Generation::words(&words, max)
}

/// The JSON answer for a structured `format` (text for [`Format::Text`]), at most `max` pieces.
/// `json_object` gets `{"reply": TEXT}` with the text reply; a schema gets an example of it whose
/// strings are words drawn from the model, prompt and variant.
pub(crate) fn answer(
    format: &Format<'_>,
    model: &str,
    prompt: &str,
    variant: u64,
    max: Option<u64>,
) -> Generation {
    let value = match format {
        Format::Text => return text::reply(model, prompt, variant, max),
        Format::JsonObject => json!({"reply": text::reply(model, prompt, variant, None).text()}),
        Format::JsonSchema(schema) => {
            let seed = stable_hash(&[model, prompt, "json"]) ^ variant.wrapping_mul(0x9e37_79b9);
            schema::example(schema, Fill::All, Words::Seeded(seed))
        }
    };
    Generation::new(json_pieces(&value), max)
}

/// Compact JSON split the way a tokenizer might: runs of word characters (a space joins the word
/// after it) and runs of punctuation, so `{"a":"b c"}` streams as `{"`, `a`, `":"`, `b`, ` c`, `"}`.
fn json_pieces(value: &Value) -> Vec<String> {
    let text = value.to_string();
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        let word = c.is_alphanumeric() || c == '_';
        let boundary = !current.is_empty() && (c == ' ' || (word != in_word && current != " "));
        if boundary {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(c);
        in_word = word || c == ' ';
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn json_streams_in_token_sized_pieces() {
        let pieces = json_pieces(&json!({"a": "b c", "n": [1, 2.5]}));
        assert_eq!(
            pieces,
            vec![
                "{\"", "a", "\":\"", "b", " c", "\",\"", "n", "\":[", "1", ",", "2", ".", "5", "]}"
            ]
        );
    }

    #[test]
    fn answers_follow_the_format() {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"},
                            "temp": {"type": "number"}}, "required": ["city", "temp"]});
        let g = answer(&Format::JsonSchema(&schema), "m", "p", 0, None);
        let value: Value = serde_json::from_str(&g.text()).unwrap();
        assert!(
            value["city"].is_string() && value["temp"].is_number(),
            "{value}"
        );
        assert_eq!(g.deltas().concat(), g.text());
        assert_eq!(g, answer(&Format::JsonSchema(&schema), "m", "p", 0, None));

        let g = answer(&Format::JsonObject, "m", "p", 0, None);
        let value: Value = serde_json::from_str(&g.text()).unwrap();
        assert!(value["reply"]
            .as_str()
            .unwrap()
            .starts_with("Simulated reply from m:"));

        let cut = answer(&Format::JsonObject, "m", "p", 0, Some(3));
        assert!(cut.truncated && cut.tokens() == 3);
        assert!(serde_json::from_str::<Value>(&cut.text()).is_err());

        assert_eq!(
            answer(&Format::Text, "m", "p", 0, None),
            text::reply("m", "p", 0, None)
        );
    }

    #[test]
    fn only_structured_requests_are_refused() {
        let prompt = "please [sim:refuse] now";
        assert!(refuses(&Format::JsonObject, prompt));
        assert!(!refuses(&Format::Text, prompt));
        assert!(!refuses(&Format::JsonObject, "please"));
        assert_eq!(refusal(None).text(), REFUSAL);
        assert_eq!(refusal(Some(2)).text(), "I'm sorry,");
    }
}
