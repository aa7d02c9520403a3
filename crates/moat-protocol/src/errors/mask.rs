//! Masking of secrets an upstream may echo in an error body (its own `Authorization` header, a
//! key in a URL, another tenant's token), before the body reaches a client, a log or a record.
//!
//! A secret keeps its prefix and its last four characters (`sk-ant-****wxyz`), as providers do in
//! their own "incorrect API key" messages, so an operator can still tell which key was meant.
//! Masked: the secrets the caller names (the provider's configured key), the word after `Bearer`,
//! `sk-`/`sk_` keys, and other key-like tokens (20+ characters mixing upper case, lower case and
//! digits, or 32+ mixing letters and digits).

use serde_json::Value;
use std::borrow::Cow;

/// What stands for the hidden middle of a secret.
const HIDDEN: &str = "****";
/// Secrets shorter than this show only their prefix (no last four).
const SHOW_TAIL_FROM: usize = 16;
/// Configured secrets shorter than this are not searched for: local servers take placeholder
/// keys such as `EMPTY` or `x`, and masking every `x` would garble the message.
const MIN_KNOWN_LEN: usize = 8;
/// Known key prefixes kept in the clear, longest first.
const PREFIXES: [&str; 5] = ["sk-ant-", "sk-proj-", "sk-svcacct-", "sk-", "sk_"];

/// `text` with every secret masked; borrowed when there was nothing to mask. `known` holds
/// secrets to mask wherever they appear, whatever their shape (those shorter than 8 bytes are
/// placeholders, not secrets, and are ignored).
pub fn mask_secrets<'a>(text: &'a str, known: &[&str]) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for secret in known.iter().filter(|s| s.len() >= MIN_KNOWN_LEN) {
        if text.contains(secret) {
            text = Cow::Owned(text.replace(secret, &masked(secret)));
        }
    }
    match mask_tokens(&text) {
        Some(out) => Cow::Owned(out),
        None => text,
    }
}

/// An upstream error body with every string in it masked (object keys too), or `None` when it
/// holds nothing to mask (so the caller can keep the original bytes). A body that is not JSON is
/// masked as text.
///
/// The raw bytes are checked too: a JSON object with a duplicate key parses to its last value,
/// so a secret in an earlier duplicate is invisible in the parsed tree yet present in the bytes
/// (found by the `translate_response` fuzz target). Such a body is re-serialised from the tree.
pub fn mask_error_body(body: &[u8], known: &[&str]) -> Option<Vec<u8>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            let changed = mask_value(&mut value, known);
            let raw = String::from_utf8_lossy(body);
            let raw_has_secret = matches!(mask_secrets(&raw, known), Cow::Owned(_));
            (changed || raw_has_secret).then(|| {
                // Serialising a `Value` cannot fail; an empty body would only lose the message.
                serde_json::to_vec(&value).unwrap_or_default()
            })
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            match mask_secrets(&text, known) {
                Cow::Owned(masked) => Some(masked.into_bytes()),
                Cow::Borrowed(_) => None,
            }
        }
    }
}

/// Masks every string of `value` in place; `true` if anything changed.
pub fn mask_value(value: &mut Value, known: &[&str]) -> bool {
    match value {
        Value::String(s) => match mask_secrets(s, known) {
            Cow::Owned(masked) => {
                *s = masked;
                true
            }
            Cow::Borrowed(_) => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| mask_value(v, known) | changed),
        Value::Object(map) => {
            let needs_new_keys = map
                .keys()
                .any(|k| matches!(mask_secrets(k, known), Cow::Owned(_)));
            let mut changed = false;
            if needs_new_keys {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(mask_secrets(&k, known).into_owned(), v);
                }
                changed = true;
            }
            map.values_mut()
                .fold(changed, |changed, v| mask_value(v, known) | changed)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// `secret` as its prefix, `****` and (for long ones) its last four characters.
pub fn masked(secret: &str) -> String {
    let chars = secret.chars().count();
    let prefix = PREFIXES
        .iter()
        .find(|p| secret.starts_with(**p) && secret.len() > p.len())
        .map(|p| (*p).to_owned())
        .unwrap_or_else(|| {
            if chars >= SHOW_TAIL_FROM {
                secret.chars().take(4).collect()
            } else {
                String::new()
            }
        });
    let tail: String = if chars >= SHOW_TAIL_FROM {
        let skip = chars - 4;
        secret.chars().skip(skip).collect()
    } else {
        String::new()
    };
    format!("{prefix}{HIDDEN}{tail}")
}

/// Characters of a token: RFC 6750's b64token without `.` (so sentences and host names split).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '~' | '+' | '/' | '=')
}

/// Masks `Bearer` credentials and key-like tokens; `None` when there are none.
fn mask_tokens(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut copied = 0;
    let mut changed = false;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if !is_token_char(char::from(bytes[i])) || !bytes[i].is_ascii() {
            i += 1;
            continue;
        }
        // A run of token characters; after `Bearer ` it may also hold dots (a JWT).
        let bearer = after_bearer(&text[..i]);
        let end = text[i..]
            .char_indices()
            .find(|&(_, c)| !(is_token_char(c) || (bearer && c == '.')))
            .map_or(text.len(), |(n, _)| i + n);
        let run = &text[i..end];
        // Either side of an earlier mask: already masked.
        let masked_part = text[end..].starts_with(HIDDEN) || text[..i].ends_with(HIDDEN);
        if !masked_part && (bearer || is_key_like(run)) {
            out.push_str(&text[copied..i]);
            out.push_str(&masked(run));
            copied = end;
            changed = true;
        }
        i = end;
    }
    changed.then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

/// Whether `before` ends with the word `Bearer` and white space (any case).
fn after_bearer(before: &str) -> bool {
    let trimmed = before.trim_end();
    if trimmed.len() == before.len() {
        return false;
    }
    let n = trimmed.len();
    n >= 6
        && trimmed.is_char_boundary(n - 6)
        && trimmed[n - 6..].eq_ignore_ascii_case("bearer")
        && !trimmed[..n - 6]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// `sk-`/`sk_` keys of 8+ characters; 20+ characters mixing upper case, lower case and digits;
/// 32+ characters mixing letters and digits (hex keys, long ids).
fn is_key_like(run: &str) -> bool {
    let len = run.len();
    if (run.starts_with("sk-") || run.starts_with("sk_")) && len >= 8 {
        return true;
    }
    if len < 20 {
        return false;
    }
    let upper = run.bytes().any(|b| b.is_ascii_uppercase());
    let lower = run.bytes().any(|b| b.is_ascii_lowercase());
    let digit = run.bytes().any(|b| b.is_ascii_digit());
    (upper && lower && digit) || (len >= 32 && (upper || lower) && digit)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_keep_their_prefix_and_last_four() {
        let text = "Incorrect API key provided: sk-proj-abcdefghijklmnop1234WXYZ.";
        assert_eq!(
            mask_secrets(text, &[]),
            "Incorrect API key provided: sk-proj-****WXYZ."
        );
        assert_eq!(
            mask_secrets("key sk-ant-api03-Zz9_Yy8-Xx7Ww6Vv5Uu4 bad", &[]),
            "key sk-ant-****5Uu4 bad"
        );
    }

    #[test]
    fn bearer_tokens_of_any_shape_are_masked() {
        let text = "echo: Authorization: Bearer abc.def.ghi-jklmnopqrstu, done";
        let out = mask_secrets(text, &[]);
        assert_eq!(out, "echo: Authorization: Bearer abc.****rstu, done");
        assert_eq!(mask_secrets("bearer short", &[]), "bearer ****");
        // Only the word itself, not a longer word ending in it.
        assert_eq!(mask_secrets("unbearer short", &[]), "unbearer short");
    }

    #[test]
    fn configured_keys_are_masked_whatever_their_shape() {
        let out = mask_secrets("your key local-key-1 is wrong", &["local-key-1", ""]);
        assert_eq!(out, "your key **** is wrong");
        assert!(!out.contains("local-key-1"));
        // Placeholder keys of local servers are not secrets.
        let out = mask_secrets("an EMPTY value for x", &["EMPTY", "x"]);
        assert_eq!(out, "an EMPTY value for x");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in [
            "model claude-3-5-sonnet-20241022 not found",
            "maximum context length is 128000 tokens",
            "see https://platform.openai.com/docs/guides/error-codes",
            "Rate limit reached for gpt-4o-mini in organization org-abc on tokens",
        ] {
            assert!(
                matches!(mask_secrets(text, &[]), Cow::Borrowed(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn long_random_tokens_are_masked() {
        let aws = "secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here";
        assert_eq!(mask_secrets(aws, &[]), "secret wJal****EKEY here");
        let hex = "token 0123456789abcdef0123456789abcdef";
        assert_eq!(mask_secrets(hex, &[]), "token 0123****cdef");
        let google = "https://x.test/v1?key=AIzaSyD-1234567890abcdefGHIJKLmnop";
        assert_eq!(mask_secrets(google, &[]), "https://x.test/v1?key=****mnop");
    }

    #[test]
    fn json_bodies_are_masked_in_every_string_and_left_alone_otherwise() {
        let body = br#"{"error":{"message":"bad key sk-abcdefghijklmnopqrstuvwx","headers":{"authorization":"Bearer sk-abcdefghijklmnopqrstuvwx"}}}"#;
        let out = mask_error_body(body, &[]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("abcdefghijklmnop"), "{text}");
        assert!(text.contains("sk-****uvwx"), "{text}");
        assert_eq!(
            mask_error_body(br#"{"error":{"message":"busy"}}"#, &[]),
            None
        );
        let plain = mask_error_body(b"<html>Bearer topsecret</html>", &[]).unwrap();
        assert_eq!(plain, b"<html>Bearer ****</html>");
    }

    #[test]
    fn a_secret_hidden_in_a_duplicate_key_does_not_survive() {
        // Minimised from a `translate_response` fuzz crash: the parsed tree keeps the last
        // `type`, the bytes still hold the first.
        let key = "sk-fuzz-0123456789abcdefKEY";
        let body = format!(r#"{{"error":{{"message":"m","type":"{key}","type":"x"}}}}"#);
        let out = mask_error_body(body.as_bytes(), &[key]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains(key), "{text}");
        assert_eq!(text, r#"{"error":{"message":"m","type":"x"}}"#);
        // Without the configured key, it is still a `sk-` key.
        let out = mask_error_body(body.as_bytes(), &[]).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains(key));
    }

    #[test]
    fn masking_is_idempotent() {
        let text = "Bearer sk-ant-abcdefghijklmnopqrstuvwxyz and sk-abcdefghijklmnopq";
        let once = mask_secrets(text, &[]).into_owned();
        assert_eq!(mask_secrets(&once, &[]), once);
    }
}
