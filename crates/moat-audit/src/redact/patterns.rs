//! The redaction patterns, in priority order, each with the check that confirms a match.
//!
//! Token formats, from their issuers:
//! - OpenAI: `sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-` then base64url characters
//!   (<https://platform.openai.com/docs/api-reference/authentication>, project keys in
//!   <https://help.openai.com/en/articles/9186755-managing-your-work-in-the-api-platform-with-projects>).
//! - Anthropic: `sk-ant-api03-...` and admin `sk-ant-admin01-...`
//!   (<https://docs.anthropic.com/en/api/overview>, <https://docs.anthropic.com/en/api/administration-api>).
//! - AWS: access key ids `AKIA` (long-term) / `ASIA` (temporary) plus 16 upper-case
//!   alphanumerics; secret access keys are 40 base64 characters, found by their label
//!   (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids>,
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html>).
//! - GitHub: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` plus 36 alphanumerics, fine-grained
//!   `github_pat_` (<https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-authentication-to-github#githubs-token-formats>,
//!   <https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/>).
//! - Slack: `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxe-`, `xoxs-`, `xoxo-` and app-level `xapp-`
//!   (<https://api.slack.com/authentication/token-types>).
//! - Google API keys: `AIza` plus 35 characters (<https://cloud.google.com/docs/authentication/api-keys>;
//!   the length as listed in <https://docs.github.com/en/code-security/secret-scanning/introduction/supported-secret-scanning-patterns>).
//! - Stripe secret and restricted keys: `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`
//!   (<https://docs.stripe.com/keys>).
//! - JWTs: three base64url parts, the first two JSON objects, so both start `eyJ`
//!   (RFC 7519 §3, RFC 7515 §7.1).
//! - `Bearer <token>`: the `b64token` of RFC 6750 §2.1.
//! - moat's own virtual keys: `moat_<12 lower-case alphanumerics>_<43 base62>`
//!   (`crates/moat-policy/src/keys.rs`).
//! - PEM private keys: RFC 7468 §10 and §11.
//!
//! Phone numbers: at most 15 digits (ITU-T E.164). Cards: the Luhn check (ISO/IEC 7812-1).

use std::net::Ipv6Addr;
use std::ops::Range;

use super::Kind;

/// A pattern: the regex, and the check that turns its match (group 1 if it has one, else the
/// whole match) into the range to redact, or rejects it.
pub(super) struct Pattern {
    pub(super) kind: Kind,
    pub(super) regex: &'static str,
    pub(super) accept: fn(&str, Range<usize>) -> Option<Range<usize>>,
}

/// Earlier patterns win where two overlap.
pub(super) static PATTERNS: &[Pattern] = &[
    secret(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        any,
    ),
    // OpenAI and Anthropic; `random` keeps `sk-learn-style-words` out.
    secret(r"\bsk-[A-Za-z0-9_-]{20,}", random),
    secret(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", any),
    secret(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", any),
    secret(
        r#"(?i)\baws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})"#,
        any,
    ),
    secret(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", any),
    secret(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b", any),
    secret(r"\bxox[abeoprs]-[A-Za-z0-9-]{10,}", any),
    secret(r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}", any),
    secret(r"\bAIza[0-9A-Za-z_-]{35}", any),
    secret(
        r"\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
        any,
    ),
    secret(r"\bmoat_[a-z0-9]{12}_[A-Za-z0-9]{43}\b", any),
    secret(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)", random),
    secret(
        r#"(?i)\b(?:api[_-]?key|access[_-]?token|auth[_-]?token|secret[_-]?key|client[_-]?secret)["']?\s*[:=]\s*["']?([^\s"',;]{16,})"#,
        random,
    ),
    Pattern {
        kind: Kind::Email,
        regex: r"\b[A-Za-z0-9._%+'-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b",
        accept: any,
    },
    Pattern {
        kind: Kind::Card,
        regex: r"\b[0-9](?:[ -]?[0-9]){12,18}\b",
        accept: card,
    },
    Pattern {
        kind: Kind::Ip,
        regex: r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b",
        accept: ipv4,
    },
    Pattern {
        kind: Kind::Ip,
        regex: r"[0-9A-Fa-f]*:[0-9A-Fa-f:.]*",
        accept: ipv6,
    },
    // International: `+`, a country code, then groups.
    Pattern {
        kind: Kind::Phone,
        regex: r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,5}\)?){1,6}",
        accept: |text, span| phone(text, span, 8..=15),
    },
    // North American, optionally after the `1` trunk: area code and exchange start 2-9.
    Pattern {
        kind: Kind::Phone,
        regex: r"(?:\b1[ .-])?(?:\([2-9][0-9]{2}\)[ .-]?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b",
        accept: |text, span| phone(text, span, 10..=11),
    },
    // National with a trunk 0 and at least one separator.
    Pattern {
        kind: Kind::Phone,
        regex: r"\b0[1-9][0-9]{0,4}(?:[ .-][0-9]{2,8}){1,4}\b",
        accept: |text, span| phone(text, span, 9..=12),
    },
];

const fn secret(
    regex: &'static str,
    accept: fn(&str, Range<usize>) -> Option<Range<usize>>,
) -> Pattern {
    Pattern {
        kind: Kind::Secret,
        regex,
        accept,
    }
}

fn any(_: &str, span: Range<usize>) -> Option<Range<usize>> {
    Some(span)
}

/// Generated tokens mix letters and digits; words and placeholders rarely do.
fn random(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let s = &text[span.clone()];
    let digits = s.bytes().any(|b| b.is_ascii_digit());
    let letters = s.bytes().any(|b| b.is_ascii_alphabetic());
    (digits && letters).then_some(span)
}

fn card(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let digits: Vec<u32> = text[span.clone()]
        .chars()
        .filter_map(|c| c.to_digit(10))
        .collect();
    ((13..=19).contains(&digits.len()) && luhn(&digits)).then_some(span)
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum % 10 == 0
}

/// A dotted quad not part of a longer dotted number (`1.2.3.4.5`).
fn ipv4(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let before = &text.as_bytes()[..span.start];
    let after = &text.as_bytes()[span.end..];
    let longer_before =
        before.ends_with(b".") && before.len() >= 2 && before[before.len() - 2].is_ascii_digit();
    let longer_after = after.first() == Some(&b'.') && after.get(1).is_some_and(u8::is_ascii_digit);
    (!longer_before && !longer_after).then_some(span)
}

/// A run of hex digits, colons and dots that parses as an IPv6 address with at least two
/// non-empty groups, standing on its own.
fn ipv6(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let s = text[span.clone()].trim_end_matches('.');
    let end = span.start + s.len();
    let standalone = !text[..span.start].ends_with(is_word) && !text[end..].starts_with(is_word);
    let groups = s.split(':').filter(|g| !g.is_empty()).count();
    // A digit keeps out identifiers such as `a::b`.
    let digit = s.bytes().any(|b| b.is_ascii_digit());
    (standalone
        && digit
        && s.matches(':').count() >= 2
        && groups >= 2
        && s.parse::<Ipv6Addr>().is_ok())
    .then_some(span.start..end)
}

/// A phone candidate trimmed to its last digit, with `digits` digits, not glued to a longer
/// number or word.
fn phone(
    text: &str,
    span: Range<usize>,
    digits: std::ops::RangeInclusive<usize>,
) -> Option<Range<usize>> {
    let s = &text[span.clone()];
    let trimmed = s.trim_end_matches(|c: char| !c.is_ascii_digit());
    let end = span.start + trimmed.len();
    let count = trimmed.bytes().filter(u8::is_ascii_digit).count();
    let mut preceding = text[..span.start].chars().rev();
    let (before, before2) = (preceding.next(), preceding.next());
    let after = text[end..].chars().next();
    // The tail of a longer grouped number (an IBAN, `0044 0532 0130 00`) is not a phone number.
    let glued_before = before.is_some_and(|c| is_word(c) || matches!(c, '-' | '/' | '.' | '+'))
        || before.is_some_and(|c| matches!(c, ' ' | '-' | '.'))
            && before2.is_some_and(|c| c.is_ascii_digit());
    let glued_after = after.is_some_and(|c| is_word(c) || matches!(c, '-' | '/'))
        || text[end..].starts_with('.')
            && text[end + 1..].starts_with(|c: char| c.is_ascii_digit());
    (digits.contains(&count) && !glued_before && !glued_after).then_some(span.start..end)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_numbers() {
        let digits = |s: &str| s.chars().filter_map(|c| c.to_digit(10)).collect::<Vec<_>>();
        assert!(luhn(&digits("4111111111111111")));
        assert!(luhn(&digits("378282246310005")));
        assert!(!luhn(&digits("4111111111111112")));
    }
}
