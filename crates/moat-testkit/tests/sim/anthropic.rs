//! Anthropic Messages over HTTP.

use moat_testkit::SimUpstream;
use serde_json::{json, Value};

use crate::common::{client, post_json, post_stream, words, Event};

const PATH: &str = "/v1/messages";

fn request(text: &str) -> Value {
    json!({
        "model": "sim-claude",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": text}],
    })
}

fn tools() -> Value {
    json!([{
        "name": "read_file",
        "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}, "lines": {"type": "number"}}, "required": ["path", "lines"]},
    }])
}

#[tokio::test]
async fn message_has_the_anthropic_shape() {
    let sim = SimUpstream::start().await.unwrap();
    let (status, reply) = post_json(&sim, PATH, &request("hello there")).await;
    assert_eq!(status, 200);
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["model"], "sim-claude");
    assert!(reply["id"].as_str().unwrap().starts_with("msg_01"));
    assert_eq!(reply["stop_reason"], "end_turn");
    assert!(reply["stop_sequence"].is_null());
    let text = reply["content"][0]["text"].as_str().unwrap();
    assert_eq!(reply["content"][0]["type"], "text");
    assert!(text.starts_with("Simulated reply from sim-claude: "));
    assert_eq!(words(text), 24);
    let usage = &reply["usage"];
    assert_eq!(usage["input_tokens"], 5);
    assert_eq!(usage["output_tokens"], 24);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);

    let (_, again) = post_json(&sim, PATH, &request("hello there")).await;
    assert_eq!(again, reply);
}

#[tokio::test]
async fn max_tokens_and_beta_query() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("cut me");
    body["max_tokens"] = json!(4);
    let (status, reply) = post_json(&sim, "/v1/messages?beta=true", &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["stop_reason"], "max_tokens");
    assert_eq!(reply["usage"]["output_tokens"], 4);
    assert_eq!(words(reply["content"][0]["text"].as_str().unwrap()), 4);
    assert_eq!(sim.requests()[0].path, "/v1/messages?beta=true");
}

#[tokio::test]
async fn required_header_and_fields() {
    let sim = SimUpstream::start().await.unwrap();
    let response = client()
        .post(format!("{}/v1/messages", sim.anthropic_base_url()))
        .json(&request("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().contains_key("request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: header is required"
    );
    assert!(body["request_id"].is_string());

    let mut no_max = request("x");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let (status, body) = post_json(&sim, PATH, &no_max).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "max_tokens: Field required");

    let mut thinking = request("x");
    thinking["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let (status, _) = post_json(&sim, PATH, &thinking).await;
    assert_eq!(status, 400, "budget must be below max_tokens");
}

fn payloads(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let payload = e.json();
            assert_eq!(
                e.name.as_deref(),
                payload["type"].as_str(),
                "event name matches type"
            );
            payload
        })
        .collect()
}

#[tokio::test]
async fn stream_follows_anthropic_event_order() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, whole) = post_json(&sim, PATH, &request("stream it")).await;
    let mut body = request("stream it");
    body["stream"] = json!(true);
    let events = post_stream(&sim, PATH, &body).await;
    let payloads = payloads(&events);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "ping", "content_block_start"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(names[3..names.len() - 3]
        .iter()
        .all(|n| *n == "content_block_delta"));

    let start = &payloads[0]["message"];
    assert_eq!(
        start["usage"]["input_tokens"],
        whole["usage"]["input_tokens"]
    );
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(start["content"], json!([]));
    assert_eq!(
        payloads[2]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = payloads[3..names.len() - 3]
        .iter()
        .map(|p| {
            assert_eq!(p["delta"]["type"], "text_delta");
            p["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, whole["content"][0]["text"].as_str().unwrap());
    let delta = &payloads[names.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 24);
    assert!(events.iter().all(|e| e.data != "[DONE]"));
}

#[tokio::test]
async fn tool_use_block_and_input_json_deltas() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("read it");
    body["tools"] = tools();
    body["tool_choice"] = json!({"type": "tool", "name": "read_file"});
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["stop_reason"], "tool_use");
    let block = &reply["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_01"));
    assert_eq!(block["name"], "read_file");
    assert_eq!(block["input"], json!({"path": "sim", "lines": 1}));

    body["stream"] = json!(true);
    let events = post_stream(&sim, PATH, &body).await;
    let payloads = payloads(&events);
    assert_eq!(payloads[2]["content_block"]["type"], "tool_use");
    assert_eq!(payloads[2]["content_block"]["input"], json!({}));
    assert_eq!(payloads[2]["content_block"]["id"], block["id"]);
    let fragments: Vec<&str> = payloads
        .iter()
        .filter(|p| p["type"] == "content_block_delta")
        .map(|p| {
            assert_eq!(p["delta"]["type"], "input_json_delta");
            p["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert!(fragments.len() >= 3);
    let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(input, block["input"]);

    // Answering tool results gets text; so does tool_choice none.
    let mut answered = request("read it");
    answered["tools"] = tools();
    answered["messages"] = json!([
        {"role": "user", "content": "read it"},
        {"role": "assistant", "content": [block.clone()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "file body"}]},
    ]);
    let (_, reply) = post_json(&sim, PATH, &answered).await;
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(reply["usage"]["input_tokens"], 3 + 2 + 2);

    let mut none = request("read it");
    none["tools"] = tools();
    none["tool_choice"] = json!({"type": "none"});
    let (_, reply) = post_json(&sim, PATH, &none).await;
    assert_eq!(reply["content"][0]["type"], "text");
}

#[tokio::test]
async fn thinking_comes_first_with_a_signature() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("think");
    body["max_tokens"] = json!(4096);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let (_, reply) = post_json(&sim, PATH, &body).await;
    let content = reply["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking");
    assert!(!content[0]["signature"].as_str().unwrap().is_empty());
    assert_eq!(content[1]["type"], "text");
    let thought_words = words(content[0]["thinking"].as_str().unwrap());
    assert_eq!(reply["usage"]["output_tokens"], thought_words + 24);

    body["stream"] = json!(true);
    let events = post_stream(&sim, PATH, &body).await;
    let payloads = payloads(&events);
    let delta_types: Vec<&str> = payloads
        .iter()
        .filter(|p| p["type"] == "content_block_delta")
        .map(|p| p["delta"]["type"].as_str().unwrap())
        .collect();
    let thinking: String = payloads
        .iter()
        .filter(|p| p["delta"]["type"] == "thinking_delta")
        .map(|p| p["delta"]["thinking"].as_str().unwrap())
        .collect();
    assert_eq!(thinking, content[0]["thinking"].as_str().unwrap());
    let signature_at = delta_types
        .iter()
        .position(|t| *t == "signature_delta")
        .unwrap();
    assert!(delta_types[..signature_at]
        .iter()
        .all(|t| *t == "thinking_delta"));
    assert!(delta_types[signature_at + 1..]
        .iter()
        .all(|t| *t == "text_delta"));
}

#[tokio::test]
async fn count_tokens_uses_the_same_rule() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, reply) = post_json(&sim, PATH, &request("count these four words")).await;
    let mut body = request("count these four words");
    body.as_object_mut().unwrap().remove("max_tokens");
    let (status, count) = post_json(&sim, "/v1/messages/count_tokens", &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        count,
        json!({"input_tokens": reply["usage"]["input_tokens"]})
    );
    assert_eq!(count["input_tokens"], 7);
}
