//! What a record counts as, for each section: the report's definitions, in one place so the
//! aggregation and the words the report prints cannot disagree.

use moat_audit::{AuditRecord, Body};

/// Definition of unregistered traffic, as printed.
pub const UNREGISTERED: &str = "Unregistered traffic: requests made with a key (authenticated) \
that carry no workflow, or that the policy stage marked `policy:unregistered`.";

/// Definition of a provider failure, as printed.
pub const PROVIDER_FAILURE: &str = "A provider failure is a request with a decision of the \
`upstream` stage (the provider answered an error, timed out or could not be reached) or answered \
with a 5xx status. An outage hour is a UTC hour in which more than half of the requests that \
reached a provider failed, with at least 5 failures.";

/// Definition of an error (the daily chart and model drift), as printed.
pub const ERROR: &str = "An error is a request answered with a 5xx status.";

/// Definition of a refusal, as printed.
pub const REFUSAL: &str = "A refusal is a request whose response body was kept in full and \
carries `finish_reason` or `stop_reason` `content_filter` or `refusal` (or the Responses API's \
incomplete reason `content_filter`, or an error code `content_policy_violation` / \
`content_filter`); where the body was not kept in full, a provider answer of 400 or 403 (the \
statuses providers use for content-policy refusals).";

/// The fewest failures an hour needs to count as an outage.
pub const OUTAGE_MIN_FAILURES: u64 = 5;

/// Markers of a refusal in a minified response body.
const REFUSAL_MARKERS: [&str; 6] = [
    "\"finish_reason\":\"content_filter\"",
    "\"finish_reason\":\"refusal\"",
    "\"stop_reason\":\"refusal\"",
    "\"reason\":\"content_filter\"",
    "\"code\":\"content_policy_violation\"",
    "\"code\":\"content_filter\"",
];

/// Whether the record is unregistered traffic ([`UNREGISTERED`]).
pub fn is_unregistered(r: &AuditRecord) -> bool {
    r.key_id.is_some() && (r.workflow.is_none() || has(r, "policy", "unregistered"))
}

/// Whether the record is a provider failure ([`PROVIDER_FAILURE`]).
pub fn is_provider_failure(r: &AuditRecord) -> bool {
    r.status >= 500 || r.decisions.iter().any(|d| d.stage == "upstream")
}

/// Whether the record is an error ([`ERROR`]).
pub fn is_error(r: &AuditRecord) -> bool {
    r.status >= 500
}

/// Whether the record is a refusal ([`REFUSAL`]).
pub fn is_refusal(r: &AuditRecord) -> bool {
    match &r.response_body {
        Body::Full(raw) => {
            let text = raw.get();
            REFUSAL_MARKERS.iter().any(|m| text.contains(m))
        }
        _ => {
            (r.status == 400 || r.status == 403)
                && r.decisions.iter().any(|d| d.stage == "upstream")
        }
    }
}

/// The detection actions on the record: the gate's outcomes (`throttle`, `degrade`, `block`,
/// and `would_*` in monitor mode), not the refusal that follows an enforced one.
pub fn detection_actions(r: &AuditRecord) -> impl Iterator<Item = &str> {
    r.decisions
        .iter()
        .filter(|d| {
            d.stage == "detection" && !matches!(d.outcome.as_str(), "deny" | "fail" | "allow")
        })
        .map(|d| d.outcome.as_str())
}

/// The near-miss kinds of the record (`filter:*`, `policy:deny`, `limits:deny`, `budget:deny`,
/// `detection:block`), each once.
pub fn near_misses(r: &AuditRecord) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for d in &r.decisions {
        let counts = match d.stage.as_str() {
            "filter" => true,
            "policy" | "limits" | "budget" => d.outcome == "deny",
            "detection" => d.outcome == "block",
            _ => false,
        };
        if counts {
            let kind = format!("{}:{}", d.stage, d.outcome);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    kinds
}

/// Who a near miss is charged to: the account, else the key, else `(unauthenticated)`.
pub fn principal(r: &AuditRecord) -> String {
    r.account
        .clone()
        .or_else(|| r.key_id.as_ref().map(|k| format!("key {k}")))
        .unwrap_or_else(|| "(unauthenticated)".to_string())
}

fn has(r: &AuditRecord, stage: &str, outcome: &str) -> bool {
    r.decisions
        .iter()
        .any(|d| d.stage == stage && d.outcome == outcome)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_audit::Decision;

    fn decide(r: &mut AuditRecord, stage: &str, outcome: &str) {
        r.decisions.push(Decision {
            stage: stage.into(),
            outcome: outcome.into(),
            reason: None,
        });
    }

    #[test]
    fn refusals_from_bodies_and_statuses() {
        let mut r = AuditRecord::request(0, "a", 200);
        r.response_body = Body::full(br#"{"choices":[{"finish_reason": "content_filter"}]}"#);
        assert!(is_refusal(&r));
        r.response_body = Body::full(br#"{"stop_reason":"end_turn"}"#);
        assert!(!is_refusal(&r));
        let mut r = AuditRecord::request(0, "b", 400);
        assert!(!is_refusal(&r), "a 400 of the gateway's own is no refusal");
        decide(&mut r, "upstream", "fail");
        assert!(is_refusal(&r));
    }

    #[test]
    fn near_misses_and_detection() {
        let mut r = AuditRecord::request(0, "a", 403);
        decide(&mut r, "detection", "block");
        decide(&mut r, "detection", "deny");
        decide(&mut r, "filter", "flag");
        decide(&mut r, "policy", "route");
        assert_eq!(near_misses(&r), vec!["detection:block", "filter:flag"]);
        assert_eq!(detection_actions(&r).collect::<Vec<_>>(), vec!["block"]);
        assert_eq!(principal(&r), "(unauthenticated)");
    }
}
