//! Structured output and refusals on OpenAI Responses.

use moat_testkit::SimUpstream;
use serde_json::{json, Value};

use crate::common::{post_json, stream_json};
use crate::validate::{assert_valid, pydantic_schema};

const PATH: &str = "/v1/responses";

fn request(text: &str, format: Value) -> Value {
    json!({"model": "sim-gpt", "input": text, "text": {"format": format}})
}

fn json_schema() -> Value {
    json!({"type": "json_schema", "name": "forecast", "schema": pydantic_schema(), "strict": true})
}

async fn events(sim: &SimUpstream, body: &Value) -> Vec<Value> {
    stream_json(sim, PATH, body).await
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn output_text_is_valid_for_the_flat_json_schema() {
    let sim = SimUpstream::start().await.unwrap();
    let body = request("weather?", json_schema());
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["status"], "completed");
    assert_eq!(reply["text"], body["text"], "the format is echoed");
    let part = &reply["output"][0]["content"][0];
    assert_eq!(part["type"], "output_text");
    let value: Value = serde_json::from_str(part["text"].as_str().unwrap()).unwrap();
    assert_valid(&value, &pydantic_schema());

    let events = events(&sim, &body).await;
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.len() > 10);
    assert_eq!(deltas.concat(), part["text"].as_str().unwrap());
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"]["usage"]["output_tokens"], deltas.len());
    assert_eq!(last["response"]["usage"], reply["usage"]);
}

#[tokio::test]
async fn json_object_and_cut_json() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, reply) = post_json(&sim, PATH, &request("hi", json!({"type": "json_object"}))).await;
    let text = reply["output"][0]["content"][0]["text"].as_str().unwrap();
    let value: Value = serde_json::from_str(text).unwrap();
    assert!(value["reply"].is_string());

    let mut body = request("weather?", json_schema());
    body["max_output_tokens"] = json!(4);
    let (_, cut) = post_json(&sim, PATH, &body).await;
    assert_eq!(cut["status"], "incomplete");
    assert_eq!(cut["usage"]["output_tokens"], 4);
    let text = cut["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(text).is_err());
}

#[tokio::test]
async fn refusal_is_a_refusal_content_part() {
    let sim = SimUpstream::start().await.unwrap();
    let body = request("[sim:refuse] please", json_schema());
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["status"], "completed");
    let item = &reply["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(
        item["content"],
        json!([{"type": "refusal", "refusal": "I'm sorry, I can't help with that."}])
    );
    assert_eq!(reply["usage"]["output_tokens"], 7);

    let events = events(&sim, &body).await;
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(["response.refusal.delta"; 7]);
    expected.extend([
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);
    assert_eq!(events[3]["part"], json!({"type": "refusal", "refusal": ""}));
    let joined: String = events[4..11]
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "I'm sorry, I can't help with that.");
    assert_eq!(events[11]["refusal"], joined);
    for event in &events[3..13] {
        assert_eq!(event["item_id"], item["id"]);
        assert_eq!(event["content_index"], 0);
    }
    assert_eq!(events.last().unwrap()["response"]["output"][0], *item);
}

#[tokio::test]
async fn bad_formats_get_openai_errors() {
    let sim = SimUpstream::start().await.unwrap();
    let nested = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}});
    let cases = [
        (nested, "text.format.name"),
        (
            json!({"type": "json_schema", "name": "x"}),
            "text.format.schema",
        ),
        (json!({"type": "xml"}), "text.format.type"),
    ];
    for (format, param) in cases {
        let (status, reply) = post_json(&sim, PATH, &request("x", format.clone())).await;
        assert_eq!(status, 400, "{format}");
        assert_eq!(reply["error"]["param"], param, "{format}");
    }
}
