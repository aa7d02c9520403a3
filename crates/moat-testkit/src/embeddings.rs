//! OpenAI embeddings (`POST /v1/embeddings`): deterministic unit vectors, float or base64.

use base64::Engine as _;
use moat_core::Protocol;
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::reply::Reply;
use crate::request::Fields;
use crate::text::{count_words, stable_hash, Rng};

/// Dimensions when the request does not ask for a number.
const DEFAULT_DIMENSIONS: u64 = 8;

/// Largest `dimensions` the sim serves (OpenAI's largest model has 3072).
const MAX_DIMENSIONS: u64 = 4096;

/// Largest number of inputs in one request, as OpenAI allows.
const MAX_INPUTS: usize = 2048;

/// One input to embed: text, or a list of token ids.
enum Input<'a> {
    Text(&'a str),
    Tokens(&'a [Value]),
}

impl Input<'_> {
    /// The text the vector is derived from.
    fn key(&self) -> String {
        match self {
            Input::Text(text) => (*text).to_owned(),
            Input::Tokens(ids) => {
                let ids: Vec<String> = ids.iter().map(Value::to_string).collect();
                format!("tokens:{}", ids.join(","))
            }
        }
    }

    fn tokens(&self) -> u64 {
        match self {
            Input::Text(text) => count_words(text),
            Input::Tokens(ids) => u64::try_from(ids.len()).unwrap_or(u64::MAX),
        }
    }
}

/// Serves one embeddings request.
pub(crate) fn create(body: &Map<String, Value>) -> Result<Reply, ApiError> {
    let fields = Fields::new(body, Protocol::OpenAi);
    let model = fields.required_str("model")?;
    let inputs = inputs(&fields)?;
    let dimensions = fields.positive("dimensions")?.unwrap_or(DEFAULT_DIMENSIONS);
    if dimensions > MAX_DIMENSIONS {
        return Err(fields.invalid("dimensions", "an integer of at most 4096"));
    }
    let base64 = match fields.opt_str("encoding_format")? {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => return Err(fields.invalid("encoding_format", "'float' or 'base64'")),
    };
    let data: Vec<Value> = inputs
        .iter()
        .zip(0u64..)
        .map(|(input, index)| {
            let vector = vector(model, &input.key(), dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(Input::tokens).sum();
    Ok(Reply::Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

/// `input`: a string, an array of strings, an array of token ids, or an array of such arrays.
fn inputs<'a>(fields: &Fields<'a>) -> Result<Vec<Input<'a>>, ApiError> {
    let invalid = || {
        ApiError::invalid_param(
            "'$.input' is invalid. Please check the API reference: \
             https://platform.openai.com/docs/api-reference.",
            "input",
        )
    };
    let inputs = match fields.get("input") {
        None => return Err(fields.missing("input")),
        Some(Value::String(text)) => vec![Input::Text(text)],
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_number) => {
            vec![Input::Tokens(items)]
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Some(Input::Text(text)),
                Value::Array(ids) => Some(Input::Tokens(ids)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(invalid)?,
        Some(_) => return Err(invalid()),
    };
    let well_formed = inputs.iter().all(|input| match input {
        Input::Text(text) => !text.is_empty(),
        Input::Tokens(ids) => !ids.is_empty() && ids.iter().all(Value::is_u64),
    });
    if inputs.is_empty() || inputs.len() > MAX_INPUTS || !well_formed {
        return Err(invalid());
    }
    Ok(inputs)
}

/// A unit vector derived from the model and the input.
fn vector(model: &str, key: &str, dimensions: u64) -> Vec<f32> {
    let mut rng = Rng::new(stable_hash(&["embedding", model, key]));
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| {
            // 53 random bits mapped onto [-1, 1).
            let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            unit * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    let norm = if norm > 0.0 { norm } else { 1.0 };
    raw.iter().map(|x| (x / norm) as f32).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let v = vector("m", "hello", 16);
        assert_eq!(v.len(), 16);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(v, vector("m", "hello", 16));
        assert_ne!(v, vector("m", "world", 16));
    }
}
