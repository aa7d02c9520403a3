//! Structured output and refusals on OpenAI Chat Completions.

use moat_testkit::SimUpstream;
use serde_json::{json, Value};

use crate::common::{post_json, post_stream};
use crate::validate::{assert_valid, pydantic_schema};

const PATH: &str = "/v1/chat/completions";

fn request(text: &str, response_format: Value) -> Value {
    json!({
        "model": "sim-gpt",
        "messages": [{"role": "user", "content": text}],
        "response_format": response_format,
    })
}

fn json_schema() -> Value {
    json!({"type": "json_schema",
           "json_schema": {"name": "forecast", "schema": pydantic_schema(), "strict": true}})
}

/// The chunks' payloads, without `[DONE]`.
async fn chunks(sim: &SimUpstream, body: &Value) -> Vec<Value> {
    let events = post_stream(sim, PATH, body).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect()
}

#[tokio::test]
async fn json_schema_content_is_valid_for_the_schema() {
    let sim = SimUpstream::start().await.unwrap();
    let (status, reply) = post_json(&sim, PATH, &request("weather?", json_schema())).await;
    assert_eq!(status, 200);
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["message"]["refusal"].is_null());
    let content = choice["message"]["content"].as_str().unwrap();
    let value: Value = serde_json::from_str(content).unwrap();
    assert_valid(&value, &pydantic_schema());
    assert!(
        value["note"].is_string(),
        "nullable fields take their non-null type"
    );
    assert_eq!(value["readings"].as_array().unwrap().len(), 2, "minItems");

    let (_, again) = post_json(&sim, PATH, &request("weather?", json_schema())).await;
    assert_eq!(again, reply, "deterministic");
}

#[tokio::test]
async fn json_schema_streams_in_pieces_that_are_the_output_tokens() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, whole) = post_json(&sim, PATH, &request("weather?", json_schema())).await;
    let mut body = request("weather?", json_schema());
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let chunks = chunks(&sim, &body).await;
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .filter(|p| !p.is_empty())
        .collect();
    assert!(pieces.len() > 10, "{pieces:?}");
    assert_eq!(
        pieces.concat(),
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], pieces.len());
    assert_eq!(usage, &whole["usage"]);
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "stop");
}

#[tokio::test]
async fn json_object_text_and_plain_requests() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, reply) = post_json(&sim, PATH, &request("hi", json!({"type": "json_object"}))).await;
    let content = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let value: Value = serde_json::from_str(content).unwrap();
    let text = value["reply"].as_str().unwrap();
    assert!(text.starts_with("Simulated reply from sim-gpt: "), "{text}");

    let (_, text_reply) = post_json(&sim, PATH, &request("hi", json!({"type": "text"}))).await;
    let mut plain = request("hi", Value::Null);
    plain.as_object_mut().unwrap().remove("response_format");
    let (_, plain_reply) = post_json(&sim, PATH, &plain).await;
    assert_eq!(text_reply["choices"], plain_reply["choices"]);
    assert_eq!(text_reply["choices"][0]["message"]["content"], text);
}

#[tokio::test]
async fn max_tokens_cuts_the_json() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("weather?", json_schema());
    body["max_completion_tokens"] = json!(5);
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    assert_eq!(reply["usage"]["completion_tokens"], 5);
    let content = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(content).is_err(), "{content}");
}

#[tokio::test]
async fn refusal_replaces_the_content() {
    let sim = SimUpstream::start().await.unwrap();
    let body = request("how to [sim:refuse] this", json_schema());
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 200);
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["message"]["content"].is_null());
    assert_eq!(
        choice["message"]["refusal"],
        "I'm sorry, I can't help with that."
    );
    assert_eq!(reply["usage"]["completion_tokens"], 7);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let chunks = chunks(&sim, &streamed).await;
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(
        first,
        &json!({"role": "assistant", "content": null, "refusal": ""})
    );
    let refusal: String = chunks[1..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["refusal"].as_str())
        .collect();
    assert_eq!(refusal, "I'm sorry, I can't help with that.");
    assert!(chunks.iter().all(|c| c["choices"][0]["delta"]
        .get("content")
        .is_none_or(Value::is_null)));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );

    // Without a structured format the marker is only text.
    let (_, plain) = post_json(
        &sim,
        PATH,
        &request("[sim:refuse]", json!({"type": "text"})),
    )
    .await;
    assert!(plain["choices"][0]["message"]["refusal"].is_null());
    assert!(plain["choices"][0]["message"]["content"].is_string());
}

#[tokio::test]
async fn bad_formats_get_openai_errors() {
    let sim = SimUpstream::start().await.unwrap();
    let cases = [
        (json!({"type": "yaml"}), "response_format.type"),
        (
            json!({"type": "json_schema"}),
            "response_format.json_schema",
        ),
        (
            json!({"type": "json_schema", "json_schema": {"schema": {}}}),
            "response_format.json_schema.name",
        ),
        (json!("json"), "response_format"),
    ];
    for (format, param) in cases {
        let (status, reply) = post_json(&sim, PATH, &request("x", format.clone())).await;
        assert_eq!(status, 400, "{format}");
        assert_eq!(reply["error"]["param"], param, "{format}");
        assert_eq!(reply["error"]["type"], "invalid_request_error");
    }
}
