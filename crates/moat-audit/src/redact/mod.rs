//! Redaction of personal data and secrets from text and JSON bodies, for readers who may see
//! bodies but not what is in them (the `auditor` role).
//!
//! Kinds, in the order they win when two overlap: `secret` (provider API keys and tokens, see
//! `patterns.rs`), `email`, `card` (13 to 19 digits, optionally grouped by spaces or dashes,
//! Luhn-valid only), `ip` (IPv4 dotted quads; IPv6 addresses with at least one digit, standing
//! apart from words), `phone` (`+` international numbers of 8 to 15 digits; North American
//! `(415) 555-2671` / `1-800-555-0199`; national numbers with a trunk `0` and at least one
//! separator, 9 to 12 digits, such as `020 7946 0958` or `06 12 34 56 78`).
//!
//! What is deliberately left alone, and the false positives to expect:
//! - Years, prices, dates (`2024-03-15`, `15.03.2024`), times and order numbers are kept: too few
//!   digits for a phone, no trunk `0` or `+`, or not Luhn-valid.
//! - Every dotted quad of numbers 0..=255 is taken for an IPv4 address, so a four-part version
//!   number (`version 1.2.3.4`) is redacted; `v1.2.3.4` and five-part versions are not.
//! - A digit run that passes Luhn with 13 to 19 digits is redacted as a card even when it is some
//!   other identifier (about one such identifier in ten passes Luhn by chance).
//! - Ten-digit numbers written `NXX-NXX-XXXX` are taken for phone numbers.
//! - Not found: bare digit runs without `+` and seven-digit local numbers (`555-0147`) as phones;
//!   a card number run into further digits; secrets with no recognisable prefix or label, keys
//!   and tokens made only of letters, and passwords.

mod patterns;
mod sse;
mod text;

use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde::Serialize;
use serde_json::Value;

use patterns::{Pattern, PATTERNS};
pub use sse::redact_sse;
pub use text::redact_json_text;

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An e-mail address.
    Email,
    /// A telephone number.
    Phone,
    /// A payment card number.
    Card,
    /// An API key, token, or private key.
    Secret,
    /// An IPv4 or IPv6 address.
    Ip,
}

/// One thing redacted: its kind and its byte range in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What it is.
    pub kind: Kind,
    /// Byte offset of its first byte in the input.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

/// `text` with every finding replaced by `[REDACTED:<kind>]`, and the findings (byte ranges in
/// `text`, in order, never overlapping).
pub fn redact(text: &str) -> (String, Vec<Finding>) {
    let findings = find(text);
    if findings.is_empty() {
        return (text.to_string(), findings);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in &findings {
        out.push_str(&text[at..f.start]);
        out.push_str("[REDACTED:");
        out.push_str(f.kind.as_str());
        out.push(']');
        at = f.end;
    }
    out.push_str(&text[at..]);
    (out, findings)
}

/// The findings in `text`, in order, never overlapping.
pub fn find(text: &str) -> Vec<Finding> {
    let compiled = &*COMPILED;
    let mut findings: Vec<Finding> = Vec::new();
    // One pass tells which patterns can match at all; most texts then need no further work.
    for index in compiled.set.matches(text).iter() {
        let (pattern, regex) = (&PATTERNS[index], &compiled.regexes[index]);
        for caps in regex.captures_iter(text) {
            let Some(span) = caps.get(1).or_else(|| caps.get(0)) else {
                continue;
            };
            let Some(range) = (pattern.accept)(text, span.range()) else {
                continue;
            };
            if !findings.iter().any(|f| overlaps(f, &range)) {
                findings.push(Finding {
                    kind: pattern.kind,
                    start: range.start,
                    end: range.end,
                });
            }
        }
    }
    findings.sort_by_key(|f| f.start);
    findings
}

/// `value` with every string, object key and number in it redacted. A number with a finding in
/// its digits (a card number written as a JSON number) becomes the marker as a string; a
/// redacted key that collides with another key of its object gets a ` (2)`, ` (3)`... suffix, so
/// no field is lost.
pub fn redact_json(mut value: Value) -> Value {
    redact_in_place(&mut value);
    value
}

impl Kind {
    /// The kind's name, as it appears in `[REDACTED:<kind>]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Secret => "secret",
            Kind::Ip => "ip",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

struct Compiled {
    set: RegexSet,
    regexes: Vec<Regex>,
}

#[expect(
    clippy::expect_used,
    reason = "the patterns are constants; every test compiles them"
)]
static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let sources = PATTERNS.iter().map(|p: &Pattern| p.regex);
    Compiled {
        set: RegexSet::new(sources.clone()).expect("redaction patterns compile"),
        regexes: sources
            .map(|s| Regex::new(s).expect("redaction patterns compile"))
            .collect(),
    }
});

fn overlaps(f: &Finding, range: &Range<usize>) -> bool {
    f.start < range.end && range.start < f.end
}

fn redact_in_place(value: &mut Value) {
    match value {
        Value::String(s) => {
            let (redacted, findings) = redact(s);
            if !findings.is_empty() {
                *s = redacted;
            }
        }
        Value::Number(n) => {
            let (redacted, findings) = redact(&n.to_string());
            if !findings.is_empty() {
                *value = Value::String(redacted);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        Value::Object(map) => {
            for (key, mut item) in std::mem::take(map) {
                redact_in_place(&mut item);
                let (redacted, findings) = redact(&key);
                let key = if findings.is_empty() { key } else { redacted };
                let mut unique = key.clone();
                let mut n = 1;
                while map.contains_key(&unique) {
                    n += 1;
                    unique = format!("{key} ({n})");
                }
                map.insert(unique, item);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_reports_byte_ranges() {
        let (out, findings) = redact("mail bob@example.com or call +44 20 7946 0958.");
        assert_eq!(out, "mail [REDACTED:email] or call [REDACTED:phone].");
        assert_eq!(
            findings,
            vec![
                Finding {
                    kind: Kind::Email,
                    start: 5,
                    end: 20
                },
                Finding {
                    kind: Kind::Phone,
                    start: 29,
                    end: 45
                },
            ]
        );
    }

    #[test]
    fn clean_text_is_untouched() {
        let text = "Ship 3 units by 2024-03-15 for $1,299.99, order #58213, v1.2.3.";
        assert_eq!(redact(text), (text.to_string(), vec![]));
    }

    #[test]
    fn json_strings_keys_and_numbers() {
        let v = serde_json::json!({
            "bob@example.com": ["write to bob@example.com", 4111111111111111u64, null, 2024],
            "card_number": 4111111111111111u64,
            "n": {"ip": "10.0.0.1", "count": 12, "ratio": 0.5}
        });
        assert_eq!(
            redact_json(v),
            serde_json::json!({
                "[REDACTED:email]": ["write to [REDACTED:email]", "[REDACTED:card]", null, 2024],
                "card_number": "[REDACTED:card]",
                "n": {"ip": "[REDACTED:ip]", "count": 12, "ratio": 0.5}
            })
        );
    }

    #[test]
    fn redacted_keys_that_collide_keep_every_field() {
        let v = serde_json::json!({
            "a@example.com": 1,
            "b@example.com": 2,
            "[REDACTED:email]": 3
        });
        let out = redact_json(v);
        let keys: Vec<&str> = out
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "[REDACTED:email]",
                "[REDACTED:email] (2)",
                "[REDACTED:email] (3)"
            ]
        );
        assert_eq!(out["[REDACTED:email] (3)"], 3);
    }
}
