//! The redaction fixture: realistic prompts whose secrets and personal data must all go, and
//! whose look-alikes (invalid cards, versions, dates, prices, order numbers) must stay.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_audit::redact::{find, redact, redact_json, Kind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    text: String,
    /// `[kind, substring]`: must be gone, found as that kind.
    redact: Vec<(String, String)>,
    /// Must survive untouched.
    keep: Vec<String>,
}

fn cases() -> Vec<Case> {
    include_str!("fixtures/prompts.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn fixture_misses_nothing_and_keeps_look_alikes() {
    let (mut expected, mut caught, mut false_positives) = (0, 0, 0);
    let cases = cases();
    assert!(cases.len() >= 40);
    for case in &cases {
        let (out, findings) = redact(&case.text);
        for (kind, secret) in &case.redact {
            expected += 1;
            assert!(
                !out.contains(secret.as_str()),
                "{kind} {secret:?} left in {out:?}"
            );
            let at = case.text.find(secret.as_str()).unwrap();
            let found = findings
                .iter()
                .any(|f| f.kind.as_str() == kind && f.start <= at && at + secret.len() <= f.end);
            assert!(found, "{secret:?} not found as {kind}: {findings:?}");
            caught += 1;
        }
        for keep in &case.keep {
            assert!(out.contains(keep.as_str()), "{keep:?} lost in {out:?}");
        }
        // Every finding must be one of the listed ones: anything else is a false positive.
        for f in &findings {
            let listed = case.redact.iter().any(|(_, s)| {
                let at = case.text.find(s.as_str()).unwrap();
                f.start <= at && at + s.len() <= f.end
            });
            if !listed {
                false_positives += 1;
                eprintln!(
                    "false positive {:?} in {:?}",
                    &case.text[f.start..f.end],
                    case.text
                );
            }
        }
    }
    eprintln!("{caught}/{expected} caught, {false_positives} false positives");
    assert_eq!(caught, expected);
    assert_eq!(false_positives, 0);
}

#[test]
fn every_kind_is_exercised() {
    let cases = cases();
    for kind in [Kind::Email, Kind::Phone, Kind::Card, Kind::Secret, Kind::Ip] {
        assert!(
            cases
                .iter()
                .any(|c| c.redact.iter().any(|(k, _)| k == kind.as_str())),
            "{kind}"
        );
    }
}

#[test]
fn findings_are_ordered_and_disjoint() {
    for case in cases() {
        let findings = find(&case.text);
        for pair in findings.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{:?}", case.text);
        }
    }
}

#[test]
fn json_bodies_are_redacted_throughout() {
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": [
                {"type": "text", "text": "I'm ana@example.net, card 4111-1111-1111-1111."}
            ]}
        ],
        "user": "ana@example.net",
        "max_tokens": 4111111111111111u64
    });
    let out = redact_json(body);
    let text = out.to_string();
    assert!(!text.contains("ana@example.net"), "{text}");
    assert!(!text.contains("4111-1111-1111-1111"), "{text}");
    assert_eq!(out["user"], "[REDACTED:email]");
    // A number whose digits are a card is redacted too (issue 11: `"card_number": 4111...`).
    assert_eq!(out["max_tokens"], "[REDACTED:card]");
    assert_eq!(out["messages"][0]["content"], "You are a support agent.");
}
