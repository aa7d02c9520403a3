//! Budget spend across restarts: a gateway saves its ledger to the spend store while serving and
//! after a graceful shutdown, and a gateway started again over the same store refuses what the
//! spent budget no longer covers, where a gateway with a fresh store would admit it.
//!
//! Time is a manual clock, so budget windows only roll over when a test moves it; the simulated
//! provider's usage is deterministic, so costs are exact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use async_trait::async_trait;
use common::{json_of, Harness, KeyScope};
use moat_config::{Budget, Config, PriceConfig, WorkflowConfig};
use moat_core::{ManualClock, Money, Secret};
use moat_policy::budget::{Period, SpendRow};
use moat_policy::limits::Scope;
use moat_proxy::{AppState, Gateway, StateError, SPEND_SAVE_INTERVAL};
use moat_store::{MemoryStore, SpendStore, StoreError};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "admin-token-0123456789";
/// 2026-05-28T20:26:40Z, a Thursday.
const T0: i64 = 1_780_000_000_000;
const DAY_MS: i64 = 86_400_000;

/// The same request every time, so the one a budget refuses can be sent again elsewhere.
fn chat() -> Value {
    json!({"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "a question about budgets"}]})
}

/// `sim-gpt` at one micro-unit per input token and two per output token, the admin API on, and
/// the workflow `triage` with `budget`.
fn governed(c: &mut Config, budget: Budget) {
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
    let mut w = WorkflowConfig::new("triage", "claims-team");
    w.budget = budget;
    c.workflows.push(w);
}

async fn start(store: &Arc<MemoryStore>, clock: &Arc<ManualClock>, budget: Budget) -> Harness {
    Harness::start_over_store(|c| governed(c, budget), clock.clone(), store.clone()).await
}

async fn triage_key(h: &Harness) -> String {
    h.create_key(KeyScope {
        workflow: Some("triage"),
        ..KeyScope::default()
    })
    .await
}

/// Sends [`chat`]; the status, the error code if any, and what it cost.
async fn ask(h: &Harness, key: &str) -> (u16, Value, i64) {
    let (status, body) = json_of(h.openai_as(key, "/v1/chat/completions", &chat()).await).await;
    let cost = if status == 200 {
        let u = &body["usage"];
        u["prompt_tokens"].as_i64().unwrap() + 2 * u["completion_tokens"].as_i64().unwrap()
    } else {
        0
    };
    (status, body["error"]["code"].clone(), cost)
}

/// `GET /admin/v1/spend`'s rows.
async fn spend(h: &Harness) -> Vec<Value> {
    let (status, body) = json_of(h.admin("/admin/v1/spend", Some(TOKEN)).await).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// The workflow's spend in `period` from the admin API, if it has a row.
fn workflow_spend(rows: &[Value], period: &str) -> Option<i64> {
    rows.iter()
        .find(|r| r["scope"] == "workflow" && r["id"] == "triage" && r["period"] == period)
        .map(|r| r["spent"]["micros"].as_i64().unwrap())
}

fn daily(hard: i64) -> Budget {
    Budget {
        daily: Some(Money(hard)),
        ..Budget::default()
    }
}

#[tokio::test]
async fn a_restarted_gateway_remembers_spend_and_refuses_what_is_left_short_of() {
    const HARD: i64 = 300;
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let first = start(&store, &clock, daily(HARD)).await;
    let key = triage_key(&first).await;

    // Spend until the budget refuses the next request's worst case.
    let mut charged = 0;
    let mut admitted = 0;
    loop {
        let (status, code, cost) = ask(&first, &key).await;
        if status == 429 {
            assert_eq!(code, "insufficient_quota");
            break;
        }
        assert_eq!(status, 200);
        charged += cost;
        admitted += 1;
        assert!(admitted < 100, "the budget never refused");
    }
    assert!(admitted >= 2, "admitted {admitted}");
    let before = spend(&first).await;
    assert_eq!(workflow_spend(&before, "day"), Some(charged));

    let Harness { gateway, sim, .. } = first;
    gateway.shutdown().await.unwrap();
    drop(sim);
    let saved = store.load_spend(i64::MIN).await.unwrap();
    assert_eq!(
        saved,
        vec![SpendRow {
            scope: Scope::Workflow,
            id: "triage".into(),
            period: Period::Day,
            window_start_ms: 1_779_926_400_000, // 2026-05-28T00:00:00Z
            spent: Money(charged),
        }],
        "the shutdown saved the ledger"
    );

    let second = start(&store, &clock, daily(HARD)).await;
    assert_eq!(
        spend(&second).await,
        before,
        "the same spend after the restart"
    );
    let (status, code, _) = ask(&second, &key).await;
    assert_eq!(
        (status, code),
        (429, json!("insufficient_quota")),
        "what the first gateway refused stays refused"
    );
    assert_eq!(second.sim.request_count(), 0);

    // The counterfactual: the same request to a gateway that forgot the spend goes through.
    let fresh = start(&Arc::new(MemoryStore::new()), &clock, daily(HARD)).await;
    let fresh_key = triage_key(&fresh).await;
    assert_eq!(ask(&fresh, &fresh_key).await.0, 200);
}

#[tokio::test]
async fn after_midnight_a_restart_keeps_the_month_and_starts_a_new_day() {
    let budget = Budget {
        daily: Some(Money(10_000)),
        monthly: Some(Money(1_000_000)),
        ..Budget::default()
    };
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let first = start(&store, &clock, budget).await;
    let key = triage_key(&first).await;
    let mut charged = 0;
    for _ in 0..3 {
        let (status, _, cost) = ask(&first, &key).await;
        assert_eq!(status, 200);
        charged += cost;
    }
    first.gateway.shutdown().await.unwrap();

    clock.advance_ms(DAY_MS);
    let second = start(&store, &clock, budget).await;
    let rows = spend(&second).await;
    assert_eq!(workflow_spend(&rows, "month"), Some(charged));
    assert_eq!(
        workflow_spend(&rows, "day"),
        None,
        "yesterday's spend is not today's"
    );
    let (status, _, cost) = ask(&second, &key).await;
    assert_eq!(status, 200);
    let rows = spend(&second).await;
    assert_eq!(workflow_spend(&rows, "day"), Some(cost));
    assert_eq!(workflow_spend(&rows, "month"), Some(charged + cost));
}

#[tokio::test]
async fn spend_is_saved_while_serving_not_only_at_shutdown() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let h = start(&store, &clock, daily(1_000_000)).await;
    let key = triage_key(&h).await;
    let (status, _, cost) = ask(&h, &key).await;
    assert_eq!(status, 200);

    // A crash now would keep what the periodic save wrote; poll for it, with a deadline.
    let deadline = tokio::time::Instant::now() + SPEND_SAVE_INTERVAL * 3;
    let saved = loop {
        let rows = store.load_spend(i64::MIN).await.unwrap();
        if !rows.is_empty() {
            break rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing saved within {:?}",
            SPEND_SAVE_INTERVAL * 3
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].spent, Money(cost));
}

/// A spend store whose saves (and, if asked, loads) fail; loads return nothing.
#[derive(Default)]
struct BrokenStore {
    fail_load: bool,
    saves: AtomicUsize,
}

#[async_trait]
impl SpendStore for BrokenStore {
    async fn save_spend(&self, _: &[SpendRow]) -> Result<(), StoreError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Worker("disk full".into()))
    }

    async fn load_spend(&self, _: i64) -> Result<Vec<SpendRow>, StoreError> {
        if self.fail_load {
            return Err(StoreError::Worker("disk gone".into()));
        }
        Ok(vec![])
    }

    async fn prune_spend(&self, _: i64) -> Result<u64, StoreError> {
        Err(StoreError::Worker("disk full".into()))
    }
}

fn broken_config(sim: &moat_testkit::SimUpstream) -> Config {
    let mut c = common::config(sim, 9);
    governed(&mut c, daily(1_000_000));
    c
}

#[tokio::test]
async fn a_failing_save_is_counted_and_logged_never_fatal() {
    let sim = moat_testkit::SimUpstream::start_with(moat_testkit::SimOptions {
        api_key: Some(common::UPSTREAM_KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let keys = Arc::new(MemoryStore::new());
    let broken = Arc::new(BrokenStore::default());
    let state = AppState::with_clock(
        broken_config(&sim),
        keys.clone(),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap()
    .with_spend_store(broken.clone())
    .await
    .expect("a failed prune does not stop the start");
    let gateway = Gateway::start(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let h = Harness {
        sim,
        gateway,
        store: keys,
        key: String::new(),
        http: reqwest::Client::new(),
    };
    let key = triage_key(&h).await;
    assert_eq!(ask(&h, &key).await.0, 200);

    h.gateway.shutdown().await.unwrap();
    assert!(
        broken.saves.load(Ordering::SeqCst) >= 1,
        "the final save ran"
    );
    let metrics = moat_proxy::prometheus().unwrap().render();
    let errors = metrics
        .lines()
        .find_map(|l| l.strip_prefix("moat_spend_save_errors_total "))
        .unwrap_or_else(|| panic!("no save error counted:\n{metrics}"));
    assert!(errors.parse::<f64>().unwrap() >= 1.0, "{errors}");
}

#[tokio::test]
async fn a_gateway_that_cannot_read_its_spend_does_not_start() {
    let sim = moat_testkit::SimUpstream::start().await.unwrap();
    let broken = Arc::new(BrokenStore {
        fail_load: true,
        ..BrokenStore::default()
    });
    let result = AppState::with_clock(
        broken_config(&sim),
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap()
    .with_spend_store(broken)
    .await;
    match result {
        Err(e @ StateError::Spend(_)) => {
            assert_eq!(
                e.to_string(),
                "cannot load the saved budget spend: store worker failed: disk gone"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started without its spend"),
    }
}
