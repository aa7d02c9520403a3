//! Outages (every request fails until cleared) and per-model request counts, over real HTTP.

use moat_testkit::{Fault, SimOptions, SimUpstream};
use serde_json::{json, Value};

use crate::common::{client, post, post_json};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn message(model: &str) -> Value {
    json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
}

fn unavailable() -> Fault {
    Fault::Status {
        status: 503,
        body: None,
        retry_after: Some("30".into()),
        retry_after_ms: None,
    }
}

async fn get_status(sim: &SimUpstream, path: &str) -> u16 {
    let url = format!("http://{}{path}", sim.addr());
    client().get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn outage_fails_every_route_until_cleared() {
    let sim = SimUpstream::start().await.unwrap();
    sim.set_outage(Some(unavailable()));
    for _ in 0..3 {
        let response = post(&sim, CHAT, &chat("a")).send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "30");
    }
    let (code, body) = post_json(&sim, MESSAGES, &message("c")).await;
    assert_eq!(code, 503);
    assert_eq!(body["type"], "error", "shaped as the route's protocol");
    assert_eq!(get_status(&sim, "/v1/models").await, 503);
    assert_eq!(get_status(&sim, "/v1/no-such-route").await, 503);
    let (code, _) = post_json(&sim, CHAT, &json!("not an object")).await;
    assert_eq!(code, 503, "before validation");

    sim.set_outage(None);
    assert_eq!(post_json(&sim, CHAT, &chat("a")).await.0, 200);
    assert_eq!(post_json(&sim, MESSAGES, &message("c")).await.0, 200);
    assert_eq!(get_status(&sim, "/v1/no-such-route").await, 404);
    assert_eq!(sim.request_count(), 10);
}

#[tokio::test]
async fn outage_comes_before_auth_and_leaves_queued_faults() {
    let options = SimOptions {
        api_key: Some("sk-sim".into()),
        ..SimOptions::default()
    };
    let sim = SimUpstream::start_with(options).await.unwrap();
    sim.push_fault(Fault::ContextLengthExceeded);
    sim.push_fault_for_model("a", Fault::ContentPolicy);
    sim.set_outage(Some(unavailable()));
    // No key: the outage answers, not the 401, and no queued fault is used up.
    assert_eq!(post_json(&sim, CHAT, &chat("a")).await.0, 503);
    assert_eq!(post_json(&sim, CHAT, &chat("b")).await.0, 503);

    sim.set_outage(None);
    let keyed = |model: &str| post(&sim, CHAT, &chat(model)).bearer_auth("sk-sim").send();
    let body: Value = keyed("a").await.unwrap().json().await.unwrap();
    assert_eq!(body["error"]["code"], "content_policy_violation");
    let body: Value = keyed("b").await.unwrap().json().await.unwrap();
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(keyed("b").await.unwrap().status(), 200);
    assert_eq!(post_json(&sim, CHAT, &chat("b")).await.0, 401);
}

#[tokio::test]
async fn reset_outage_refuses_connections_then_recovers() {
    let sim = SimUpstream::start().await.unwrap();
    sim.set_outage(Some(Fault::ResetBeforeHeaders));
    for _ in 0..3 {
        let err = post(&sim, CHAT, &chat("a")).send().await.unwrap_err();
        assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    }
    // A different outage replaces the first.
    sim.set_outage(Some(unavailable()));
    assert_eq!(post_json(&sim, CHAT, &chat("a")).await.0, 503);
    sim.set_outage(None);
    assert_eq!(post_json(&sim, CHAT, &chat("a")).await.0, 200);
    assert_eq!(sim.request_count_for_model("a"), 5);
}

#[tokio::test]
async fn requests_are_counted_per_model() {
    let sim = SimUpstream::start().await.unwrap();
    assert_eq!(sim.request_count_for_model("primary"), 0);
    sim.set_outage(Some(unavailable()));
    post_json(&sim, CHAT, &chat("primary")).await;
    post_json(&sim, CHAT, &chat("primary")).await;
    sim.set_outage(None);
    post_json(&sim, CHAT, &chat("primary")).await;
    post_json(&sim, CHAT, &chat("fallback")).await;
    post_json(&sim, MESSAGES, &message("claude")).await;
    post_json(
        &sim,
        "/v1/embeddings",
        &json!({"model": "fallback", "input": "x"}),
    )
    .await;
    get_status(&sim, "/v1/models/primary").await;

    assert_eq!(sim.request_count_for_model("primary"), 3);
    assert_eq!(sim.request_count_for_model("fallback"), 2);
    assert_eq!(sim.request_count_for_model("claude"), 1);
    assert_eq!(sim.request_count_for_model("prim"), 0, "exact match only");
    assert_eq!(sim.request_count(), 7, "the GET names no model in a body");
}
