//! OpenAI Chat Completions over HTTP.

use moat_testkit::SimUpstream;
use serde_json::{json, Value};

use crate::common::{post, post_json, post_stream, words};

const PATH: &str = "/v1/chat/completions";

fn request(text: &str) -> Value {
    json!({
        "model": "sim-gpt",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": text}]},
        ],
    })
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
        {"type": "function", "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
                "required": ["city", "days", "metric"],
            },
        }},
    ])
}

#[tokio::test]
async fn reply_has_the_openai_shape_and_usage() {
    let sim = SimUpstream::start().await.unwrap();
    let (status, body) = post_json(&sim, PATH, &request("what time is it")).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].as_i64().unwrap() > 1_700_000_000);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("Simulated reply from sim-gpt: "),
        "{content}"
    );
    assert_eq!(words(content), 24);
    // "Be brief." + "what time is it"
    assert_eq!(body["usage"]["prompt_tokens"], 6);
    assert_eq!(body["usage"]["completion_tokens"], 24);
    assert_eq!(body["usage"]["total_tokens"], 30);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

#[tokio::test]
async fn same_request_same_reply() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, a) = post_json(&sim, PATH, &request("hello")).await;
    let (_, b) = post_json(&sim, PATH, &request("hello")).await;
    let (_, c) = post_json(&sim, PATH, &request("goodbye")).await;
    assert_eq!(a["choices"], b["choices"]);
    assert_eq!(a["id"], b["id"]);
    assert_ne!(
        a["choices"][0]["message"]["content"],
        c["choices"][0]["message"]["content"]
    );
}

#[tokio::test]
async fn token_limits_cut_exactly() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("hello");
    body["max_tokens"] = json!(5);
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(
        words(reply["choices"][0]["message"]["content"].as_str().unwrap()),
        5
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    assert_eq!(reply["usage"]["completion_tokens"], 5);

    body["max_completion_tokens"] = json!(3);
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["usage"]["completion_tokens"], 3);

    body["max_completion_tokens"] = json!(24);
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn n_gives_distinct_choices() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, one) = post_json(&sim, PATH, &request("hi")).await;
    let mut body = request("hi");
    body["n"] = json!(3);
    let (_, three) = post_json(&sim, PATH, &body).await;
    let choices = three["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], i);
    }
    assert_eq!(choices[0]["message"], one["choices"][0]["message"]);
    assert_ne!(choices[0]["message"], choices[1]["message"]);
    assert_eq!(three["usage"]["completion_tokens"], 72);
}

#[tokio::test]
async fn stream_matches_openai_chunking() {
    let sim = SimUpstream::start().await.unwrap();
    let (_, whole) = post_json(&sim, PATH, &request("stream me")).await;
    let mut body = request("stream me");
    body["stream"] = json!(true);
    let events = post_stream(&sim, PATH, &body).await;

    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(events.iter().all(|e| e.name.is_none()));
    let id = chunks[0]["id"].clone();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == id && c["object"] == "chat.completion.chunk"));
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "usage only when asked"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let contents: Vec<&str> = chunks[1..chunks.len() - 1]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), 24, "one chunk per word");
    assert_eq!(contents[0], "Simulated");
    assert_eq!(contents[1], " reply");
    assert_eq!(
        contents.concat(),
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
}

#[tokio::test]
async fn stream_usage_chunk_comes_last_when_asked() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("usage please");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body["max_tokens"] = json!(4);
    let events = post_stream(&sim, PATH, &body).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 4);
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 4);
    assert!(rest.iter().all(|c| c["usage"].is_null()));
    assert_eq!(
        rest.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
}

#[tokio::test]
async fn tools_give_one_call_to_the_chosen_function() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("weather in Paris?");
    body["tools"] = weather_tools();
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 200);
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    let id = calls[0]["id"].as_str().unwrap();
    assert!(id.starts_with("call_") && id.len() == 29, "{id}");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "sim", "days": 1, "metric": true}));

    // Default choice calls the first tool.
    body["tool_choice"] = json!("auto");
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(
        reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_time"
    );
}

#[tokio::test]
async fn tool_results_and_none_get_text() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("weather?");
    body["tools"] = weather_tools();
    body["tool_choice"] = json!("none");
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");

    body["tool_choice"] = json!("required");
    body["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}),
        json!({"role": "tool", "tool_call_id": "call_1", "content": "noon"}),
    ]);
    let (_, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert!(reply["choices"][0]["message"]["content"].is_string());

    body["tool_choice"] = json!({"type": "function", "function": {"name": "missing"}});
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["param"], "tool_choice");
}

#[tokio::test]
async fn streamed_tool_call_deltas() {
    let sim = SimUpstream::start().await.unwrap();
    let mut body = request("weather?");
    body["tools"] = weather_tools();
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    body["stream"] = json!(true);
    let events = post_stream(&sim, PATH, &body).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    let call = &first["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "");
    let fragments: Vec<&str> = chunks[1..chunks.len() - 1]
        .iter()
        .map(|c| {
            let call = &c["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(call["index"], 0);
            assert!(call.get("id").is_none() && call["function"].get("name").is_none());
            call["function"]["arguments"].as_str().unwrap()
        })
        .collect();
    assert!(fragments.len() >= 2);
    let arguments: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(arguments["city"], "sim");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let sim = SimUpstream::start().await.unwrap();
    let response = crate::common::client()
        .post(format!("{}/chat/completions", sim.openai_base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (status, body) = post_json(&sim, PATH, &json!({"model": "m"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "messages");
    assert_eq!(
        body["error"]["message"],
        "Missing required parameter: 'messages'."
    );

    let mut bad = request("x");
    bad["max_tokens"] = json!(0);
    assert_eq!(post_json(&sim, PATH, &bad).await.0, 400);

    let mut bad = request("x");
    bad["stream_options"] = json!({"include_usage": true});
    assert_eq!(post_json(&sim, PATH, &bad).await.0, 400);

    let response = post(&sim, "/v1/nope", &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Invalid URL (POST /v1/nope)");

    let response = crate::common::client()
        .get(format!("{}/chat/completions", sim.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}
