//! A request or response body as the log keeps it: in full, as a digest, or not at all.

use std::fmt;

use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// A body, by the workflow's policy. Serialized as exactly one of `{"full": <JSON>}`,
/// `{"keyed_sha256": "<hex>"}`, `{"sha256": "<hex>"}` (records written before digests were
/// keyed) or `{"omitted": true}`.
///
/// A full body is kept as raw JSON text ([`RawValue`]), never as a parsed tree: its bytes are the
/// ones the client or provider sent (whitespace outside strings removed, so an export stays one
/// line), key order, number spelling and string escapes included. That is what makes the record's
/// hash reproducible after any store round trip that keeps the record's text: re-parsing into a
/// `serde_json::Value` would rewrite `\u00e9` escapes and some floats and break the chain.
#[derive(Clone)]
pub enum Body {
    /// The body as received. A body that is not JSON (or not UTF-8) is kept as a JSON string of
    /// its text (invalid UTF-8 replaced).
    Full(Box<RawValue>),
    /// Lower-case hex `HMAC-SHA256(k, SHA-256(body))`, `k` derived from the store's audit key
    /// ([`crate::AuditKeys::body_digest`]): a holder of the key and the body can confirm it; an
    /// auditor guessing a prompt cannot.
    Keyed(String),
    /// Lower-case hex SHA-256 of the body's bytes as received (records written before digests
    /// were keyed: anyone can confirm a guess against it).
    Sha256(String),
    /// Not kept.
    Omitted,
}

impl Body {
    /// The body in full, from its bytes as received.
    pub fn full(bytes: &[u8]) -> Body {
        let json = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| RawValue::from_string(minify(text)).ok());
        let raw = json.unwrap_or_else(|| {
            // A string is always valid JSON, so this only falls back for bodies that are not JSON.
            let text = String::from_utf8_lossy(bytes);
            let quoted = serde_json::to_string(&text).unwrap_or_else(|_| String::from("\"\""));
            RawValue::from_string(quoted).unwrap_or_else(|_| empty_string())
        });
        Body::Full(raw)
    }

    /// The unkeyed SHA-256 of the body's bytes, as records written before keyed digests hold;
    /// new records use [`crate::AuditKeys::body_digest`].
    pub fn digest(bytes: &[u8]) -> Body {
        Body::Sha256(crate::hex::encode(&Sha256::digest(bytes)))
    }

    /// The raw JSON of a full body.
    pub fn as_full(&self) -> Option<&RawValue> {
        match self {
            Body::Full(raw) => Some(raw),
            _ => None,
        }
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        match (self, other) {
            (Body::Full(a), Body::Full(b)) => a.get() == b.get(),
            (Body::Keyed(a), Body::Keyed(b)) | (Body::Sha256(a), Body::Sha256(b)) => a == b,
            (Body::Omitted, Body::Omitted) => true,
            _ => false,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Full(raw) => f.debug_tuple("Full").field(&raw.get()).finish(),
            Body::Keyed(hex) => f.debug_tuple("Keyed").field(hex).finish(),
            Body::Sha256(hex) => f.debug_tuple("Sha256").field(hex).finish(),
            Body::Omitted => f.write_str("Omitted"),
        }
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Body::Full(raw) => map.serialize_entry("full", raw)?,
            Body::Keyed(hex) => map.serialize_entry("keyed_sha256", hex)?,
            Body::Sha256(hex) => map.serialize_entry("sha256", hex)?,
            Body::Omitted => map.serialize_entry("omitted", &true)?,
        }
        map.end()
    }
}

/// The wire form, read without buffering so the raw body survives deserialization.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Repr {
    Full(Box<RawValue>),
    KeyedSha256(String),
    Sha256(String),
    Omitted(bool),
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Body, D::Error> {
        Ok(match Repr::deserialize(deserializer)? {
            Repr::Full(raw) => Body::Full(raw),
            Repr::KeyedSha256(hex) => Body::Keyed(hex),
            Repr::Sha256(hex) => Body::Sha256(hex),
            Repr::Omitted(true) => Body::Omitted,
            Repr::Omitted(false) => {
                return Err(serde::de::Error::custom("`omitted` must be true"));
            }
        })
    }
}

/// Removes whitespace outside strings, byte for byte otherwise, so a body never spans lines.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

fn empty_string() -> Box<RawValue> {
    // `""` is valid JSON; the fallback exists only to avoid a panic path.
    RawValue::from_string(String::from("\"\"")).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn full_keeps_bytes_but_not_layout() {
        let body = Body::full(b"{ \"b\": 1.0e2,\n  \"a\": \"caf\\u00e9 \\\" x\" }");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"full":{"b":1.0e2,"a":"caf\u00e9 \" x"}}"#
        );
        let back: Body = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn non_json_is_kept_as_text() {
        let body = Body::full(b"not json\n\xff");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            "{\"full\":\"not json\\n\u{fffd}\"}"
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(
            serde_json::to_string(&Body::Omitted).unwrap(),
            r#"{"omitted":true}"#
        );
        let d = Body::digest(b"abc");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#
        );
        let keyed = crate::AuditKeys::from_seed([3; 32]).body_digest(b"abc");
        let text = serde_json::to_string(&keyed).unwrap();
        assert!(text.starts_with(r#"{"keyed_sha256":""#), "{text}");
        assert_eq!(serde_json::from_str::<Body>(&text).unwrap(), keyed);
        assert!(serde_json::from_str::<Body>(r#"{"omitted":false}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#"{"full":1,"sha256":"x"}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#""omitted""#).is_err());
    }
}
