//! OpenAI clients through the live gateway: chat, embeddings, responses and models, passed through
//! to an OpenAI-kind provider or translated to an Anthropic-kind one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{events_of, json_of, Harness, UPSTREAM_KEY};
use serde_json::{json, Value};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}], "max_tokens": 5})
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

#[tokio::test]
async fn chat_passthrough_relays_the_upstream_answer_and_forwards_unknown_fields() {
    let h = Harness::start().await;
    let mut body = chat("gpt");
    body["x_vendor_knob"] = json!({"keep": true});
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .header("openai-beta", "feature=1")
        .header("openai-organization", "org-client")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-moat-provider"], "oa");
    assert!(r.headers().contains_key("x-moat-request-id"));
    let (status, v) = json_of(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.body["model"], "sim-gpt",
        "the route's provider model is sent"
    );
    assert_eq!(
        seen.body["x_vendor_knob"],
        json!({"keep": true}),
        "unknown fields are forwarded"
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert!(
        !seen.headers.iter().any(|(_, v)| v.contains(&h.key)),
        "the client's key never travels upstream"
    );
    assert_eq!(seen.header("openai-beta"), Some("feature=1"));
    assert_eq!(seen.header("openai-organization"), None);
}

#[tokio::test]
async fn chat_stream_passthrough_strips_forced_usage_unless_asked() {
    let h = Harness::start().await;
    let mut body = chat("gpt");
    body["stream"] = json!(true);
    let events = events_of(h.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert!(
        events
            .iter()
            .all(|e| e.json().get("usage").is_none_or(Value::is_null)),
        "no usage chunk: {events:?}"
    );
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(
        seen.body["stream_options"]["include_usage"], true,
        "usage is forced upstream for metering"
    );

    body["stream_options"] = json!({"include_usage": true});
    let events = events_of(h.openai("/v1/chat/completions", &body).await).await;
    let usage_chunk = &events[events.len() - 2].json();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
    let ids: std::collections::HashSet<String> = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn chat_to_an_anthropic_target_is_translated_both_ways() {
    let h = Harness::start().await;
    let (status, v) = json_of(h.openai("/v1/chat/completions", &chat("claude")).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 3
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.body["system"][0]["text"], "Be brief.");
    assert_eq!(seen.body["max_tokens"], 5);
    assert_eq!(seen.header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test]
async fn chat_stream_to_an_anthropic_target_arrives_as_openai_chunks() {
    let h = Harness::start().await;
    let mut body = chat("claude");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = events_of(h.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert_eq!(events[0].json()["choices"][0]["delta"]["role"], "assistant");
    let text: String = events
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(text.split_whitespace().count() >= 3, "{text}");
    let finish = events.iter().find_map(|e| {
        e.json()["choices"][0]["finish_reason"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(finish.as_deref(), Some("length"));
    let usage = &events[events.len() - 2].json()["usage"];
    assert_eq!(usage["completion_tokens"], 5);
}

#[tokio::test]
async fn tool_calls_work_on_both_kinds_of_target() {
    let h = Harness::start().await;
    for model in ["gpt", "claude"] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "Weather in Paris?"}],
                          "tools": [weather_tool()], "tool_choice": "required"});
        let (status, v) = json_of(h.openai("/v1/chat/completions", &body).await).await;
        assert_eq!(status, 200, "{model}: {v}");
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "get_weather", "{model}");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args.get("city").is_some(), "{model}: {args}");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

        // The tool result goes back; the answer is text.
        let follow = json!({"model": model, "tools": [weather_tool()], "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            v["choices"][0]["message"].clone(),
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]});
        let (status, v2) = json_of(h.openai("/v1/chat/completions", &follow).await).await;
        assert_eq!(status, 200, "{model}: {v2}");
        assert!(
            v2["choices"][0]["message"]["content"].is_string(),
            "{model}: {v2}"
        );
        if model == "claude" {
            let seen = h.sim.requests().pop().unwrap();
            assert_eq!(
                seen.body["messages"][2]["content"][0]["type"],
                "tool_result"
            );
        }
    }
}

#[tokio::test]
async fn streamed_tool_calls_are_translated_to_openai_deltas() {
    let h = Harness::start().await;
    let body = json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "Weather?"}],
                      "tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}});
    let events = events_of(h.openai("/v1/chat/completions", &body).await).await;
    let deltas: Vec<Value> = events
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["tool_calls"]
                .get(0)
                .cloned()
        })
        .collect();
    assert!(deltas[0]["id"].is_string());
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    let args: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert!(serde_json::from_str::<Value>(&args)
        .unwrap()
        .get("city")
        .is_some());
    let seen = h.sim.requests().pop().unwrap();
    assert_eq!(
        seen.body["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
}

#[tokio::test]
async fn embeddings_pass_through_and_honour_base64() {
    let h = Harness::start().await;
    let (status, v) = json_of(
        h.openai(
            "/v1/embeddings",
            &json!({"model": "emb", "input": ["a", "b"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(v["data"][0]["embedding"].is_array());
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let body = json!({"model": "emb", "input": "a", "encoding_format": "base64"});
    let (_, v) = json_of(h.openai("/v1/embeddings", &body).await).await;
    assert!(v["data"][0]["embedding"].is_string());
    let r = h
        .openai("/v1/embeddings", &json!({"model": "claude", "input": "a"}))
        .await;
    let (status, v) = json_of(r).await;
    assert_eq!(status, 400, "embeddings need an OpenAI-kind target: {v}");
}

#[tokio::test]
async fn responses_relay_stream_and_non_stream() {
    let h = Harness::start().await;
    let body = json!({"model": "gpt", "input": "Say hi", "store": false, "max_output_tokens": 50});
    let (status, v) = json_of(h.openai("/v1/responses", &body).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "response");
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = events_of(h.openai("/v1/responses", &streamed).await).await;
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("response.completed")
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e.json()["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    assert!(events.iter().all(|e| e.data != "[DONE]"));
    assert_eq!(h.sim.requests().pop().unwrap().path, "/v1/responses");
}

#[tokio::test]
async fn models_lists_what_the_key_may_use_in_both_shapes() {
    let h = Harness::start().await;
    let r = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(r).await;
    assert_eq!(status, 200);
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "gpt");
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["first_id"], "gpt");
    assert_eq!(v["has_more"], false);

    let scoped = h
        .create_key(common::KeyScope {
            models: vec!["claude".into()],
            ..Default::default()
        })
        .await;
    let r = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&scoped)
        .send()
        .await
        .unwrap();
    let (_, v) = json_of(r).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let r = h
        .http
        .get(h.url("/v1/models/claude"))
        .bearer_auth(&scoped)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.1["id"], "claude");
    let r = h
        .http
        .get(h.url("/v1/models/gpt"))
        .bearer_auth(&scoped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
