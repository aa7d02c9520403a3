//! Structured output and refusals on Anthropic Messages.

use moat_testkit::SimUpstream;
use serde_json::{json, Value};

use crate::common::{post_json, stream_json};
use crate::validate::{assert_valid, pydantic_schema};

const PATH: &str = "/v1/messages";

fn request(text: &str) -> Value {
    json!({
        "model": "sim-claude",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
        "output_config": {"effort": "low",
                          "format": {"type": "json_schema", "schema": pydantic_schema()}},
    })
}

async fn events(sim: &SimUpstream, body: &Value) -> Vec<Value> {
    stream_json(sim, PATH, body).await
}

fn text_deltas(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["delta"]["type"] == "text_delta")
        .map(|e| e["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn output_config_format_gives_a_valid_text_block() {
    let sim = SimUpstream::start().await.unwrap();
    let body = request("weather?");
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(reply["content"][0]["type"], "text");
    let text = reply["content"][0]["text"].as_str().unwrap();
    assert_valid(&serde_json::from_str(text).unwrap(), &pydantic_schema());

    let events = events(&sim, &body).await;
    let deltas = text_deltas(&events);
    assert!(deltas.len() > 10);
    assert_eq!(deltas.concat(), text);
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], deltas.len());
    assert_eq!(reply["usage"]["output_tokens"], deltas.len());
}

#[tokio::test]
async fn legacy_output_format_and_effort_alone() {
    let sim = SimUpstream::start().await.unwrap();
    let mut legacy = request("weather?");
    let format = legacy["output_config"]["format"].take();
    legacy.as_object_mut().unwrap().remove("output_config");
    legacy["output_format"] = format;
    let (_, reply) = post_json(&sim, PATH, &legacy).await;
    let (_, current) = post_json(&sim, PATH, &request("weather?")).await;
    assert_eq!(reply["content"], current["content"]);

    let mut effort_only = request("weather?");
    effort_only["output_config"] = json!({"effort": "high"});
    let (_, reply) = post_json(&sim, PATH, &effort_only).await;
    let text = reply["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Simulated reply from sim-claude: "),
        "{text}"
    );
}

#[tokio::test]
async fn max_tokens_cuts_the_json() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("weather?");
    body["max_tokens"] = json!(6);
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["stop_reason"], "max_tokens");
    assert_eq!(reply["usage"]["output_tokens"], 6);
    let text = reply["content"][0]["text"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(text).is_err());
}

#[tokio::test]
async fn refusal_is_a_stop_reason() {
    let sim = SimUpstream::start().await.unwrap();
    let body = request("[sim:refuse]");
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["stop_reason"], "refusal");
    assert_eq!(
        reply["content"],
        json!([{"type": "text", "text": "I'm sorry, I can't help with that."}])
    );
    assert_eq!(reply["usage"]["output_tokens"], 7);

    let events = events(&sim, &body).await;
    assert_eq!(
        text_deltas(&events).concat(),
        "I'm sorry, I can't help with that."
    );
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "refusal");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
}

#[tokio::test]
async fn bad_formats_get_anthropic_errors() {
    let sim = SimUpstream::start().await.unwrap();
    let cases = [
        (
            json!({"format": {"type": "json_schema"}}),
            "output_config.format.schema: Field required",
        ),
        (
            json!({"format": {"type": "json", "schema": {}}}),
            "output_config.format.type: Input should be 'json_schema'",
        ),
        (json!("json"), "output_config: Input should be an object"),
    ];
    for (config, message) in cases {
        let mut body = request("x");
        body["output_config"] = config.clone();
        let (status, reply) = post_json(&sim, PATH, &body).await;
        assert_eq!(status, 400, "{config}");
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["error"]["type"], "invalid_request_error");
        assert_eq!(reply["error"]["message"], message);
    }
}
