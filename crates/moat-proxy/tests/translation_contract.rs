//! The answer's contract across protocols, through the live gateway: structured-output requests
//! reach the other protocol's target, and fields a target cannot honour are refused by name in the
//! client's protocol, or served by a target that can.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, model, Harness};
use serde_json::{json, Value};

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
        "additionalProperties": false,
    })
}

/// The harness, plus `claude-then-gpt`: an Anthropic target that falls back to an OpenAI-kind one.
async fn harness() -> Harness {
    Harness::start_with(|c| {
        c.models
            .push(model("claude-then-gpt", "an", "sim-claude", &["gpt"]))
    })
    .await
}

#[tokio::test]
async fn chat_structured_output_reaches_an_anthropic_target_as_output_config() {
    let h = harness().await;
    let body = json!({
        "model": "claude",
        "messages": [{"role": "user", "content": "Alice is 30"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "Person", "strict": true, "schema": person_schema()}},
    });
    let (status, v) = json_of(h.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(status, 200, "{v}");
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/messages");
    let format = &seen.body["output_config"]["format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["schema"]["required"], json!(["name", "age"]));
    assert_eq!(
        format["schema"]["properties"]["age"]["description"],
        "{minimum: 0}"
    );
    assert!(seen.body.get("response_format").is_none());
}

#[tokio::test]
async fn messages_structured_output_reaches_an_openai_target_as_response_format() {
    let h = harness().await;
    for (field, value) in [
        (
            "output_config",
            json!({"format": {"type": "json_schema", "schema": person_schema()}}),
        ),
        (
            "output_format",
            json!({"type": "json_schema", "schema": person_schema()}),
        ),
    ] {
        let mut body = json!({"model": "gpt", "max_tokens": 50, "messages": [{"role": "user", "content": "Alice is 30"}]});
        body[field] = value;
        let (status, v) = json_of(h.anthropic("/v1/messages", &body).await).await;
        assert_eq!(status, 200, "{field}: {v}");
        let seen = h.sim.requests().pop().unwrap();
        assert_eq!(seen.path, "/v1/chat/completions");
        let format = &seen.body["response_format"];
        assert_eq!(format["type"], "json_schema", "{field}");
        assert_eq!(format["json_schema"]["schema"], person_schema(), "{field}");
        assert_eq!(format["json_schema"]["strict"], true, "{field}");
    }
}

#[tokio::test]
async fn a_field_the_target_cannot_honour_is_refused_by_name_in_the_clients_protocol() {
    let h = harness().await;
    let before = h.sim.requests().len();
    let body = json!({"model": "claude", "messages": [{"role": "user", "content": "Hi"}], "logprobs": true});
    let (status, v) = json_of(h.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "logprobs");
    assert_eq!(v["error"]["code"], "unsupported_parameter");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'logprobs'") && message.contains("sim-claude"),
        "{message}"
    );

    let body = json!({"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}],
                      "mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "x"}]});
    let (status, v) = json_of(h.anthropic("/v1/messages", &body).await).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'mcp_servers'"),
        "{v}"
    );

    assert_eq!(
        h.sim.requests().len(),
        before,
        "nothing reached the provider"
    );
    let metrics = h.metrics().await;
    for field in ["logprobs", "mcp_servers"] {
        let line = format!("moat_translation_refused_total{{field=\"{field}\"");
        assert!(metrics.contains(&line), "{field} not counted:\n{metrics}");
    }
}

#[tokio::test]
async fn a_refused_field_moves_on_to_a_target_that_can_honour_it() {
    let h = harness().await;
    let body = json!({"model": "claude-then-gpt", "messages": [{"role": "user", "content": "Hi"}],
                      "logprobs": true, "max_tokens": 5});
    let r = h.openai("/v1/chat/completions", &body).await;
    assert_eq!(r.headers()["x-moat-provider"], "oa");
    let (status, v) = json_of(r).await;
    assert_eq!(status, 200, "{v}");
    let seen = h.sim.requests();
    assert_eq!(seen.len(), 1, "only the OpenAI-kind target was called");
    assert_eq!(seen[0].body["logprobs"], true);
}

#[tokio::test]
async fn responses_reach_an_anthropic_target_whole_and_streamed_with_usage_metered() {
    let h = harness().await;
    let body = json!({"model": "claude", "instructions": "Be brief.", "input": "Say hi",
                      "max_output_tokens": 8, "store": false});
    let (status, v) = json_of(h.openai("/v1/responses", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "response");
    assert_eq!(
        v["status"], "incomplete",
        "8 tokens cut the sim's answer: {v}"
    );
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["usage"]["output_tokens"], 8);
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.body["max_tokens"], 8);
    assert_eq!(seen.body["system"][0]["text"], "Be brief.");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["max_output_tokens"] = json!(200);
    let events = common::events_of(h.openai("/v1/responses", &streamed).await).await;
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.first(), Some(&"response.created"), "{names:?}");
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    assert!(names.contains(&"response.output_text.delta"), "{names:?}");
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e.json()["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let completed = events.last().unwrap().json();
    let usage = &completed["response"]["usage"];
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{completed}");
    assert_eq!(h.sim.requests().pop().unwrap().path, "/v1/messages");
    // Metered like any answer: the token histogram counted the output of both requests.
    let metrics = h.metrics().await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("gen_ai_client_token_usage_count")
                && l.contains(r#"gen_ai_request_model="claude","#)
                && l.contains(r#"gen_ai_token_type="output""#)
                && !l.contains(r#"gen_ai_operation_name="chat""#)
        })
        .unwrap_or_else(|| panic!("no output token metric:\n{metrics}"));
    assert!(line.ends_with(" 2"), "{line}");
}
