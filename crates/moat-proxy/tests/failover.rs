//! Failover through the live gateway against the simulated provider: retries with backoff and
//! `retry-after`, fallbacks, timeouts by criticality, the first-token hold, stream faults after
//! the first byte, context-length and content-policy refusals, the circuit breaker of a primary
//! that goes down and recovers, and the accounting of the target that answered.
//!
//! Every config here uses short timeouts and backoffs; waits are bounded from above (nothing
//! hangs) and, where the gateway must wait, from below.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{events_of, json_of, Event, Harness, UPSTREAM_KEY};
use moat_audit::{verify, AuditRecord, Circuit, Incident};
use moat_config::{
    Config, Criticality, Durability, ModelConfig, ProviderConfig, TargetConfig, Timeouts,
};
use moat_core::{ManualClock, Protocol, Secret};
use moat_store::{AuditQuery, AuditStore, MemoryStore};
use moat_testkit::{Fault, SimOptions, SimUpstream};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn chat_stream(model: &str) -> Value {
    let mut body = chat(model);
    body["stream"] = json!(true);
    body
}

fn msg(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

fn status(code: u16) -> Fault {
    Fault::Status {
        status: code,
        body: None,
        retry_after: None,
        retry_after_ms: None,
    }
}

/// Quick retries: one retry per target after at most 40 ms.
fn fast(c: &mut Config) {
    c.failover.retries = 1;
    c.failover.backoff_base = Duration::from_millis(20);
    c.failover.backoff_max = Duration::from_millis(40);
}

/// The timeouts of requests without a workflow (criticality `medium`).
fn medium(c: &mut Config) -> &mut Timeouts {
    &mut c.failover.timeouts[Criticality::Medium.index()]
}

fn assert_openai_error(v: &Value) {
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v["error"].get("type").is_some(), "{v}");
}

fn assert_anthropic_error(v: &Value, kind: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
}

fn done(events: &[Event]) -> bool {
    events.iter().any(|e| e.data == "[DONE]")
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    let h = Harness::start_with(fast).await;
    h.sim.push_fault_for_model(
        "sim-gpt",
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("1".into()),
            retry_after_ms: None,
        },
    );
    let started = Instant::now();
    let r = h.openai("/v1/chat/completions", &chat("gpt")).await;
    let waited = started.elapsed();
    assert_eq!(r.headers()["x-moat-model"], "sim-gpt");
    let (s, v) = json_of(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 2);
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_and_retry_after_ms_is_honoured() {
    let h = Harness::start_with(fast).await;
    h.sim.push_fault_for_model("sim-gpt", status(429));
    let started = Instant::now();
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("gpt")).await).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 2);
    assert!(started.elapsed() < Duration::from_millis(700));

    h.sim.push_fault_for_model(
        "sim-claude",
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("30".into()),
            retry_after_ms: Some("300".into()),
        },
    );
    let started = Instant::now();
    let (s, v) = json_of(h.anthropic("/v1/messages", &msg("claude")).await).await;
    let waited = started.elapsed();
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 2);
    // retry-after-ms wins over retry-after, as in the SDKs.
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_500_once_is_retried_on_the_same_target() {
    let h = Harness::start_with(fast).await;
    h.sim.push_fault_for_model("sim-primary", status(500));
    let started = Instant::now();
    let r = h.openai("/v1/chat/completions", &chat("primary")).await;
    assert_eq!(r.headers()["x-moat-provider"], "oa");
    let (s, v) = json_of(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["model"], "sim-primary");
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 2);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 0);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_persistent_503_exhausts_the_retries_then_falls_back() {
    let h = Harness::start_with(fast).await;
    for _ in 0..2 {
        h.sim.push_fault_for_model("sim-primary", status(503));
    }
    let r = h.openai("/v1/chat/completions", &chat("primary")).await;
    assert_eq!(r.headers()["x-moat-provider"], "an");
    let (s, v) = json_of(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["model"], "sim-claude", "{v}");
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 2);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 1);
}

#[tokio::test]
async fn a_persistent_503_without_fallback_reaches_the_client_in_its_shape() {
    let h = Harness::start_with(fast).await;
    for _ in 0..2 {
        h.sim.push_fault_for_model("sim-gpt", status(503));
    }
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("gpt")).await).await;
    assert_eq!(s, 503);
    assert_openai_error(&v);
    assert_eq!(
        v["error"]["message"],
        "The server is overloaded or not ready yet."
    );
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 2);

    // An OpenAI-kind upstream's 503 for an Anthropic client: translated, message kept.
    for _ in 0..2 {
        h.sim.push_fault_for_model("sim-gpt", status(503));
    }
    let (s, v) = json_of(h.anthropic("/v1/messages", &msg("gpt")).await).await;
    assert_eq!(s, 503);
    assert_anthropic_error(&v, "overloaded_error");
    assert_eq!(
        v["error"]["message"],
        "The server is overloaded or not ready yet."
    );
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 4);
}

#[tokio::test]
async fn a_connection_reset_before_headers_is_retried() {
    let h = Harness::start_with(fast).await;
    h.sim
        .push_fault_for_model("sim-gpt", Fault::ResetBeforeHeaders);
    let started = Instant::now();
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("gpt")).await).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 2);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out_then_falls_back() {
    let h = Harness::start_with(|c| {
        c.failover.retries = 0;
        medium(c).first_byte = Some(Duration::from_millis(300));
    })
    .await;
    h.sim
        .push_fault_for_model("sim-primary", Fault::NeverAnswer);
    let started = Instant::now();
    let r = h.openai("/v1/chat/completions", &chat("primary")).await;
    let waited = started.elapsed();
    assert_eq!(r.headers()["x-moat-provider"], "an");
    assert_eq!(json_of(r).await.0, 200);
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 1);
    // The criticality's 300 ms, not the provider's 1.5 s.
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1200),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_slow_first_token_fails_over_when_the_criticality_sets_first_token() {
    let h = Harness::start_with(|c| {
        c.failover.retries = 0;
        medium(c).first_token = Some(Duration::from_millis(300));
    })
    .await;
    h.sim.push_fault_for_model(
        "sim-primary",
        Fault::SlowFirstToken(Duration::from_millis(2000)),
    );
    let started = Instant::now();
    let r = h
        .openai("/v1/chat/completions", &chat_stream("primary"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-moat-provider"], "an");
    let events = events_of(r).await;
    let waited = started.elapsed();
    assert!(done(&events), "{events:?}");
    assert!(events.iter().all(|e| e.json().get("error").is_none()));
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 1);
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_slow_first_token_is_waited_for_without_first_token() {
    let h = Harness::start_with(|c| c.failover.retries = 0).await;
    h.sim.push_fault_for_model(
        "sim-primary",
        Fault::SlowFirstToken(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let r = h
        .openai("/v1/chat/completions", &chat_stream("primary"))
        .await;
    assert_eq!(r.headers()["x-moat-provider"], "oa");
    let events = events_of(r).await;
    assert!(done(&events), "{events:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 0);
}

#[tokio::test]
async fn a_stream_cut_mid_answer_ends_with_an_error_event_and_is_not_retried() {
    let h = Harness::start_with(fast).await;
    h.sim
        .push_fault_for_model("sim-primary", Fault::CutStream { after_events: 3 });
    let events = events_of(
        h.openai("/v1/chat/completions", &chat_stream("primary"))
            .await,
    )
    .await;
    assert!(!done(&events), "{events:?}");
    let last = events.last().unwrap().json();
    assert_eq!(last["error"]["code"], "upstream_error", "{events:?}");
    let content: String = events
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(!content.is_empty(), "the answer had started: {events:?}");
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 0);
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_event_after_the_idle_time() {
    let h = Harness::start_with(|c| {
        fast(c);
        medium(c).stream_idle = Some(Duration::from_millis(300));
    })
    .await;
    let mut body = msg("claude");
    body["stream"] = json!(true);
    h.sim
        .push_fault_for_model("sim-claude", Fault::StallStream { after_events: 3 });
    let started = Instant::now();
    let events = events_of(h.anthropic("/v1/messages", &body).await).await;
    let waited = started.elapsed();
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"), "{events:?}");
    assert!(last.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stalled for 300 ms"));
    assert!(events
        .iter()
        .all(|e| e.event.as_deref() != Some("message_stop")));
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 1);
    // The criticality's 300 ms, not the provider's 800.
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(750),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_malformed_chunk_is_not_forwarded_and_ends_the_stream_with_an_error_event() {
    let h = Harness::start_with(fast).await;
    h.sim
        .push_fault_for_model("sim-gpt", Fault::MalformedChunk { after_events: 2 });
    let text = h
        .openai("/v1/chat/completions", &chat_stream("gpt"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("{not json"), "{text}");
    let events = common::parse_sse(&text);
    assert!(!done(&events), "{events:?}");
    assert!(
        events.iter().all(|e| e.json().is_object()),
        "every event the client gets is JSON: {events:?}"
    );
    assert!(events.last().unwrap().json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not JSON"));

    let mut body = msg("claude");
    body["stream"] = json!(true);
    h.sim
        .push_fault_for_model("sim-claude", Fault::MalformedChunk { after_events: 2 });
    let text = h
        .anthropic("/v1/messages", &body)
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("{not json"), "{text}");
    let events = common::parse_sse(&text);
    assert_eq!(events.last().unwrap().event.as_deref(), Some("error"));
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 1);
}

#[tokio::test]
async fn a_complete_stream_without_done_is_finished_promptly() {
    let h = Harness::start_with(fast).await;
    h.sim.push_fault_for_model("sim-gpt", Fault::NoDone);
    let started = Instant::now();
    let events = events_of(h.openai("/v1/chat/completions", &chat_stream("gpt")).await).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert!(events.iter().all(|e| e.json().get("error").is_none()));
    // Sooner than the 800 ms idle timeout: the upstream's clean end is enough.
    assert!(started.elapsed() < Duration::from_millis(700));
}

#[tokio::test]
async fn a_context_length_error_goes_to_the_context_fallback() {
    let h = Harness::start_with(|c| {
        fast(c);
        let mut small = ModelConfig::new("small", vec![TargetConfig::new("oa", "sim-small")]);
        small.context_fallback = Some("big".into());
        small.fallbacks = vec!["claude".into()];
        c.models.push(small);
        c.models.push(ModelConfig::new(
            "big",
            vec![TargetConfig::new("oa", "sim-big")],
        ));
    })
    .await;
    h.sim
        .push_fault_for_model("sim-small", Fault::ContextLengthExceeded);
    let r = h.openai("/v1/chat/completions", &chat("small")).await;
    assert_eq!(r.headers()["x-moat-model"], "sim-big");
    let (s, v) = json_of(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["model"], "sim-big");
    assert_eq!(h.sim.request_count_for_model("sim-small"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-big"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 0);
}

#[tokio::test]
async fn a_context_length_error_without_context_fallback_passes_through_unretried() {
    let h = Harness::start_with(fast).await;
    h.sim
        .push_fault_for_model("sim-primary", Fault::ContextLengthExceeded);
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("primary")).await).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 0);
}

#[tokio::test]
async fn a_content_policy_rejection_is_answered_once_with_the_providers_reason() {
    let h = Harness::start_with(fast).await;
    h.sim
        .push_fault_for_model("sim-primary", Fault::ContentPolicy);
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("primary")).await).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "content_policy_violation");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("safety system"));
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 1);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 0);

    // Anthropic's refusal for an OpenAI client: translated, the reason kept verbatim.
    h.sim
        .push_fault_for_model("sim-claude", Fault::ContentPolicy);
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("claude")).await).await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        "Output blocked by content filtering policy"
    );
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 1);
}

#[tokio::test]
async fn the_total_time_limit_bounds_retries_and_streams() {
    let h = Harness::start_with(|c| {
        fast(c);
        c.failover.retries = 3;
        medium(c).total = Some(Duration::from_millis(400));
    })
    .await;
    h.sim.push_fault_for_model("sim-gpt", Fault::NeverAnswer);
    let started = Instant::now();
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("gpt")).await).await;
    let waited = started.elapsed();
    assert_eq!(s, 504, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("time limit"));
    assert_eq!(h.sim.request_count_for_model("sim-gpt"), 1);
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1000),
        "{waited:?}"
    );

    // Mid-stream: past the limit, the stream ends with the protocol's error event.
    h.sim
        .push_fault_for_model("sim-gpt", Fault::StallStream { after_events: 3 });
    let started = Instant::now();
    let events = events_of(h.openai("/v1/chat/completions", &chat_stream("gpt")).await).await;
    let waited = started.elapsed();
    assert!(!done(&events));
    assert!(events.last().unwrap().json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("time limit"));
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(750),
        "{waited:?}"
    );
}

/// A second simulated provider for the fallback, so that an outage of the first leaves it up.
async fn backup_sim() -> SimUpstream {
    SimUpstream::start_with(SimOptions {
        api_key: Some(UPSTREAM_KEY.into()),
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_primary_down_for_a_minute_opens_its_breaker_and_recovers() {
    let backup = backup_sim().await;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let backup_url = backup.openai_base_url();
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start_over_store(
        move |c| {
            // Sync: each request's record, and the breaker incidents queued before it, are
            // committed before its response completes.
            c.audit.durability = Durability::Sync;
            c.failover.retries = 0;
            c.failover.breaker.failure_threshold = 2;
            c.failover.breaker.open_for = Duration::from_secs(60);
            c.failover.breaker.close_after = 1;
            let mut p = ProviderConfig::new("backup", Protocol::OpenAi, backup_url);
            p.api_key = Some(Secret::new(UPSTREAM_KEY.to_string()));
            c.providers.push(p);
            c.models.push(ModelConfig::new(
                "spare",
                vec![TargetConfig::new("backup", "sim-spare")],
            ));
            let mut main = ModelConfig::new("main", vec![TargetConfig::new("oa", "sim-primary")]);
            main.fallbacks = vec!["spare".into()];
            c.models.push(main);
            // Another model on the same provider and model: it shares the breaker.
            c.models.push(ModelConfig::new(
                "solo",
                vec![TargetConfig::new("oa", "sim-primary")],
            ));
        },
        clock.clone(),
        store.clone(),
    )
    .await;
    let request_id = |r: &reqwest::Response| {
        r.headers()["x-moat-request-id"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let mut caused = Vec::new();
    let (main, solo) = (chat("main"), chat("solo"));
    let ask = |body: &'static str| {
        let body = if body == "main" { &main } else { &solo };
        h.openai("/v1/chat/completions", body)
    };
    let answered_by =
        |r: &reqwest::Response| r.headers()["x-moat-provider"].to_str().unwrap().to_string();

    h.sim.set_outage(Some(status(503)));
    // Two failures open the breaker; both requests are rescued by the fallback.
    for n in 1..=2 {
        let r = ask("main").await;
        assert_eq!(
            (r.status().as_u16(), answered_by(&r)),
            (200, "backup".into())
        );
        assert_eq!(h.sim.request_count_for_model("sim-primary"), n);
        caused.push(request_id(&r));
    }
    // Open: the primary is not touched at all.
    for n in 1..=3 {
        let r = ask("main").await;
        assert_eq!(
            (r.status().as_u16(), answered_by(&r)),
            (200, "backup".into())
        );
        assert_eq!(h.sim.request_count_for_model("sim-primary"), 2);
        assert_eq!(backup.request_count_for_model("sim-spare"), 2 + n);
    }
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(
            r#"moat_breaker_transitions_total{provider="oa",model="sim-primary",to="open"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"moat_fallbacks_total{from_provider="oa",to_provider="backup"}"#));

    // A route with no other target: a clear 503 with the time until the next probe.
    clock.advance_ms(30_000);
    let r = ask("solo").await;
    assert_eq!(r.headers()["retry-after"], "30");
    let (s, v) = json_of(r).await;
    assert_eq!(s, 503);
    assert_eq!(v["error"]["code"], "all_targets_unavailable");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("all targets unavailable"));
    let (s, v) = json_of(h.anthropic("/v1/messages", &msg("solo")).await).await;
    assert_eq!(s, 503);
    assert_anthropic_error(&v, "overloaded_error");
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 2);

    // The minute is over and the primary is back: one probe closes the breaker.
    h.sim.set_outage(None);
    clock.advance_ms(30_000);
    let r = ask("main").await;
    assert_eq!((r.status().as_u16(), answered_by(&r)), (200, "oa".into()));
    let probe = request_id(&r);
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 3);
    for n in 1..=2 {
        let r = ask("main").await;
        assert_eq!(answered_by(&r), "oa");
        assert_eq!(h.sim.request_count_for_model("sim-primary"), 3 + n);
    }
    assert_eq!(backup.request_count_for_model("sim-spare"), 5);
    let metrics = h.metrics().await;
    assert!(metrics.contains(
        r#"moat_breaker_transitions_total{provider="oa",model="sim-primary",to="closed"}"#
    ));

    // Each transition is an incident record in the chain, at the gateway clock's time, naming
    // the request that caused it: the second failure opened it, the probe half-opened and
    // closed it.
    let mut query = AuditQuery::new(1_000);
    query.kind = Some("incident".into());
    let incidents: Vec<AuditRecord> = store
        .query_audit(&query)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect();
    let breaker = |from, to| Incident::Breaker {
        provider: "oa".into(),
        model: "sim-primary".into(),
        from,
        to,
    };
    let got: Vec<(i64, &str, Option<&Incident>, u16)> = incidents
        .iter()
        .map(|r| {
            (
                r.ts_ms,
                r.request_id.as_str(),
                r.incident.as_ref(),
                r.status,
            )
        })
        .collect();
    let start = 1_700_000_000_000;
    assert_eq!(
        got,
        vec![
            (
                start,
                caused[1].as_str(),
                Some(&breaker(Circuit::Closed, Circuit::Open)),
                0
            ),
            (
                start + 60_000,
                probe.as_str(),
                Some(&breaker(Circuit::Open, Circuit::HalfOpen)),
                0
            ),
            (
                start + 60_000,
                probe.as_str(),
                Some(&breaker(Circuit::HalfOpen, Circuit::Closed)),
                0
            ),
        ]
    );
    // A breaker is shared by every caller of its target: the incident names no principal.
    assert!(incidents
        .iter()
        .all(|r| r.key_id.is_none() && r.account.is_none() && r.workflow.is_none()));
    let all: Vec<AuditRecord> = store
        .query_audit(&AuditQuery::new(1_000))
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect();
    // 2 + 3 + 1 (solo) + 1 (anthropic solo) + 1 probe + 2 requests, and the 3 incidents.
    assert_eq!(all.len(), 13);
    assert!(verify(all, None).is_ok());
}

#[tokio::test]
async fn a_fallback_answer_reports_the_model_that_answered_and_its_usage() {
    let h = Harness::start_with(fast).await;
    for _ in 0..2 {
        h.sim.push_fault_for_model("sim-primary", status(502));
    }
    let r = h.openai("/v1/chat/completions", &chat("primary")).await;
    assert_eq!(r.headers()["x-moat-provider"], "an");
    assert_eq!(r.headers()["x-moat-model"], "sim-claude");
    let (s, v) = json_of(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["model"], "sim-claude");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{v}");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{v}");
    // Three attempts: the primary and its retry, then the fallback.
    assert_eq!(h.sim.request_count_for_model("sim-primary"), 2);
    assert_eq!(h.sim.request_count_for_model("sim-claude"), 1);

    // Streamed: the usage chunk the client asked for comes from the fallback.
    for _ in 0..2 {
        h.sim.push_fault_for_model("sim-primary", status(502));
    }
    let mut body = chat_stream("primary");
    body["stream_options"] = json!({"include_usage": true});
    let r = h.openai("/v1/chat/completions", &body).await;
    assert_eq!(r.headers()["x-moat-model"], "sim-claude");
    let events = events_of(r).await;
    assert!(done(&events));
    let usage = events
        .iter()
        .find_map(|e| {
            let v = e.json();
            v["usage"]["completion_tokens"].as_u64()
        })
        .expect("a usage chunk");
    assert!(usage > 0);
    assert!(events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .all(|e| e.json()["model"] == "sim-claude"));
    let metrics = h.metrics().await;
    assert!(metrics.contains(
        r#"moat_requests_total{operation="chat",model="primary",provider="an",status="200"}"#
    ));
}
