//! Operations endpoints and graceful shutdown through the live gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness};
use moat_testkit::Fault;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let h = Harness::start().await;
    let (s, v) = json_of(h.http.get(h.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    let (s, _) = json_of(h.http.get(h.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(s, 200);

    let body =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    assert_eq!(h.openai("/v1/chat/completions", &body).await.status(), 200);
    // A model name the client invents must not become a label: each would be a new time series.
    let probe = json!({"model": "probe-7f3a9c", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(h.openai("/v1/chat/completions", &probe).await.status(), 404);
    let text = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_token_usage_bucket",
        "moat_requests_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(text.contains(r#"gen_ai_request_model="gpt""#));
    assert!(!text.contains("probe-7f3a9c"), "{text}");
    assert!(
        text.contains(r#"gen_ai_request_model="unconfigured""#),
        "{text}"
    );
    assert!(text.contains(r#"gen_ai_provider_name="oa""#));
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let h = Harness::start().await;
    // The first event arrives late, so the stream is in flight when shutdown begins.
    h.sim
        .push_fault(Fault::SlowFirstToken(Duration::from_millis(400)));
    let body = json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
    let response = h.openai("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let Harness { gateway, .. } = h;
    let stop = tokio::spawn(gateway.shutdown());
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
