//! Governance through the live gateway: rate limits, token limits, concurrency and budgets under
//! 64 parallel clients (never more admitted or spent than allowed), the 429 and budget refusals
//! in each protocol's shape, the workflow inventory and policy routing.
//!
//! Time is a manual clock that stands still unless a test moves it, so a per-minute limit admits
//! exactly its allowance however long the machine takes; the simulated provider's usage is
//! deterministic (one token per word), so costs are exact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness, KeyScope};
use moat_config::{
    Budget, Config, Criticality, Limits, PriceConfig, RoutingRule, RuleMatch, Sensitivity,
    Unregistered, WorkflowConfig,
};
use moat_core::{ManualClock, Money, Secret};
use moat_testkit::Fault;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "admin-token-0123456789";
/// 2026-05-28T20:26:40Z.
const T0: i64 = 1_780_000_000_000;
const CLIENTS: usize = 64;

fn chat(words: &str) -> Value {
    json!({"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": words}]})
}

/// `sim-gpt` at $1 per million input tokens and $2 per million output tokens: one micro-unit per
/// input token, two per output token.
fn priced(c: &mut Config) {
    c.prices.push(PriceConfig {
        model: "sim-gpt".into(),
        input: 1_000_000,
        output: 2_000_000,
        cached_input: None,
        cache_write: None,
        context_window: None,
        max_output: None,
    });
    c.admin.token = Some(Secret::new(TOKEN.into()));
}

async fn start(edit: impl FnOnce(&mut Config)) -> (Harness, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let h = Harness::start_with_clock(
        |c| {
            priced(c);
            edit(c);
        },
        clock.clone(),
    )
    .await;
    (h, clock)
}

/// Sends `n` requests at once, each with its own words, and returns (status, headers, body).
async fn burst(h: &Harness, key: &str, n: usize) -> Vec<(u16, reqwest::header::HeaderMap, Value)> {
    let requests = (0..n).map(|i| {
        let body = chat(&format!("question number {i} about limits"));
        async move {
            let r = h.openai_as(key, "/v1/chat/completions", &body).await;
            let headers = r.headers().clone();
            let (status, body) = json_of(r).await;
            (status, headers, body)
        }
    });
    futures_util::future::join_all(requests).await
}

fn count(results: &[(u16, reqwest::header::HeaderMap, Value)], status: u16) -> usize {
    results.iter().filter(|r| r.0 == status).count()
}

#[tokio::test]
async fn a_requests_limit_admits_exactly_its_allowance_to_parallel_clients() {
    let (h, clock) = start(|c| {
        c.governance.key_limits = Limits {
            requests_per_minute: Some(10),
            ..Limits::default()
        };
    })
    .await;
    let results = burst(&h, &h.key, CLIENTS).await;
    assert_eq!(
        count(&results, 200),
        10,
        "exactly the allowance is admitted"
    );
    assert_eq!(count(&results, 429), CLIENTS - 10);
    assert_eq!(
        h.sim.request_count(),
        10,
        "refused requests never reach the provider"
    );

    let (_, headers, body) = results.iter().find(|r| r.0 == 429).unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
    // 10 a minute refill one every 6 s: the wait is whole seconds for agents, exact in ms.
    assert_eq!(headers["retry-after"], "6");
    assert_eq!(headers["retry-after-ms"], "6000");
    assert_eq!(headers["x-ratelimit-limit-requests"], "10");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(headers["x-ratelimit-reset-requests"], "1m0s");
    let (_, ok_headers, _) = results.iter().find(|r| r.0 == 200).unwrap();
    assert_eq!(ok_headers["x-ratelimit-limit-requests"], "10");

    // One more after exactly 6 s, not a millisecond before.
    clock.advance_ms(5_999);
    assert_eq!(count(&burst(&h, &h.key, 4).await, 200), 0);
    clock.advance_ms(1);
    assert_eq!(count(&burst(&h, &h.key, 4).await, 200), 1);
}

#[tokio::test]
async fn key_workflow_and_account_limits_hold_together() {
    let (h, _clock) = start(|c| {
        c.governance.key_limits.requests_per_minute = Some(10);
        let mut w = WorkflowConfig::new("triage", "claims-team");
        w.limits.requests_per_minute = Some(15);
        c.workflows.push(w);
        c.governance.account_limits.requests_per_minute = Some(25);
    })
    .await;
    let mut keys = vec![];
    for _ in 0..3 {
        let scope = KeyScope {
            workflow: Some("triage"),
            ..KeyScope::default()
        };
        keys.push(h.create_key(scope).await);
    }
    let other = h.create_key(KeyScope::default()).await;
    let per_key = futures_util::future::join_all(keys.iter().map(|k| burst(&h, k, 20))).await;
    let admitted: Vec<usize> = per_key.iter().map(|r| count(r, 200)).collect();
    assert!(admitted.iter().all(|&n| n <= 10), "{admitted:?}");
    assert_eq!(
        admitted.iter().sum::<usize>(),
        15,
        "the workflow's limit binds"
    );
    // The account (25 a minute) has 10 left for its keys outside the workflow.
    assert_eq!(count(&burst(&h, &other, 20).await, 200), 10);
    assert_eq!(
        count(&burst(&h, &h.key, 5).await, 200),
        0,
        "the account is spent"
    );
}

#[tokio::test]
async fn a_tokens_limit_never_lets_more_tokens_through_than_a_minute_allows() {
    let (h, clock) = start(|c| {
        c.governance.key_limits.tokens_per_minute = Some(1_000);
    })
    .await;
    let results = burst(&h, &h.key, CLIENTS).await;
    let used: u64 = results
        .iter()
        .filter(|r| r.0 == 200)
        .map(|r| r.2["usage"]["total_tokens"].as_u64().unwrap())
        .sum();
    assert!(count(&results, 429) > 0);
    assert!(used <= 1_000, "{used} tokens served at a frozen clock");
    let (_, headers, body) = results.iter().find(|r| r.0 == 429).unwrap();
    assert_eq!(body["error"]["type"], "tokens");
    assert_eq!(headers["x-ratelimit-limit-tokens"], "1000");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // A minute later the bucket is full again.
    clock.advance_ms(60_000);
    assert!(count(&burst(&h, &h.key, 4).await, 200) >= 1);
}

#[tokio::test]
async fn a_concurrency_limit_holds_under_parallel_clients() {
    let (h, _clock) = start(|c| {
        c.governance.key_limits.concurrency = Some(4);
    })
    .await;
    for _ in 0..CLIENTS {
        h.sim
            .push_fault(Fault::DelayHeaders(Duration::from_millis(1000)));
    }
    let results = burst(&h, &h.key, CLIENTS).await;
    assert_eq!(
        h.sim.request_count(),
        4,
        "never more than 4 in flight upstream"
    );
    assert_eq!(count(&results, 200), 4);
    assert_eq!(count(&results, 429), CLIENTS - 4);
    // Slots come back when requests end.
    assert_eq!(count(&burst(&h, &h.key, 1).await, 200), 1);
}

/// Settled spend of one principal, in micro-units, from the admin API.
async fn spent(h: &Harness, scope: &str, id: &str) -> i64 {
    let (status, body) = json_of(h.admin("/admin/v1/spend", Some(TOKEN)).await).await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["scope"] == scope && r["id"] == id && r["period"] == "day")
        .map(|r| r["spent"]["micros"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_budget_is_never_overspent_by_parallel_clients_to_the_micro_unit() {
    const HARD: i64 = 2_000;
    let (h, _clock) = start(|c| {
        let mut w = WorkflowConfig::new("triage", "claims-team");
        w.budget = Budget {
            daily: Some(Money(HARD)),
            ..Budget::default()
        };
        c.workflows.push(w);
    })
    .await;
    let key = h
        .create_key(KeyScope {
            workflow: Some("triage"),
            ..KeyScope::default()
        })
        .await;
    // Several rounds of 64 parallel clients until the budget refuses everything.
    let mut charged = 0i64;
    let mut refused = 0;
    for _ in 0..100 {
        let results = burst(&h, &key, CLIENTS).await;
        if count(&results, 200) == 0 {
            break;
        }
        for (status, _, body) in results {
            match status {
                200 => {
                    let u = &body["usage"];
                    // $1 and $2 per million tokens: 1 and 2 micro-units a token.
                    charged += u["prompt_tokens"].as_i64().unwrap()
                        + 2 * u["completion_tokens"].as_i64().unwrap();
                }
                429 => {
                    assert_eq!(body["error"]["code"], "insufficient_quota");
                    refused += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
    }
    let ledger = spent(&h, "workflow", "triage").await;
    assert_eq!(
        ledger, charged,
        "the ledger holds exactly the reported usage's cost"
    );
    assert!(ledger <= HARD, "spent {ledger} of {HARD}");
    assert!(refused > 0);
    // Refused only when the worst case no longer fits: the body bounds the input, the cap the
    // output, so what is left is less than one request's worst case.
    // (Input is reserved at the dearer of the input and cache-write prices: 1.25 here.)
    let body = serde_json::to_vec(&chat("question number 63 about limits")).unwrap();
    let worst = (body.len() as i64 * 5 + 3) / 4 + 2 * 10 + 2;
    assert!(
        HARD - ledger < worst,
        "left {} unused, worst case {worst}",
        HARD - ledger
    );
}

#[tokio::test]
async fn budget_refusals_tell_sdks_not_to_retry_in_each_protocol() {
    let (h, _clock) = start(|c| {
        c.governance.key_budget.daily = Some(Money(1));
        c.prices.push(PriceConfig {
            model: "sim-claude".into(),
            input: 1_000_000,
            output: 1_000_000,
            cached_input: None,
            cache_write: None,
            context_window: None,
            max_output: None,
        });
    })
    .await;
    let r = h.openai("/v1/chat/completions", &chat("hello")).await;
    assert_eq!(r.headers()["x-should-retry"], "false");
    let (status, body) = json_of(r).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "insufficient_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("daily budget of $0.000001 reached"),
        "{message}"
    );

    let anthropic = json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]});
    let r = h.anthropic("/v1/messages", &anthropic).await;
    assert_eq!(r.headers()["x-should-retry"], "false");
    let (status, body) = json_of(r).await;
    assert_eq!(status, 402);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "billing_error");
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn anthropic_clients_get_anthropic_rate_limit_headers() {
    let (h, _clock) = start(|c| {
        c.governance.key_limits.requests_per_minute = Some(1);
    })
    .await;
    let body = json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let ok = h.anthropic("/v1/messages", &body).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["anthropic-ratelimit-requests-limit"], "1");
    assert_eq!(ok.headers()["anthropic-ratelimit-requests-remaining"], "0");
    let r = h.anthropic("/v1/messages", &body).await;
    let headers = r.headers().clone();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(headers["retry-after"], "60");
    // T0 + 60 s, as RFC 3339.
    assert_eq!(
        headers["anthropic-ratelimit-requests-reset"],
        "2026-05-28T20:27:40Z"
    );
}

fn workflow(name: &str, criticality: Criticality, sensitivity: Sensitivity) -> WorkflowConfig {
    let mut w = WorkflowConfig::new(name, "platform-team");
    w.criticality = criticality;
    w.sensitivity = sensitivity;
    w
}

fn rule(name: &str, when: RuleMatch) -> RoutingRule {
    RoutingRule {
        name: name.into(),
        when,
        use_model: None,
        only_providers_tagged: vec![],
        deny: None,
    }
}

#[tokio::test]
async fn unregistered_traffic_can_be_denied_and_workflows_keep_to_their_models() {
    let (h, _clock) = start(|c| {
        c.governance.unregistered = Unregistered::Deny;
        let mut w = workflow("drafts", Criticality::Low, Sensitivity::Internal);
        w.models = vec!["gpt".into()];
        c.workflows.push(w);
    })
    .await;
    let (status, body) = json_of(h.openai("/v1/chat/completions", &chat("hi")).await).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "workflow_unregistered");
    let ghost = h
        .create_key(KeyScope {
            workflow: Some("ghost"),
            ..KeyScope::default()
        })
        .await;
    let (status, body) = json_of(
        h.openai_as(&ghost, "/v1/chat/completions", &chat("hi"))
            .await,
    )
    .await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'ghost' is not registered"));

    let drafts = h
        .create_key(KeyScope {
            workflow: Some("drafts"),
            ..KeyScope::default()
        })
        .await;
    let (status, _) = json_of(
        h.openai_as(&drafts, "/v1/chat/completions", &chat("hi"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let mut other = chat("hi");
    other["model"] = json!("claude");
    let (status, body) = json_of(h.openai_as(&drafts, "/v1/chat/completions", &other).await).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "workflow_model_not_allowed");
    assert_eq!(h.sim.request_count(), 1);
}

#[tokio::test]
async fn routing_rules_send_restricted_data_only_to_tagged_providers_and_drafts_to_a_cheaper_model()
{
    let (h, _clock) = start(|c| {
        // Only the Anthropic-kind provider is approved for restricted data.
        c.providers[1].tags = vec!["approved".into()];
        c.workflows.push(workflow(
            "claims",
            Criticality::High,
            Sensitivity::Restricted,
        ));
        c.workflows
            .push(workflow("drafts", Criticality::Low, Sensitivity::Internal));
        let mut restricted = rule(
            "restricted-stays-approved",
            RuleMatch {
                sensitivity: vec![Sensitivity::Restricted],
                ..RuleMatch::default()
            },
        );
        restricted.only_providers_tagged = vec!["approved".into()];
        let mut drafts = rule(
            "drafts-go-cheap",
            RuleMatch {
                criticality: vec![Criticality::Low],
                ..RuleMatch::default()
            },
        );
        drafts.use_model = Some("claude".into());
        let mut batch = rule(
            "no-batch-on-gpt",
            RuleMatch {
                models: vec!["gpt".into()],
                headers: vec![("x-moat-class".into(), "batch".into())],
                ..RuleMatch::default()
            },
        );
        batch.deny = Some("batch traffic goes to the batch endpoint".into());
        c.routing_rules = vec![restricted, drafts, batch];
    })
    .await;
    let key = |w: &'static str| KeyScope {
        workflow: Some(w),
        ..KeyScope::default()
    };
    let claims = h.create_key(key("claims")).await;
    let drafts = h.create_key(key("drafts")).await;

    // `primary` is an OpenAI-provider model that falls back to `claude`: restricted data skips
    // the unapproved target and goes straight to the approved one.
    let mut primary = chat("restricted claim details");
    primary["model"] = json!("primary");
    let (status, body) =
        json_of(h.openai_as(&claims, "/v1/chat/completions", &primary).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "sim-claude");
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 0);
    // `gpt` has no approved target at all: refused, sent nowhere.
    let (status, body) = json_of(
        h.openai_as(&claims, "/v1/chat/completions", &chat("x"))
            .await,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "no_compliant_target");
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 0);

    // Low criticality: `gpt` is rerouted to `claude`.
    let (status, body) = json_of(
        h.openai_as(&drafts, "/v1/chat/completions", &chat("draft"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["model"], "sim-claude");

    // A header-matched deny rule (the default key has no workflow: medium, internal).
    let r = h
        .openai_with(
            &h.key,
            "/v1/chat/completions",
            &chat("x"),
            &[("x-moat-class", "batch")],
        )
        .await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "policy_denied");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no-batch-on-gpt"));
    let (status, _) = json_of(h.openai("/v1/chat/completions", &chat("x")).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_inventory_lists_workflows_with_their_labels_and_spend() {
    let (h, _clock) = start(|c| {
        let mut w = workflow("claims", Criticality::High, Sensitivity::Restricted);
        w.writes = true;
        w.budget.monthly = Some(Money(50_000_000));
        c.workflows.push(w);
    })
    .await;
    let key = h
        .create_key(KeyScope {
            workflow: Some("claims"),
            ..KeyScope::default()
        })
        .await;
    let (status, _) = json_of(
        h.openai_as(&key, "/v1/chat/completions", &chat("one two three"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = json_of(h.admin("/admin/v1/workflows", Some(TOKEN)).await).await;
    assert_eq!(status, 200);
    let w = &body["data"][0];
    assert_eq!(w["name"], "claims");
    assert_eq!(w["owner"], "platform-team");
    assert_eq!(
        (w["criticality"].as_str(), w["sensitivity"].as_str()),
        (Some("high"), Some("restricted"))
    );
    assert_eq!(w["writes"], true);
    assert_eq!(w["budget"]["monthly"]["usd"], "50.00");
    let month = w["spend"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["period"] == "month")
        .unwrap();
    // "one two three" (3 input tokens) and the sim's 10-word answer: 3 + 2 x 10 micro-units.
    assert_eq!(month["spent"]["micros"], 23);
    assert_eq!(h.admin("/admin/v1/workflows", None).await.status(), 401);
}
