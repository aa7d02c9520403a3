//! The governance sections: workflows, accounts, limits, budgets, prices, routing rules and
//! failover, read when valid and reported line by line when not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use moat_config::{parse, Config, Criticality, MapEnv, Sensitivity, Unregistered};
use moat_core::Money;

const BASE: &str = r#"[store]
path = "moat.db"
[[providers]]
name = "openai"
kind = "openai"
base_url = "https://api.openai.com/v1"
[[providers]]
name = "vllm"
kind = "openai"
base_url = "http://10.0.0.5:8000/v1"
tags = ["self_hosted", "approved"]
[[models]]
name = "big"
targets = [{ provider = "openai", model = "gpt-4.1" }]
[[models]]
name = "small"
targets = [{ provider = "openai", model = "gpt-4o-mini" }]
context_fallback = "big"
[[models]]
name = "local"
targets = [{ provider = "vllm", model = "qwen" }]
"#;
// BASE has 21 lines; `extra` starts on line 22.

fn ok(extra: &str) -> Config {
    match parse(
        &format!("{BASE}{extra}"),
        "moat.toml",
        Path::new(""),
        &MapEnv::default(),
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn errors(extra: &str) -> Vec<String> {
    match parse(
        &format!("{BASE}{extra}"),
        "moat.toml",
        Path::new(""),
        &MapEnv::default(),
    ) {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn absent_sections_mean_no_limits_and_default_failover() {
    let c = ok("");
    assert!(c.workflows.is_empty() && c.accounts.is_empty() && c.routing_rules.is_empty());
    assert_eq!(c.governance.unregistered, Unregistered::Allow);
    assert!(c.governance.key_limits.is_unlimited() && c.governance.key_budget.is_unlimited());
    assert_eq!(c.governance.default_output_tokens, 4096);
    assert_eq!(c.failover.retries, 1);
    assert_eq!(c.failover.breaker.failure_threshold, 5);
    assert_eq!(
        c.model("small").unwrap().context_fallback.as_deref(),
        Some("big")
    );
    assert_eq!(
        c.provider("vllm").unwrap().tags,
        ["self_hosted", "approved"]
    );
}

#[test]
fn a_full_governance_config_is_read() {
    let c = ok(r#"
[governance]
unregistered = "deny"
key_limits = { requests_per_minute = 120, concurrency = 8 }
key_budget = { daily = "$5.00" }
default_output_tokens = 1024

[[workflows]]
name = "claims-triage"
owner = "claims-platform@acme.example"
description = "Reads incoming claims and drafts a routing decision"
criticality = "high"
sensitivity = "restricted"
models = ["local", "big"]
writes = true
limits = { requests_per_minute = 600, tokens_per_minute = 200000, concurrency = 32 }
budget = { daily = 25, monthly = 400.5, soft_percent = 90 }
objectives = { max_latency = "20s", max_cost_per_request = 0.25, route_around = true }

[[accounts]]
name = "acme"
budget = { weekly = "1000" }

[[prices]]
model = "qwen"
input = 0.075
output = "0.30"

[[routing_rules]]
name = "restricted-stays-home"
when = { sensitivity = ["restricted"] }
only_providers_tagged = ["self_hosted"]

[[routing_rules]]
name = "drafts-go-small"
when = { criticality = ["low"], headers = { "X-Draft" = "yes" } }
use_model = "small"

[failover]
retries = 2
backoff_base = "100ms"
breaker = { failure_threshold = 3, open_for = "1m" }
[failover.timeouts.high]
first_token = "5s"
total = "30s"
"#);
    assert_eq!(c.governance.unregistered, Unregistered::Deny);
    assert_eq!(c.governance.key_limits.requests_per_minute, Some(120));
    assert_eq!(c.governance.key_limits.concurrency, Some(8));
    assert_eq!(c.governance.key_budget.daily, Some(Money(5_000_000)));
    assert_eq!(c.governance.default_output_tokens, 1024);
    let w = c.workflow("claims-triage").unwrap();
    assert_eq!(w.owner, "claims-platform@acme.example");
    assert_eq!(
        (w.criticality, w.sensitivity),
        (Criticality::High, Sensitivity::Restricted)
    );
    assert!(w.writes);
    assert_eq!(w.models, ["local", "big"]);
    assert_eq!(w.limits.tokens_per_minute, Some(200_000));
    assert_eq!(w.budget.daily, Some(Money(25_000_000)));
    assert_eq!(w.budget.monthly, Some(Money(400_500_000)));
    assert_eq!(w.budget.weekly, None);
    assert_eq!(w.budget.soft_percent, 90);
    assert_eq!(w.objectives.max_latency, Some(Duration::from_secs(20)));
    assert_eq!(w.objectives.max_cost_per_request, Some(Money(250_000)));
    assert!(w.objectives.route_around);
    assert_eq!(
        c.account("acme").unwrap().budget.weekly,
        Some(Money(1_000_000_000))
    );
    assert_eq!(c.prices[0].input, 75_000);
    assert_eq!(c.prices[0].output, 300_000);
    assert_eq!(c.routing_rules.len(), 2);
    assert_eq!(c.routing_rules[0].only_providers_tagged, ["self_hosted"]);
    assert_eq!(
        c.routing_rules[1].when.headers,
        [("x-draft".to_string(), "yes".to_string())]
    );
    assert_eq!(c.routing_rules[1].use_model.as_deref(), Some("small"));
    assert_eq!(c.failover.retries, 2);
    assert_eq!(c.failover.backoff_base, Duration::from_millis(100));
    assert_eq!(c.failover.breaker.failure_threshold, 3);
    assert_eq!(c.failover.breaker.open_for, Duration::from_secs(60));
    let high = c.failover.timeouts(Criticality::High);
    assert_eq!(high.first_token, Some(Duration::from_secs(5)));
    assert_eq!(high.total, Some(Duration::from_secs(30)));
    assert_eq!(c.failover.timeouts(Criticality::Low).total, None);
}

#[test]
fn mistakes_are_reported_with_line_and_field() {
    let got = errors(
        r#"[[workflows]]
name = "w"
owner = ""
criticality = "urgent"
sensitivity = "secret"
models = ["nope"]
budget = { daily = "-3", weekly = 0, soft_percent = 120 }
limits = { requests_per_minute = 0 }
[[routing_rules]]
name = "r"
when = { workflows = ["ghost"], tiers = ["gold"] }
only_providers_tagged = ["eu"]
[[routing_rules]]
name = "r"
[[prices]]
model = "x"
input = 0.0000001
[governance]
unregistered = "maybe"
"#,
    );
    let expected = [
        "line 24: workflows[0].owner: must not be empty",
        "line 25: workflows[0].criticality: unknown criticality \"urgent\": expected \"low\", \"medium\" or \"high\"",
        "line 26: workflows[0].sensitivity: unknown sensitivity \"secret\": expected \"public\", \"internal\", \"confidential\" or \"restricted\"",
        "line 27: workflows[0].models[0]: unknown model \"nope\"",
        "line 28: workflows[0].budget.daily: invalid amount \"-3\": expected a non-negative decimal number such as 25 or 0.075",
        "line 28: workflows[0].budget.weekly: must be greater than 0 (leave it out for no budget)",
        "line 28: workflows[0].budget.soft_percent: must be between 1 and 100",
        "line 29: workflows[0].limits.requests_per_minute: must be between 1 and 281474976710656",
        "line 32: routing_rules[0].when.workflows[0]: unknown workflow \"ghost\"",
        "line 32: routing_rules[0].when.tiers[0]: unknown tier \"gold\"",
        "line 33: routing_rules[0].only_providers_tagged[0]: no provider has the tag \"eu\": the rule would refuse every request it matches (add `tags = [\"eu\"]` to a provider)",
        "line 34: routing_rules[1]: a rule needs an action: `use_model`, `only_providers_tagged` or `deny`",
        "line 35: routing_rules[1].name: duplicate routing rule name \"r\" (first defined on line 31)",
        "line 36: prices[0].output: missing required field",
        "line 38: prices[0].input: invalid amount \"0.0000001\": more precise than a millionth of the currency unit",
        "line 40: governance.unregistered: unknown policy \"maybe\": expected \"allow\", \"flag\" (serve and report) or \"deny\" (refuse with 403)",
    ];
    for e in &expected {
        assert!(got.iter().any(|g| g == e), "missing: {e}\n got: {got:#?}");
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
}

#[test]
fn a_model_cannot_be_its_own_context_fallback_or_name_an_unknown_one() {
    let text = BASE.replace("context_fallback = \"big\"", "context_fallback = \"small\"");
    let e = parse(&text, "moat.toml", Path::new(""), &MapEnv::default()).unwrap_err();
    assert_eq!(
        e.errors[0].message,
        "a model cannot be its own context fallback"
    );
    let text = BASE.replace("context_fallback = \"big\"", "context_fallback = \"huge\"");
    let e = parse(&text, "moat.toml", Path::new(""), &MapEnv::default()).unwrap_err();
    assert_eq!(e.errors[0].message, "unknown model \"huge\"");
}

#[test]
fn a_rule_that_denies_cannot_also_route() {
    let got = errors("[[routing_rules]]\nname = \"x\"\nuse_model = \"big\"\ndeny = \"no\"\n");
    assert_eq!(got, ["line 25: routing_rules[0].deny: a rule that denies cannot also route: remove `use_model` and `only_providers_tagged`, or `deny`"]);
}

#[test]
fn the_audit_section_is_read_and_checked() {
    use moat_config::{BodyPolicy, Durability};
    let c = ok("");
    assert!(c.audit.enabled);
    assert_eq!(c.audit.durability, Durability::Batch);
    assert_eq!(c.audit.bodies.restricted, BodyPolicy::Hash);
    let c = ok(r#"
[audit]
durability = "sync"
flush_interval = "50ms"
bodies = { confidential = "full", restricted = "none" }
retention = "90d"
signing_key = "keys/audit.pem"
witness = { file = "/mnt/witness/heads.jsonl", url = "https://notary.example/moat", every_records = 10, every = "5s" }
"#);
    assert_eq!(c.audit.durability, Durability::Sync);
    assert_eq!(c.audit.flush_interval, Duration::from_millis(50));
    assert_eq!(c.audit.bodies.confidential, BodyPolicy::Full);
    assert_eq!(c.audit.bodies.restricted, BodyPolicy::None);
    assert_eq!(c.audit.retention, Some(Duration::from_secs(90 * 86_400)));
    assert!(c.audit.signing_key.unwrap().ends_with("keys/audit.pem"));
    let witness = c.audit.witness.unwrap();
    assert_eq!(
        witness.file.as_deref(),
        Some(std::path::Path::new("/mnt/witness/heads.jsonl"))
    );
    assert_eq!(witness.url.as_deref(), Some("https://notary.example/moat"));
    assert_eq!(
        (witness.every_records, witness.every),
        (10, Duration::from_secs(5))
    );
    // Without `signing_key`, the key file sits beside the store file.
    let c = ok("");
    assert_eq!(c.audit.witness, None);
    let beside = c
        .audit
        .signing_key_path(std::path::Path::new("/var/lib/moat/moat.db"));
    assert_eq!(
        beside.unwrap(),
        std::path::Path::new("/var/lib/moat/moat.db.audit-key")
    );
    assert_eq!(
        c.audit.signing_key_path(std::path::Path::new(":memory:")),
        None
    );
    let got = errors("[audit]\ndurability = \"eventually\"\nbodies = { public = \"some\" }\nretention = \"30d\"\ncheckpoint_key = \"0123456789abcdef0123456789abcdef\"\nwitness = { every = \"0s\" }\n");
    assert_eq!(
        got,
        [
            "audit.witness: names no witness: set `file` (heads appended as JSON lines) and/or `url` (heads POSTed)",
            "line 23: audit.durability: unknown durability \"eventually\": expected \"batch\" (written within flush_interval) or \"sync\" (durable before the response completes)",
            "line 24: audit.bodies.public: unknown body policy \"some\": expected \"full\", \"hash\" or \"none\"",
            "line 26: audit.checkpoint_key: was removed: checkpoints are now signed with the Ed25519 audit key (`signing_key`, a file generated on first start); delete this line",
            "line 27: audit.witness.every: must be greater than 0",
        ]
    );
}

#[test]
fn the_per_key_body_budget_is_read_defaulted_and_checked() {
    assert_eq!(ok("").governance.key_body_bytes_in_flight, 128 << 20);
    let c = ok("[governance]\nkey_body_bytes_in_flight = 1048576\n");
    assert_eq!(c.governance.key_body_bytes_in_flight, 1 << 20);
    assert_eq!(
        errors("[governance]\nkey_body_bytes_in_flight = 0\n"),
        ["line 23: governance.key_body_bytes_in_flight: must be between 1 and 1099511627776"]
    );
}
