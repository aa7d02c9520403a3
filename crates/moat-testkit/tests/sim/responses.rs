//! OpenAI Responses over HTTP.

use moat_testkit::SimUpstream;
use serde_json::{json, Value};

use crate::common::{post_json, post_stream, words, Event};

const PATH: &str = "/v1/responses";

fn tools() -> Value {
    json!([{
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    }])
}

#[tokio::test]
async fn string_input_gets_a_completed_message() {
    let sim = SimUpstream::start().await.unwrap();
    let body = json!({"model": "sim-gpt", "input": "tell me a story", "instructions": "be nice", "store": false});
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["object"], "response");
    assert_eq!(reply["status"], "completed");
    assert!(reply["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(reply["store"], false);
    let item = &reply["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["status"], "completed");
    let part = &item["content"][0];
    assert_eq!(part["type"], "output_text");
    assert_eq!(part["annotations"], json!([]));
    assert_eq!(words(part["text"].as_str().unwrap()), 24);
    let usage = &reply["usage"];
    assert_eq!(usage["input_tokens"], 6);
    assert_eq!(usage["output_tokens"], 24);
    assert_eq!(usage["total_tokens"], 30);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn item_input_and_token_limit() {
    let sim = SimUpstream::start().await.unwrap();
    let body = json!({
        "model": "sim-gpt",
        "input": [
            {"type": "message", "role": "developer", "content": "rules here"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one two three"}]},
        ],
        "max_output_tokens": 7,
    });
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["status"], "incomplete");
    assert_eq!(reply["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(reply["usage"]["output_tokens"], 7);
    assert_eq!(reply["usage"]["input_tokens"], 5);
    assert_eq!(
        words(reply["output"][0]["content"][0]["text"].as_str().unwrap()),
        7
    );
}

fn check_sequence(events: &[Event]) -> Vec<Value> {
    let payloads: Vec<Value> = events.iter().map(Event::json).collect();
    for (i, (event, payload)) in events.iter().zip(&payloads).enumerate() {
        assert_eq!(event.name.as_deref(), payload["type"].as_str());
        assert_eq!(payload["sequence_number"], i);
    }
    assert!(events.iter().all(|e| e.data != "[DONE]"));
    payloads
}

#[tokio::test]
async fn stream_emits_typed_events_in_order() {
    let sim = SimUpstream::start().await.unwrap();
    let body =
        json!({"model": "sim-gpt", "input": "stream", "max_output_tokens": 3, "stream": true});
    let events = post_stream(&sim, PATH, &body).await;
    let payloads = check_sequence(&events);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.incomplete",
        ]
    );
    assert_eq!(payloads[0]["response"]["status"], "in_progress");
    let deltas: String = payloads[4..7]
        .iter()
        .map(|p| p["delta"].as_str().unwrap())
        .collect();
    assert_eq!(payloads[7]["text"], deltas.as_str());
    let last = &payloads[10]["response"];
    assert_eq!(last["usage"]["output_tokens"], 3);
    assert_eq!(last["output"][0]["content"][0]["text"], deltas.as_str());

    let body = json!({"model": "sim-gpt", "input": "stream", "stream": true});
    let events = post_stream(&sim, PATH, &body).await;
    let payloads = check_sequence(&events);
    let last = payloads.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"]["status"], "completed");
    assert_eq!(last["response"]["usage"]["output_tokens"], 24);
}

#[tokio::test]
async fn function_call_item_and_stream() {
    let sim = SimUpstream::start().await.unwrap();
    let body = json!({"model": "sim-gpt", "input": "find it", "tools": tools()});
    let (_, reply) = post_json(&sim, PATH, &body).await;
    let item = &reply["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "lookup");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert!(item["id"].as_str().unwrap().starts_with("fc_"));
    let arguments: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"q": "sim"}));

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = post_stream(&sim, PATH, &streamed).await;
    let payloads = check_sequence(&events);
    let deltas: String = payloads
        .iter()
        .filter(|p| p["type"] == "response.function_call_arguments.delta")
        .map(|p| p["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, item["arguments"].as_str().unwrap());
    assert_eq!(payloads.last().unwrap()["response"]["output"][0], *item);

    // A tool output as the last item gets a text answer.
    let body = json!({
        "model": "sim-gpt",
        "tools": tools(),
        "input": [
            {"role": "user", "content": "find it"},
            {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "found"},
        ],
    });
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["output"][0]["type"], "message");
}

#[tokio::test]
async fn previous_response_id_is_refused() {
    let sim = SimUpstream::start().await.unwrap();
    let body = json!({"model": "sim-gpt", "input": "again", "previous_response_id": "resp_123"});
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], "previous_response_not_found");
    assert_eq!(reply["error"]["param"], "previous_response_id");
}
