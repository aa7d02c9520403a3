//! Anthropic clients through the live gateway: messages and token counts, passed through to an
//! Anthropic-kind provider or translated to an OpenAI-kind one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{events_of, json_of, Harness, UPSTREAM_KEY};
use serde_json::{json, Value};

fn messages(model: &str) -> Value {
    json!({"model": model, "max_tokens": 6, "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
           "messages": [{"role": "user", "content": "Hello"}]})
}

#[tokio::test]
async fn messages_passthrough_keeps_headers_query_and_unknown_fields() {
    let h = Harness::start().await;
    let mut body = messages("claude");
    body["context_management"] = json!({"edits": []});
    let r = h
        .http
        .post(h.url("/v1/messages?beta=true"))
        .bearer_auth(&h.key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "context-management-2025-06-27")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["usage"]["output_tokens"], 6);
    assert_eq!(v["stop_reason"], "max_tokens");
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/messages?beta=true");
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("context-management-2025-06-27")
    );
    assert_eq!(seen.header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(seen.body["context_management"], json!({"edits": []}));
    assert_eq!(
        seen.body["system"], body["system"],
        "system blocks untouched"
    );
    assert_eq!(seen.body["model"], "sim-claude");
}

#[tokio::test]
async fn messages_stream_passthrough_relays_every_event() {
    let h = Harness::start().await;
    let mut body = messages("claude");
    body["stream"] = json!(true);
    let events = events_of(h.anthropic("/v1/messages", &body).await).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    assert!(kinds.contains(&"content_block_delta") && kinds.contains(&"message_delta"));
}

#[tokio::test]
async fn messages_to_an_openai_target_are_translated_both_ways() {
    let h = Harness::start().await;
    let (status, v) = json_of(h.anthropic("/v1/messages", &messages("gpt")).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 6);
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
}

#[tokio::test]
async fn messages_stream_to_an_openai_target_arrives_as_anthropic_events() {
    let h = Harness::start().await;
    let mut body = messages("gpt");
    body["stream"] = json!(true);
    let events = events_of(h.anthropic("/v1/messages", &body).await).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"message_stop"), "{kinds:?}");
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .unwrap()
        .json();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 6);
    let text: String = events
        .iter()
        .filter_map(|e| e.json()["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert!(text.split_whitespace().count() >= 3, "{text}");
}

#[tokio::test]
async fn tool_use_translates_to_an_openai_target_and_back() {
    let h = Harness::start().await;
    let tool = json!({"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}});
    let body = json!({"model": "gpt", "max_tokens": 50, "tools": [tool], "tool_choice": {"type": "any"},
                      "messages": [{"role": "user", "content": "Find it"}]});
    let (status, v) = json_of(h.anthropic("/v1/messages", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stop_reason"], "tool_use");
    let block = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(block["name"], "lookup");
    assert!(block["input"]["q"].is_string());
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(seen.body["tool_choice"], "required");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = events_of(h.anthropic("/v1/messages", &streamed).await).await;
    let start = events
        .iter()
        .find(|e| {
            e.event.as_deref() == Some("content_block_start")
                && e.json()["content_block"]["type"] == "tool_use"
        })
        .unwrap()
        .json();
    assert_eq!(start["content_block"]["name"], "lookup");
    let partial: String = events
        .iter()
        .filter_map(|e| {
            e.json()["delta"]["partial_json"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(serde_json::from_str::<Value>(&partial).unwrap()["q"].is_string());
}

#[tokio::test]
async fn count_tokens_is_relayed_or_estimated() {
    let h = Harness::start().await;
    let body = json!({"model": "claude", "messages": [{"role": "user", "content": "count these five words"}]});
    let (status, v) = json_of(h.anthropic("/v1/messages/count_tokens", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        h.sim.requests().pop().unwrap().path,
        "/v1/messages/count_tokens"
    );

    let before = h.sim.request_count();
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "count these five words"}]});
    let r = h.anthropic("/v1/messages/count_tokens", &body).await;
    assert_eq!(r.headers()["x-moat-estimate"], "true");
    let (status, v) = json_of(r).await;
    assert_eq!(status, 200);
    assert_eq!(v["input_tokens"], 6, "22 characters at ~4 per token");
    assert_eq!(h.sim.request_count(), before, "estimated locally");
}
