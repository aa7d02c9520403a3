//! Workflow latency and cost objectives through the live gateway: violations become incidents in
//! the admin API and in the audit log, and a workflow that routes around them steers its next
//! requests away from the target at fault.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness, KeyScope};
use moat_audit::{verify, AuditRecord, Incident, RecordKind};
use moat_config::{Config, PriceConfig, WorkflowConfig};
use moat_core::{Money, Secret, SystemClock};
use moat_store::{AuditQuery, AuditStore, MemoryStore};
use moat_testkit::Fault;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "admin-token-0123456789";

fn price(model: &str, input: u64, output: u64) -> PriceConfig {
    PriceConfig {
        model: model.into(),
        input,
        output,
        cached_input: None,
        cache_write: None,
        context_window: None,
        max_output: None,
    }
}

async fn start(edit: impl FnOnce(&mut WorkflowConfig), prices: bool) -> (Harness, String) {
    let h = Harness::start_with(|c: &mut Config| {
        c.admin.token = Some(Secret::new(TOKEN.into()));
        let mut w = WorkflowConfig::new("agent", "team");
        edit(&mut w);
        c.workflows.push(w);
        if prices {
            // `primary` answers from sim-primary (dear), its fallback `claude` from sim-claude.
            c.prices
                .push(price("sim-primary", 100_000_000, 100_000_000));
            c.prices.push(price("sim-claude", 1_000_000, 1_000_000));
        }
    })
    .await;
    let key = h
        .create_key(KeyScope {
            workflow: Some("agent"),
            ..KeyScope::default()
        })
        .await;
    (h, key)
}

fn ask() -> Value {
    json!({"model": "primary", "max_tokens": 5, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn incidents(h: &Harness) -> Vec<Value> {
    let (status, body) = json_of(h.admin("/admin/v1/incidents", Some(TOKEN)).await).await;
    assert_eq!(status, 200);
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_slow_answer_is_a_latency_incident_and_routing_around_moves_the_target_last() {
    let (h, key) = start(
        |w| {
            w.objectives.max_latency = Some(Duration::from_millis(100));
            w.objectives.route_around = true;
        },
        false,
    )
    .await;
    h.sim.push_fault_for_model(
        "sim-primary",
        Fault::DelayHeaders(Duration::from_millis(300)),
    );
    let (status, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &ask()).await).await;
    assert_eq!((status, body["model"].as_str()), (200, Some("sim-primary")));
    let seen = incidents(&h).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let i = &seen[0];
    assert_eq!(i["kind"], "latency_objective");
    assert_eq!(i["workflow"], "agent");
    assert_eq!(
        (i["provider"].as_str(), i["model"].as_str()),
        (Some("oa"), Some("sim-primary"))
    );
    assert!(
        i["value"].as_i64().unwrap() >= 300 && i["objective"] == 100,
        "{i}"
    );

    // The next request of this workflow tries the fallback first: the primary ran slow.
    let (status, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &ask()).await).await;
    assert_eq!((status, body["model"].as_str()), (200, Some("sim-claude")));
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 1);
    // Other workflows' (and unregistered) traffic is not steered.
    let (_, body) = json_of(h.openai("/v1/chat/completions", &ask()).await).await;
    assert_eq!(body["model"], "sim-primary");
}

#[tokio::test]
async fn without_routing_around_a_slow_target_is_only_recorded() {
    let (h, key) = start(
        |w| w.objectives.max_latency = Some(Duration::from_millis(100)),
        false,
    )
    .await;
    h.sim.push_fault_for_model(
        "sim-primary",
        Fault::DelayHeaders(Duration::from_millis(300)),
    );
    json_of(h.openai_as(&key, "/v1/chat/completions", &ask()).await).await;
    let (_, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &ask()).await).await;
    assert_eq!(body["model"], "sim-primary");
    assert_eq!(incidents(&h).await.len(), 1);
}

#[tokio::test]
async fn a_cost_objective_is_recorded_and_routing_around_picks_a_target_within_it() {
    // "hello there" is 2 input tokens and the answer is 5 output tokens: 7 tokens cost
    // 700 micro-units on sim-primary and 7 on sim-claude.
    let (h, key) = start(
        |w| w.objectives.max_cost_per_request = Some(Money(100)),
        true,
    )
    .await;
    let (status, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &ask()).await).await;
    assert_eq!((status, body["model"].as_str()), (200, Some("sim-primary")));
    let seen = incidents(&h).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["kind"], "cost_objective");
    assert_eq!(
        (seen[0]["value"].as_i64(), seen[0]["objective"].as_i64()),
        (Some(700), Some(100))
    );

    let (h, key) = start(
        |w| {
            w.objectives.max_cost_per_request = Some(Money(100));
            w.objectives.route_around = true;
        },
        true,
    )
    .await;
    let (status, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &ask()).await).await;
    assert_eq!((status, body["model"].as_str()), (200, Some("sim-claude")));
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 0);
    assert!(incidents(&h).await.is_empty());
}

#[tokio::test]
async fn an_objective_violation_is_an_incident_record_naming_the_request_and_its_principal() {
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start_over_store(
        |c: &mut Config| {
            let mut w = WorkflowConfig::new("agent", "team");
            w.objectives.max_cost_per_request = Some(Money(100));
            c.workflows.push(w);
            c.prices
                .push(price("sim-primary", 100_000_000, 100_000_000));
        },
        Arc::new(SystemClock),
        store.clone(),
    )
    .await;
    let key = h
        .create_key(KeyScope {
            workflow: Some("agent"),
            ..KeyScope::default()
        })
        .await;
    let r = h.openai_as(&key, "/v1/chat/completions", &ask()).await;
    let request_id = r.headers()["x-moat-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(r.status(), 200);
    // Shutting down flushes the log.
    h.gateway.shutdown().await.unwrap();

    let all: Vec<AuditRecord> = store
        .query_audit(&AuditQuery::new(100))
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect();
    assert_eq!(
        all.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec![RecordKind::Request, RecordKind::Incident]
    );
    let (request, incident) = (&all[0], &all[1]);
    assert_eq!(incident.request_id, request_id);
    assert_eq!(request.request_id, request_id);
    assert_eq!(
        incident.incident,
        Some(Incident::CostObjective {
            provider: "oa".into(),
            model: "sim-primary".into(),
            value_micros: 700,
            objective_micros: 100,
        })
    );
    assert_eq!(
        (
            incident.workflow.as_deref(),
            incident.account.as_deref(),
            incident.key_id.as_ref()
        ),
        (Some("agent"), Some("acct"), request.key_id.as_ref())
    );
    assert!(incident.key_id.is_some());
    assert!(incident.ts_ms >= request.ts_ms);
    assert!(verify(all, None).is_ok());
}
