//! API key enforcement, request recording and shutdown.

use std::time::Duration;

use moat_testkit::{Fault, SimOptions, SimUpstream};
use serde_json::{json, Value};

use crate::common::{client, post, post_json};

async fn keyed() -> SimUpstream {
    let options = SimOptions {
        api_key: Some("sk-sim".into()),
        ..SimOptions::default()
    };
    SimUpstream::start_with(options).await.unwrap()
}

fn chat() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

fn message() -> Value {
    json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn openai_routes_require_bearer() {
    let sim = keyed().await;
    let response = post(&sim, "/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let ok = post(&sim, "/v1/chat/completions", &chat())
        .bearer_auth("sk-sim")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = post(&sim, "/v1/embeddings", &json!({"model": "e", "input": "x"}))
        .bearer_auth("sk-other")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn anthropic_routes_take_x_api_key_or_bearer() {
    let sim = keyed().await;
    let response = post(&sim, "/v1/messages", &message())
        .header("x-api-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let ok = post(&sim, "/v1/messages", &message())
        .header("x-api-key", "sk-sim")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = post(&sim, "/v1/messages", &message())
        .bearer_auth("sk-sim")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let models = client()
        .get(format!("{}/models", sim.openai_base_url()))
        .header("x-api-key", "sk-sim")
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
}

#[tokio::test]
async fn requests_are_recorded_in_order() {
    let sim = SimUpstream::start().await.unwrap();
    post(&sim, "/v1/messages?beta=true", &message())
        .header("anthropic-beta", "a,b")
        .send()
        .await
        .unwrap();
    sim.push_fault(Fault::Status {
        status: 500,
        body: None,
        retry_after: None,
        retry_after_ms: None,
    });
    let (status, _) = post_json(&sim, "/v1/chat/completions", &chat()).await;
    assert_eq!(status, 500, "faulted requests are recorded too");
    client()
        .post(format!("{}/embeddings", sim.openai_base_url()))
        .body("not json")
        .send()
        .await
        .unwrap();

    let requests = sim.requests();
    assert_eq!(sim.request_count(), 3);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/messages?beta=true");
    assert_eq!(requests[0].header("anthropic-beta"), Some("a,b"));
    assert_eq!(requests[0].header("Anthropic-Version"), Some("2023-06-01"));
    assert_eq!(requests[0].body, message());
    assert_eq!(requests[1].path, "/v1/chat/completions");
    assert_eq!(requests[2].body, Value::Null);
}

#[tokio::test]
async fn shutdown_closes_held_connections_and_the_port() {
    let sim = SimUpstream::start().await.unwrap();
    let addr = sim.addr();
    sim.push_fault(Fault::NeverAnswer);
    let held = tokio::spawn(post(&sim, "/v1/chat/completions", &chat()).send());
    // Wait until the held request has arrived, without sleeping on a guess.
    tokio::time::timeout(Duration::from_secs(2), async {
        while sim.request_count() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(2), sim.shutdown())
        .await
        .unwrap();
    let held = held.await.unwrap();
    assert!(
        held.is_err(),
        "the held request fails when the sim shuts down"
    );
    let after = client()
        .get(format!("http://{addr}/v1/models"))
        .send()
        .await;
    assert!(after.is_err());
}
