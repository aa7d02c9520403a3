//! OpenAI embeddings answers.

use base64::Engine;
use serde_json::Value;

/// Rewrites float embeddings as base64 little-endian f32, as OpenAI does when asked
/// (`encoding_format: "base64"`): some OpenAI-compatible servers ignore the field, and the Node
/// SDK asks for base64 by default. `None` when the body is not a list of float embeddings.
pub fn floats_to_base64(mut body: Value) -> Option<Value> {
    let data = body.get_mut("data")?.as_array_mut()?;
    for item in data {
        let floats = item.get("embedding")?.as_array()?;
        let mut bytes = Vec::with_capacity(floats.len() * 4);
        for f in floats {
            bytes.extend_from_slice(&(f.as_f64()? as f32).to_le_bytes());
        }
        item["embedding"] = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    Some(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_embeddings_become_little_endian_base64() {
        let v = floats_to_base64(json!({"data": [{"embedding": [1.0, -2.0]}]})).unwrap();
        let b = base64::engine::general_purpose::STANDARD
            .decode(v["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(b, [1.0f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat());
        assert!(floats_to_base64(json!({"data": [{"embedding": "already"}]})).is_none());
    }
}
