//! Usage read straight from an answer's bytes, without building a JSON tree: the gateway meters
//! every passthrough answer this way, and a tree of the whole answer costs more than the rest of
//! the request path.

use super::Usage;
use serde::de::{Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

/// Which kind of answer the bytes are, which decides where its usage sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// OpenAI Chat Completions (`usage.prompt_tokens`, ...).
    OpenAiChat,
    /// OpenAI Embeddings (`usage.prompt_tokens`).
    OpenAiEmbeddings,
    /// OpenAI Responses (`usage.input_tokens`, ...).
    OpenAiResponses,
    /// Anthropic Messages (`usage.input_tokens`, cache fields, `output_tokens`).
    Anthropic,
    /// Anthropic token count (`input_tokens` at the top).
    AnthropicCountTokens,
}

impl Usage {
    /// The usage of a whole answer body. `Ok(None)` when it reports none; `Err` when the body is
    /// not a JSON object. Numbers of the wrong kind count as zero, as in the tree-based parsers.
    pub fn from_answer(kind: AnswerKind, body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
        let top: Top = serde_json::from_slice(body)?;
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            // serde reads a struct from an array too; an answer must be an object.
            return Err(serde::de::Error::custom("answer is not a JSON object"));
        }
        if kind == AnswerKind::AnthropicCountTokens {
            return Ok(top.input_tokens.map(|n| Usage {
                input_tokens: n.0,
                ..Usage::default()
            }));
        }
        let Some(u) = top.usage else { return Ok(None) };
        let usage = match kind {
            AnswerKind::OpenAiChat => Usage {
                input_tokens: u.prompt_tokens.0,
                output_tokens: u.completion_tokens.0,
                cache_read_tokens: u
                    .prompt_tokens_details
                    .map(|d| d.cached_tokens.0)
                    .unwrap_or(u.prompt_cache_hit_tokens.0),
                cache_write_tokens: 0,
                reasoning_tokens: u
                    .completion_tokens_details
                    .map_or(0, |d| d.reasoning_tokens.0),
            },
            AnswerKind::OpenAiEmbeddings => Usage {
                input_tokens: u.prompt_tokens.0,
                ..Usage::default()
            },
            AnswerKind::OpenAiResponses => Usage {
                input_tokens: u.input_tokens.0,
                output_tokens: u.output_tokens.0,
                cache_read_tokens: u.input_tokens_details.map_or(0, |d| d.cached_tokens.0),
                cache_write_tokens: 0,
                reasoning_tokens: u.output_tokens_details.map_or(0, |d| d.reasoning_tokens.0),
            },
            AnswerKind::Anthropic | AnswerKind::AnthropicCountTokens => Usage {
                input_tokens: u
                    .input_tokens
                    .0
                    .saturating_add(u.cache_creation_input_tokens.0)
                    .saturating_add(u.cache_read_input_tokens.0),
                output_tokens: u.output_tokens.0,
                cache_read_tokens: u.cache_read_input_tokens.0,
                cache_write_tokens: u.cache_creation_input_tokens.0,
                reasoning_tokens: 0,
            },
        };
        Ok(Some(usage))
    }
}

#[derive(Deserialize)]
struct Top {
    #[serde(default, deserialize_with = "object_or_none")]
    usage: Option<Fields>,
    #[serde(default)]
    input_tokens: Option<Count>,
}

/// Every usage field of every protocol; absent ones are zero.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Fields {
    prompt_tokens: Count,
    completion_tokens: Count,
    prompt_cache_hit_tokens: Count,
    input_tokens: Count,
    output_tokens: Count,
    cache_creation_input_tokens: Count,
    cache_read_input_tokens: Count,
    #[serde(deserialize_with = "object_or_none")]
    prompt_tokens_details: Option<Details>,
    #[serde(deserialize_with = "object_or_none")]
    completion_tokens_details: Option<Details>,
    #[serde(deserialize_with = "object_or_none")]
    input_tokens_details: Option<Details>,
    #[serde(deserialize_with = "object_or_none")]
    output_tokens_details: Option<Details>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(default)]
struct Details {
    cached_tokens: Count,
    reasoning_tokens: Count,
}

/// A token count that reads any JSON value: whole and positive numbers as themselves, anything
/// else as zero.
#[derive(Default, Clone, Copy)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a token count")
    }
    fn visit_u64<E>(self, v: u64) -> Result<Count, E> {
        Ok(Count(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Count, E> {
        Ok(Count(u64::try_from(v).unwrap_or(0)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Count, E> {
        Ok(Count(if v.is_finite() && v > 0.0 {
            v as u64
        } else {
            0
        }))
    }
    fn visit_unit<E>(self) -> Result<Count, E> {
        Ok(Count(0))
    }
    fn visit_str<E>(self, _: &str) -> Result<Count, E> {
        Ok(Count(0))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
        Ok(Count(0))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Count(0))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Count(0))
    }
}

/// An object read as `T`; `null` or any non-object as `None` (lenient, like the tree parsers).
fn object_or_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let raw: &serde_json::value::RawValue = Deserialize::deserialize(d)?;
    // serde would also read a struct from an array; only objects count.
    if !raw.get().starts_with('{') {
        return Ok(None);
    }
    Ok(serde_json::from_str(raw.get()).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The byte parser must agree with the tree parsers on every shape.
    #[test]
    fn agrees_with_the_tree_parsers() {
        let chat = json!({"id": "x", "choices": [{"message": {"content": "usage"}}], "usage": {"prompt_tokens": 12,
            "completion_tokens": 5, "total_tokens": 17, "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}});
        let deepseek = json!({"usage": {"prompt_tokens": 9, "completion_tokens": 1, "prompt_cache_hit_tokens": 3}});
        let responses = json!({"object": "response", "usage": {"input_tokens": 7, "output_tokens": 3,
            "input_tokens_details": {"cached_tokens": 1}, "output_tokens_details": {"reasoning_tokens": 2}}});
        let anthropic = json!({"type": "message", "usage": {"input_tokens": 10, "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 20, "output_tokens": 8}});
        let embeddings = json!({"data": [], "usage": {"prompt_tokens": 6, "total_tokens": 6}});
        let bytes = |v: &Value| serde_json::to_vec(v).unwrap();
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiChat, &bytes(&chat)).unwrap(),
            Usage::from_openai_chat(&chat)
        );
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiChat, &bytes(&deepseek)).unwrap(),
            Usage::from_openai_chat(&deepseek)
        );
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiResponses, &bytes(&responses)).unwrap(),
            Usage::from_openai_responses(&responses)
        );
        assert_eq!(
            Usage::from_answer(AnswerKind::Anthropic, &bytes(&anthropic)).unwrap(),
            Usage::from_anthropic(&anthropic["usage"])
        );
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiEmbeddings, &bytes(&embeddings)).unwrap(),
            Usage::from_openai_embeddings(&embeddings)
        );
        let count =
            Usage::from_answer(AnswerKind::AnthropicCountTokens, br#"{"input_tokens": 42}"#)
                .unwrap();
        assert_eq!(count.map(|u| u.input_tokens), Some(42));
    }

    #[test]
    fn odd_values_count_as_zero_and_non_objects_are_errors() {
        let odd = br#"{"usage": {"prompt_tokens": "12", "completion_tokens": -3, "prompt_tokens_details": [1],
            "completion_tokens_details": null, "total_tokens": {"a": 1}}}"#;
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiChat, odd).unwrap(),
            Some(Usage::default())
        );
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiChat, br#"{"usage": null}"#).unwrap(),
            None
        );
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiChat, br#"{"usage": 3}"#).unwrap(),
            None
        );
        assert_eq!(
            Usage::from_answer(AnswerKind::OpenAiChat, br#"{}"#).unwrap(),
            None
        );
        assert!(Usage::from_answer(AnswerKind::OpenAiChat, b"[1]").is_err());
        assert!(Usage::from_answer(AnswerKind::OpenAiChat, b"<html>").is_err());
    }
}
