//! Golden tests of the Responses API translation: every fixture under
//! `tests/fixtures/{request_r2a,request_r2a_invalid,response_a2r,stream_a2r}/` is translated and
//! compared with its snapshot under `tests/snapshots/`. Streams are also replayed through an
//! accumulator that follows the official SDKs' rules (items by `output_index`, parts by
//! `content_index`, `sequence_number` from 0), and reasoning is sent back to check that the
//! thinking blocks and their signatures survive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::path::Path;

use bytes::Bytes;
use moat_protocol::translate::{
    anthropic_to_responses_response, responses_to_anthropic_request,
    responses_to_anthropic_request_with, AnthropicRequestOptions, AnthropicToResponsesStream,
    ResponsesEcho, ThinkingStyle, TranslateError,
};
use serde_json::{json, Value};
use support::{decode, fixtures, read_json, recorded_events, transcript};

const CREATED: i64 = 1_700_000_000;
const TARGET: &str = "claude-sonnet-4-5";

fn options(name: &str) -> AnthropicRequestOptions {
    AnthropicRequestOptions {
        thinking: if name.contains("adaptive") {
            ThinkingStyle::Adaptive
        } else {
            ThinkingStyle::Budget
        },
    }
}

fn error_snapshot(error: &TranslateError) -> Value {
    json!({"status": error.status(), "param": error.param(), "body": error.to_openai_body()})
}

#[test]
fn requests_responses_to_anthropic() {
    for (name, path) in fixtures("request_r2a") {
        let out = responses_to_anthropic_request_with(&read_json(&path), TARGET, &options(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_json_snapshot!(format!("request_r2a__{name}"), out);
    }
}

#[test]
fn invalid_requests_responses_to_anthropic() {
    for (name, path) in fixtures("request_r2a_invalid") {
        let error = responses_to_anthropic_request(&read_json(&path), TARGET).expect_err(&name);
        assert_eq!(error.status(), 400, "{name}");
        insta::assert_json_snapshot!(
            format!("request_r2a_invalid__{name}"),
            error_snapshot(&error)
        );
    }
}

#[test]
fn responses_anthropic_to_responses() {
    for (name, path) in fixtures("response_a2r") {
        let fixture = read_json(&path);
        let echo = ResponsesEcho::from_request(&fixture["request"]);
        let out = anthropic_to_responses_response(&fixture["answer"], &echo, "gpt-5", CREATED)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_json_snapshot!(format!("response_a2r__{name}"), out);
    }
}

/// The request a stream fixture answers: one asking for encrypted reasoning or (`structured_*`)
/// for a structured output when the fixture's name says so.
fn stream_request(name: &str) -> Value {
    if name.contains("encrypted") {
        json!({"model": "o4-mini", "input": "x", "include": ["reasoning.encrypted_content"], "store": false})
    } else if name.starts_with("structured") {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"], "additionalProperties": false});
        let format =
            json!({"type": "json_schema", "name": "person", "strict": true, "schema": schema});
        json!({"model": "gpt-5", "input": "x", "text": {"format": format}})
    } else {
        json!({"model": "gpt-5", "input": "x"})
    }
}

fn translate_stream(name: &str, path: &Path) -> (Vec<Bytes>, AnthropicToResponsesStream) {
    let echo = ResponsesEcho::from_request(&stream_request(name));
    let mut stream = AnthropicToResponsesStream::new(echo, "gpt-5", CREATED);
    let mut frames = Vec::new();
    for event in recorded_events(path) {
        frames.extend(
            stream
                .on_event(&event)
                .unwrap_or_else(|e| panic!("{name}: {e}")),
        );
    }
    frames.extend(stream.finish());
    assert!(stream.finish().is_empty(), "{name}: finish is idempotent");
    (frames, stream)
}

#[test]
fn streams_anthropic_to_responses() {
    for (name, path) in fixtures("stream_a2r") {
        let (frames, stream) = translate_stream(&name, &path);
        let last = sdk_accumulate(&name, &frames);
        let completes = !name.contains("truncated") && !name.contains("error");
        let expected = if name.contains("max_tokens") {
            "response.incomplete"
        } else if completes {
            "response.completed"
        } else {
            "response.failed"
        };
        assert_eq!(last, expected, "{name}");
        insta::assert_snapshot!(
            format!("stream_a2r__{name}"),
            transcript(&frames, stream.usage())
        );
    }
}

/// Replays client events the way the official SDKs accumulate them and checks every rule they
/// rely on; returns the type of the last event.
fn sdk_accumulate(name: &str, frames: &[Bytes]) -> String {
    let events = decode(&frames.concat());
    let mut items: Vec<Value> = Vec::new();
    let mut done: Vec<Value> = Vec::new();
    let mut last = String::new();
    for (sequence, event) in events.iter().enumerate() {
        let data: Value = serde_json::from_str(&event.data).unwrap();
        let kind = data["type"].as_str().unwrap().to_owned();
        assert_eq!(event.event.as_deref(), Some(kind.as_str()), "{name}");
        assert_eq!(data["sequence_number"], sequence, "{name}: {kind}");
        assert!(!is_terminal(&last), "{name}: {kind} after the end");
        if sequence == 0 {
            assert_eq!(kind, "response.created", "{name}");
        }
        let output = data["output_index"].as_u64().unwrap_or(u64::MAX) as usize;
        match kind.as_str() {
            "response.output_item.added" => {
                assert_eq!(output, items.len(), "{name}: items come in order");
                items.push(data["item"].clone());
            }
            "response.content_part.added" => {
                let content = items[output]["content"].as_array_mut().unwrap();
                assert_eq!(data["content_index"], content.len(), "{name}");
                content.push(data["part"].clone());
            }
            "response.output_text.delta" => {
                assert_eq!(data["item_id"], items[output]["id"], "{name}");
                let part =
                    &mut items[output]["content"][data["content_index"].as_u64().unwrap() as usize];
                assert_eq!(part["type"], "output_text", "{name}");
                let text = format!(
                    "{}{}",
                    part["text"].as_str().unwrap(),
                    data["delta"].as_str().unwrap()
                );
                part["text"] = json!(text);
            }
            "response.refusal.delta" => {
                assert_eq!(data["item_id"], items[output]["id"], "{name}");
                let part =
                    &mut items[output]["content"][data["content_index"].as_u64().unwrap() as usize];
                assert_eq!(part["type"], "refusal", "{name}");
                let refusal = format!(
                    "{}{}",
                    part["refusal"].as_str().unwrap(),
                    data["delta"].as_str().unwrap()
                );
                part["refusal"] = json!(refusal);
            }
            "response.function_call_arguments.delta" => {
                assert_eq!(items[output]["type"], "function_call", "{name}");
                assert_eq!(data["item_id"], items[output]["id"], "{name}");
                let arguments = format!(
                    "{}{}",
                    items[output]["arguments"].as_str().unwrap(),
                    data["delta"].as_str().unwrap()
                );
                items[output]["arguments"] = json!(arguments);
            }
            "response.output_text.done"
            | "response.reasoning_text.delta"
            | "response.reasoning_text.done"
            | "response.function_call_arguments.done"
            | "response.content_part.done"
            | "response.refusal.done" => {
                assert_eq!(data["item_id"], items[output]["id"], "{name}: {kind}");
            }
            "response.output_item.done" => {
                assert_eq!(output, done.len(), "{name}: items close in order");
                let item = &data["item"];
                let accumulated = &items[output];
                assert_eq!(item["id"], accumulated["id"], "{name}");
                match item["type"].as_str().unwrap() {
                    // The parts added and their deltas add up to the done item's parts.
                    "message" => assert_eq!(item["content"], accumulated["content"], "{name}"),
                    "function_call" => {
                        let streamed = accumulated["arguments"].as_str().unwrap();
                        let streamed = if streamed.is_empty() { "{}" } else { streamed };
                        assert_eq!(item["arguments"], streamed, "{name}");
                    }
                    _ => {}
                }
                done.push(item.clone());
            }
            "response.completed" | "response.incomplete" => {
                assert_eq!(data["response"]["output"], json!(done), "{name}");
                assert!(data["response"]["usage"]["input_tokens"].is_u64(), "{name}");
            }
            "response.failed" => {
                assert_eq!(data["response"]["status"], "failed", "{name}");
                assert!(data["response"]["error"]["message"].is_string(), "{name}");
            }
            "error" => {
                assert!(
                    data["code"].is_string() && data["message"].is_string(),
                    "{name}"
                );
                assert_eq!(data["error"]["message"], data["message"], "{name}");
            }
            "response.created" | "response.in_progress" => {
                assert_eq!(data["response"]["status"], "in_progress", "{name}");
                for required in ["tools", "tool_choice", "parallel_tool_calls", "output"] {
                    assert!(!data["response"][required].is_null(), "{name}: {required}");
                }
            }
            other => panic!("{name}: unexpected event {other}"),
        }
        last = kind;
    }
    last
}

fn is_terminal(kind: &str) -> bool {
    matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    )
}

/// Output items of an answer, sent back as the next request's input, restore the thinking
/// blocks with their signatures (the Codex loop with `store: false`).
#[test]
fn encrypted_reasoning_round_trips_to_the_next_request() {
    let thinking = json!({"type": "thinking", "thinking": "Check the weather first.", "signature": "EqQBCkYIARgCKkA+/="});
    let redacted = json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"});
    let call = json!({"type": "tool_use", "id": "toolu_01W", "name": "get_weather", "input": {"city": "Paris"}});
    let answer = json!({
        "id": "msg_01RT", "type": "message", "role": "assistant", "model": TARGET,
        "content": [thinking, redacted, call], "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "output_tokens": 20},
    });
    let request = json!({"model": "o4-mini", "input": "Weather in Paris?", "include": ["reasoning.encrypted_content"], "store": false, "reasoning": {"effort": "medium"}});
    let echo = ResponsesEcho::from_request(&request);
    let response = anthropic_to_responses_response(&answer, &echo, "o4-mini", CREATED).unwrap();
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris?"})];
    input.extend(response["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "toolu_01W", "output": "18C"}));
    let next = json!({"model": "o4-mini", "input": input, "include": ["reasoning.encrypted_content"], "store": false, "reasoning": {"effort": "medium"}});
    let translated = responses_to_anthropic_request(&next, TARGET).unwrap();
    let assistant = &translated["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"], json!([thinking, redacted, call]));
    assert_eq!(
        translated["messages"][2]["content"][0]["tool_use_id"],
        "toolu_01W"
    );

    // The same from a stream: the done reasoning items carry the tokens.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stream_a2r/thinking_and_text.encrypted.sse");
    let (frames, _) = translate_stream("encrypted", &path);
    let reasoning: Vec<Value> = decode(&frames.concat())
        .iter()
        .map(|event| serde_json::from_str::<Value>(&event.data).unwrap())
        .filter(|data| {
            data["type"] == "response.output_item.done" && data["item"]["type"] == "reasoning"
        })
        .map(|data| data["item"].clone())
        .collect();
    let mut input = vec![json!({"role": "user", "content": "Prove it."})];
    input.extend(reasoning);
    let translated = responses_to_anthropic_request(&json!({"input": input}), TARGET).unwrap();
    assert_eq!(
        translated["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "The user wants a short proof.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        ])
    );
}

/// Without `include`, reasoning items carry no token, and sending them back drops them.
#[test]
fn reasoning_without_a_token_is_dropped() {
    let answer = json!({"id": "msg_1", "content": [
        {"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "Hi"}
    ], "stop_reason": "end_turn"});
    let echo = ResponsesEcho::from_request(&json!({"input": "x"}));
    let response = anthropic_to_responses_response(&answer, &echo, "gpt-5", CREATED).unwrap();
    assert!(response["output"][0].get("encrypted_content").is_none());
    let mut input = vec![json!({"role": "user", "content": "x"})];
    input.extend(response["output"].as_array().unwrap().iter().cloned());
    let translated = responses_to_anthropic_request(&json!({"input": input}), TARGET).unwrap();
    assert_eq!(
        translated["messages"][1]["content"],
        json!([{"type": "text", "text": "Hi"}])
    );
}
