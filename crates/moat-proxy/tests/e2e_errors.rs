//! Refusals and failures through the live gateway: every key-scope rule, bad bodies, unknown models,
//! dead and failing upstreams. Each answer is in the client's protocol, and nothing hangs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{events_of, json_of, Harness, KeyScope};
use moat_testkit::Fault;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn msg(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

/// POSTs with a given key to both protocols and returns (openai status/body, anthropic status/body).
async fn both(h: &Harness, key: &str, model: &str) -> ((u16, Value), (u16, Value)) {
    let o = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat(model))
        .send()
        .await
        .unwrap();
    let a = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&msg(model))
        .send()
        .await
        .unwrap();
    (json_of(o).await, json_of(a).await)
}

fn assert_openai_error(v: &Value, code: &str) {
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v["error"]["type"].is_string(), "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"].get("param").is_some(), "{v}");
}

fn assert_anthropic_error(v: &Value, kind: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

#[tokio::test]
async fn missing_wrong_expired_and_revoked_keys_get_401_in_each_protocol() {
    let h = Harness::start().await;
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .json(&chat("gpt"))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(s, 401);
    assert_openai_error(&v, "invalid_api_key");

    let mut wrong = h.key.clone();
    wrong.replace_range(wrong.len() - 4.., "zzzz");
    let expired = h
        .create_key(KeyScope {
            expires_at: Some(1),
            ..Default::default()
        })
        .await;
    let revoked = h
        .create_key(KeyScope {
            revoked_at: Some(1),
            ..Default::default()
        })
        .await;
    for (key, code) in [
        (&wrong, "invalid_api_key"),
        (&expired, "api_key_expired"),
        (&revoked, "api_key_revoked"),
    ] {
        let ((os, ov), (as_, av)) = both(&h, key, "gpt").await;
        assert_eq!((os, as_), (401, 401), "{code}");
        assert_openai_error(&ov, code);
        assert_anthropic_error(&av, "authentication_error");
    }
    assert_eq!(
        h.sim.request_count(),
        0,
        "refused requests never reach the provider"
    );
}

#[tokio::test]
async fn model_and_source_scope_get_403_in_each_protocol() {
    let h = Harness::start().await;
    let only_claude = h
        .create_key(KeyScope {
            models: vec!["claude".into()],
            ..Default::default()
        })
        .await;
    let ((os, ov), (as_, av)) = both(&h, &only_claude, "gpt").await;
    assert_eq!((os, as_), (403, 403));
    assert_openai_error(&ov, "model_not_allowed");
    assert_anthropic_error(&av, "permission_error");
    let ((os, _), (as_, _)) = both(&h, &only_claude, "claude").await;
    assert_eq!((os, as_), (200, 200));

    let elsewhere = h
        .create_key(KeyScope {
            cidrs: vec!["10.0.0.0/8", "2001:db8::/32"],
            ..Default::default()
        })
        .await;
    let ((os, ov), (as_, av)) = both(&h, &elsewhere, "gpt").await;
    assert_eq!((os, as_), (403, 403));
    assert_openai_error(&ov, "source_not_allowed");
    assert_anthropic_error(&av, "permission_error");
    let loopback = h
        .create_key(KeyScope {
            cidrs: vec!["127.0.0.0/8"],
            ..Default::default()
        })
        .await;
    assert_eq!(both(&h, &loopback, "gpt").await.0 .0, 200);
}

#[tokio::test]
async fn bad_bodies_get_400_and_unknown_models_404() {
    let h = Harness::start().await;
    let send = |path: &'static str, body: &'static str| {
        h.http
            .post(h.url(path))
            .bearer_auth(&h.key)
            .header("anthropic-version", "2023-06-01")
            .body(body)
            .send()
    };
    let (s, v) = json_of(send("/v1/chat/completions", "{not json").await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let (s, v) = json_of(send("/v1/messages", "[1,2]").await.unwrap()).await;
    assert_eq!(s, 400);
    assert_anthropic_error(&v, "invalid_request_error");
    let (s, v) = json_of(
        send("/v1/chat/completions", r#"{"model": 42}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, v["error"]["param"].as_str()), (400, Some("model")));
    let (s, _) = json_of(
        send(
            "/v1/chat/completions",
            r#"{"model": "gpt", "stream": "yes"}"#,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = json_of(send("/v1/chat/completions", "").await.unwrap()).await;
    assert_eq!(s, 400, "{v}");
    // A translated request with a wrong type inside is refused by the translator, not the provider.
    let r = h
        .openai(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": [{"role": "user", "content": 7}]}),
        )
        .await;
    let (s, v) = json_of(r).await;
    assert_eq!(s, 400, "{v}");

    let ((os, ov), (as_, av)) = both(&h, &h.key, "no-such-model").await;
    assert_eq!((os, as_), (404, 404));
    assert_openai_error(&ov, "model_not_found");
    assert_anthropic_error(&av, "not_found_error");

    let r = h
        .http
        .post(h.url("/v1/nothing-here"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = h
        .http
        .get(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn oversized_bodies_get_413_in_each_protocol() {
    let h = Harness::start().await;
    let big =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "x".repeat(100 * 1024)}]});
    let (s, v) = json_of(h.openai("/v1/chat/completions", &big).await).await;
    assert_eq!(s, 413);
    assert_openai_error(&v, "request_too_large");
    let (s, v) = json_of(h.anthropic("/v1/messages", &big).await).await;
    assert_eq!(s, 413);
    assert_anthropic_error(&v, "request_too_large");
}

#[tokio::test]
async fn a_dead_upstream_is_a_quick_502_and_a_fallback_rescues_it() {
    let h = Harness::start().await;
    let started = Instant::now();
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("dead")).await).await;
    assert_eq!(s, 502, "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "connection refused must not hang"
    );
    let (s, v) = json_of(h.anthropic("/v1/messages", &msg("dead")).await).await;
    assert_eq!(s, 502);
    assert_anthropic_error(&v, "api_error");

    let r = h
        .openai("/v1/chat/completions", &chat("dead-then-gpt"))
        .await;
    assert_eq!(r.headers()["x-moat-provider"], "oa");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn upstream_errors_fail_over_when_they_may_and_pass_through_when_not() {
    // Without retries of the same target: what is left is the move to the next one.
    let h = Harness::start_with(|c| c.failover.retries = 0).await;
    // 500 from the primary: the fallback (another protocol) answers.
    h.sim.push_fault_for_model(
        "sim-primary",
        Fault::Status {
            status: 500,
            body: None,
            retry_after: None,
            retry_after_ms: None,
        },
    );
    let r = h.openai("/v1/chat/completions", &chat("primary")).await;
    assert_eq!(r.headers()["x-moat-provider"], "an");
    assert_eq!(json_of(r).await.0, 200);

    // A 400 is the client's problem: no failover, the provider's error comes back in the client's shape.
    h.sim
        .push_fault_for_model("sim-primary", Fault::ContextLengthExceeded);
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("primary")).await).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    h.sim
        .push_fault_for_model("sim-claude", Fault::ContextLengthExceeded);
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("claude")).await).await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prompt is too long"),
        "{v}"
    );

    // A 429 with nothing to fall back to keeps its retry-after for the client.
    h.sim.push_fault_for_model(
        "sim-gpt",
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("7".into()),
            retry_after_ms: None,
        },
    );
    let r = h.openai("/v1/chat/completions", &chat("gpt")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
}

#[tokio::test]
async fn an_upstream_that_never_answers_is_a_504_after_the_first_byte_timeout() {
    // Without retries of the same target: what is left is the move to the next one.
    let h = Harness::start_with(|c| c.failover.retries = 0).await;
    h.sim.push_fault(Fault::NeverAnswer);
    let started = Instant::now();
    let (s, v) = json_of(h.openai("/v1/chat/completions", &chat("gpt")).await).await;
    assert_eq!(s, 504, "{v}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_stream_cut_mid_answer_ends_with_an_error_event_not_a_clean_finish() {
    let h = Harness::start().await;
    let mut body = chat("gpt");
    body["stream"] = json!(true);
    h.sim.push_fault(Fault::CutStream { after_events: 3 });
    let events = events_of(h.openai("/v1/chat/completions", &body).await).await;
    assert!(events.iter().all(|e| e.data != "[DONE]"), "{events:?}");
    assert!(
        events.last().unwrap().json()["error"]["message"].is_string(),
        "{events:?}"
    );

    let mut body = msg("claude");
    body["stream"] = json!(true);
    h.sim.push_fault(Fault::StallStream { after_events: 3 });
    let events = events_of(h.anthropic("/v1/messages", &body).await).await;
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"), "{events:?}");
    assert!(last.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stalled"));

    // Translated streams too: Anthropic upstream cut, OpenAI client.
    let mut body = chat("claude");
    body["stream"] = json!(true);
    h.sim.push_fault(Fault::CutStream { after_events: 4 });
    let events = events_of(h.openai("/v1/chat/completions", &body).await).await;
    assert!(events.iter().all(|e| e.data != "[DONE]"), "{events:?}");
    assert!(
        events.last().unwrap().json()["error"].is_object(),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_complete_stream_without_done_is_finished_promptly() {
    let h = Harness::start().await;
    let mut body = chat("gpt");
    body["stream"] = json!(true);
    h.sim.push_fault(Fault::NoDone);
    let events = events_of(h.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let finish = events.iter().find_map(|e| {
        e.json()["choices"][0]["finish_reason"]
            .as_str()
            .map(str::to_string)
    });
    assert!(finish.is_some());
}

#[tokio::test]
async fn a_silent_stream_gets_keep_alive_comments_not_data_lines() {
    let h = Harness::start().await;
    let mut body = chat("gpt");
    body["stream"] = json!(true);
    // Headers at once, first event after 500 ms; keep-alive is every 100 ms in the harness.
    h.sim
        .push_fault(Fault::SlowFirstToken(Duration::from_millis(500)));
    let text = h
        .openai("/v1/chat/completions", &body)
        .await
        .text()
        .await
        .unwrap();
    let comments = text.matches(": keep-alive\n\n").count();
    assert!(comments >= 2, "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let events = common::parse_sse(&text);
    assert!(
        events
            .iter()
            .all(|e| e.data == "[DONE]" || e.json().is_object()),
        "keep-alives are comments, never data"
    );
}
