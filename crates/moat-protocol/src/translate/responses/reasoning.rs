//! The `encrypted_content` of the reasoning items moat answers with: an Anthropic `thinking`
//! block (text and signature) or `redacted_thinking` block packed into one opaque string, so a
//! client that sends the item back (as Codex-style agents do with `store: false`) gives Anthropic
//! the block it needs to continue a tool loop.
//!
//! The token is `moat.v1.` and the URL-safe base64 of the block's JSON. It is not encrypted: the
//! thinking text is in the answer anyway, and Anthropic checks the signature, so a token a client
//! altered is refused upstream rather than trusted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::translate::TranslateError;

/// What every token starts with; `.` never occurs in URL-safe base64 nor, in practice, at the
/// start of OpenAI's own encrypted content, so a foreign token is recognised as such.
const PREFIX: &str = "moat.v1.";

/// The token for an Anthropic `thinking` (with a signature) or `redacted_thinking` block;
/// `None` for anything else, which could not be restored.
pub(super) fn seal(block: &Value) -> Option<String> {
    let block = restorable(block)?;
    Some(format!(
        "{PREFIX}{}",
        URL_SAFE_NO_PAD.encode(block.to_string())
    ))
}

/// The block a token at `path` holds: `Ok(None)` for a token moat did not make (OpenAI's own,
/// from an earlier model), which has no Anthropic meaning; an error for a damaged moat token.
pub(super) fn open(token: &str, path: &str) -> Result<Option<Value>, TranslateError> {
    let Some(encoded) = token.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .as_ref()
        .and_then(restorable)
        .map(Some)
        .ok_or_else(|| {
            TranslateError::invalid(
                path,
                format!(
                    "{path} is a damaged moat reasoning token: send it back as it was received"
                ),
            )
        })
}

/// Only the fields Anthropic reads from a thinking block, each checked to be a string.
fn restorable(block: &Value) -> Option<Value> {
    let text = |key: &str| block.get(key).and_then(Value::as_str);
    match text("type")? {
        "thinking" => Some(json!({
            "type": "thinking",
            "thinking": text("thinking")?,
            "signature": text("signature").filter(|s| !s.is_empty())?,
        })),
        "redacted_thinking" => Some(json!({"type": "redacted_thinking", "data": text("data")?})),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn thinking_and_redacted_blocks_round_trip() {
        for block in [
            json!({"type": "thinking", "thinking": "Let me see… 2+2", "signature": "EqQB+/="}),
            json!({"type": "redacted_thinking", "data": "EmwKAhgB"}),
        ] {
            let token = seal(&block).unwrap();
            assert!(token.starts_with(PREFIX));
            assert_eq!(open(&token, "p").unwrap(), Some(block));
        }
    }

    #[test]
    fn unsigned_or_other_blocks_get_no_token() {
        assert_eq!(seal(&json!({"type": "thinking", "thinking": "x"})), None);
        assert_eq!(
            seal(&json!({"type": "thinking", "thinking": "x", "signature": ""})),
            None
        );
        assert_eq!(seal(&json!({"type": "text", "text": "x"})), None);
    }

    #[test]
    fn foreign_tokens_are_not_ours_and_damaged_ones_are_errors() {
        assert_eq!(open("gAAAAABpPDIUph8czEXz", "p").unwrap(), None);
        for damaged in ["moat.v1.", "moat.v1.!!!", "moat.v1.e30", "moat.v1.W10"] {
            let error = open(damaged, "input[0].encrypted_content").unwrap_err();
            assert_eq!(error.param(), Some("input[0].encrypted_content"));
        }
    }
}
