//! Targeted unit tests of the Responses translation rules the golden fixtures do not isolate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::sse::SseEvent;

fn event(data: Value) -> SseEvent {
    SseEvent {
        event: data["type"].as_str().map(str::to_owned),
        data: data.to_string(),
        raw: Bytes::new(),
    }
}

/// The events' JSON payloads.
fn payloads(frames: &[Bytes]) -> Vec<Value> {
    frames
        .iter()
        .map(|frame| {
            let text = std::str::from_utf8(frame).unwrap();
            let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

/// The Anthropic stream that delivers `message` (as Anthropic streams it: input usage first,
/// each block started empty and filled by deltas, output usage at the end).
fn anthropic_stream(message: &Value) -> Vec<SseEvent> {
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    let mut events = vec![event(json!({"type": "message_start", "message": start}))];
    for (index, block) in message["content"].as_array().unwrap().iter().enumerate() {
        let (empty, deltas) = match block["type"].as_str().unwrap() {
            "text" => (
                json!({"type": "text", "text": ""}),
                vec![json!({"type": "text_delta", "text": block["text"]})],
            ),
            "thinking" => (
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                vec![
                    json!({"type": "thinking_delta", "thinking": block["thinking"]}),
                    json!({"type": "signature_delta", "signature": block["signature"]}),
                ],
            ),
            "tool_use" => {
                let mut empty = block.clone();
                empty["input"] = json!({});
                let json = block["input"].to_string();
                let (a, b) = json.split_at(json.len() / 2);
                (
                    empty,
                    vec![
                        json!({"type": "input_json_delta", "partial_json": a}),
                        json!({"type": "input_json_delta", "partial_json": b}),
                    ],
                )
            }
            _ => (block.clone(), Vec::new()),
        };
        events.push(event(
            json!({"type": "content_block_start", "index": index, "content_block": empty}),
        ));
        for delta in deltas {
            events.push(event(
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        events.push(event(json!({"type": "content_block_stop", "index": index})));
    }
    events.push(event(json!({
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": null},
        "usage": {"output_tokens": message["usage"]["output_tokens"]},
    })));
    events.push(event(json!({"type": "message_stop"})));
    events
}

fn streamed(message: &Value, echo: &ResponsesEcho) -> Vec<Value> {
    let mut stream = AnthropicToResponsesStream::new(echo.clone(), "gpt-5", 7);
    let mut frames = Vec::new();
    for event in anthropic_stream(message) {
        frames.extend(stream.on_event(&event).unwrap());
    }
    assert!(
        stream.finish().is_empty(),
        "the stream ended at message_stop"
    );
    payloads(&frames)
}

/// Streams `message` and checks that the stream ends with the response the whole answer gives.
fn assert_stream_gives_the_whole_answer(message: &Value, echo: &ResponsesEcho, label: &str) {
    let whole = anthropic_to_responses_response(message, echo, "gpt-5", 7).unwrap();
    let events = streamed(message, echo);
    let last = events.last().unwrap();
    let expected = if message["stop_reason"] == "max_tokens" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    assert_eq!(last["type"], expected, "{label}");
    assert_eq!(last["response"], whole, "{label}");
}

fn answer(content: &[Value], stop: &str) -> Value {
    json!({"id": "msg_x", "type": "message", "role": "assistant", "content": content,
        "stop_reason": stop, "usage": {"input_tokens": 10, "output_tokens": 20}})
}

#[test]
fn a_stream_ends_with_the_response_the_whole_answer_gives() {
    let echo = ResponsesEcho::from_request(&json!({
        "input": "x", "include": ["reasoning.encrypted_content"], "tools": [{"type": "function", "name": "f"}],
    }));
    let usage = json!({"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 20});
    let blocks = [
        json!({"type": "thinking", "thinking": "Hmm.", "signature": "sig"}),
        json!({"type": "redacted_thinking", "data": "opaque"}),
        json!({"type": "text", "text": "One "}),
        json!({"type": "text", "text": "run."}),
        json!({"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}}),
        json!({"type": "text", "text": " Still one."}),
        json!({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2], "b": "é"}}),
        json!({"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}}),
        json!({"type": "text", "text": "After the calls."}),
    ];
    let stops = [
        "end_turn",
        "tool_use",
        "max_tokens",
        "refusal",
        "stop_sequence",
    ];
    for stop in stops {
        for take in [0, 1, 3, 4, 6, 7, 8, blocks.len()] {
            for skip in [0, 2, 6] {
                let content: Vec<Value> = blocks.iter().skip(skip).take(take).cloned().collect();
                let message = json!({"id": "msg_x", "type": "message", "role": "assistant",
                    "content": content, "stop_reason": stop, "usage": usage});
                let label = format!("{stop}, {skip}+{take} blocks");
                assert_stream_gives_the_whole_answer(&message, &echo, &label);
            }
        }
    }
}

#[test]
fn a_structured_stream_ends_with_the_response_the_whole_answer_gives() {
    let text = |text: &str| json!({"type": "text", "text": text});
    let thinking = json!({"type": "thinking", "thinking": "Hmm.", "signature": "sig"});
    let call = json!({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}});
    // JSON (or blank) text: the same whatever the stop reason, a refusal included.
    let json_answers = [
        vec![],
        vec![text(" \n")],
        vec![text("{\"a\": 1}")],
        vec![text(" "), text("\n[1,"), text(" 2]")],
        vec![thinking.clone(), text("\n{}")],
        vec![text("  "), call.clone()],
        vec![call.clone(), text("{\"a\":")],
    ];
    // Text that does not open JSON is a refusal. The stream cannot wait for the stop reason, so
    // it streams such text as a refusal whatever comes; the whole answer, which knows, does so
    // only for the last message of a `stop_reason: refusal`, so only those are compared here.
    let refusals = [
        vec![text("I can't help with that.")],
        vec![text("\n "), text("No"), text(".")],
        vec![thinking, text(" No.")],
        vec![text("{\"a\": 1}"), call.clone(), text("No.")],
        vec![call, text("No.")],
    ];
    for format in ["json_schema", "json_object"] {
        let echo = ResponsesEcho::from_request(
            &json!({"input": "x", "text": {"format": {"type": format}}}),
        );
        assert!(echo.structured_output());
        for stop in ["end_turn", "tool_use", "max_tokens", "refusal"] {
            for (index, content) in json_answers.iter().enumerate() {
                let label = format!("{format}, {stop}, JSON answer {index}");
                assert_stream_gives_the_whole_answer(&answer(content, stop), &echo, &label);
            }
        }
        for (index, content) in refusals.iter().enumerate() {
            let label = format!("{format}, refusal {index}");
            assert_stream_gives_the_whole_answer(&answer(content, "refusal"), &echo, &label);
        }
    }
}

#[test]
fn a_structured_refusal_is_a_refusal_part_alone() {
    let echo = ResponsesEcho::from_request(&json!({"text": {"format": {"type": "json_schema"}}}));
    let said = answer(&[json!({"type": "text", "text": "\nI can't."})], "refusal");
    let response = anthropic_to_responses_response(&said, &echo, "gpt-5", 7).unwrap();
    assert_eq!(response["status"], "completed");
    assert_eq!(
        response["output"][0]["content"],
        json!([{"type": "refusal", "refusal": "\nI can't."}])
    );
    let silent = answer(&[], "refusal");
    let response = anthropic_to_responses_response(&silent, &echo, "gpt-5", 7).unwrap();
    let refusal = &response["output"][0]["content"][0];
    assert_eq!(
        refusal["refusal"],
        crate::translate::response_a2o::REFUSAL_TEXT
    );
    // Streamed, the refusal's deltas add up to its text.
    let events = streamed(&said, &echo);
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.refusal.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "\nI can't.");
    assert!(!events
        .iter()
        .any(|e| e["type"] == "response.output_text.delta"));
}

#[test]
fn only_json_formats_ask_for_a_structured_output() {
    for (request, asked) in [
        (
            json!({"text": {"format": {"type": "json_schema", "name": "n"}}}),
            true,
        ),
        (json!({"text": {"format": {"type": "json_object"}}}), true),
        (json!({"text": {"format": {"type": "text"}}}), false),
        (json!({"text": {"verbosity": "low"}}), false),
        (json!({"text": "json_schema"}), false),
        (json!({}), false),
    ] {
        let echo = ResponsesEcho::from_request(&request);
        assert_eq!(echo.structured_output(), asked, "{request}");
    }
}

#[test]
fn deltas_of_other_blocks_leave_the_open_item_alone() {
    let echo = ResponsesEcho::from_request(&json!({}));
    let mut stream = AnthropicToResponsesStream::new(echo, "gpt-5", 0);
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "lost"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "kept"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
        json!({"type": "message_stop"}),
    ];
    let mut frames = Vec::new();
    for data in events {
        frames.extend(stream.on_event(&event(data)).unwrap());
    }
    let last = payloads(&frames).pop().unwrap();
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], "kept");
}

#[test]
fn the_end_is_final() {
    let echo = ResponsesEcho::from_request(&json!({}));
    let mut stream = AnthropicToResponsesStream::new(echo, "gpt-5", 0);
    let error = json!({"type": "error", "error": {"type": "api_error", "message": "boom"}});
    let frames = stream.on_event(&event(error)).unwrap();
    let kinds: Vec<Value> = payloads(&frames)
        .iter()
        .map(|p| p["type"].clone())
        .collect();
    // Even an error before message_start opens the response first, so SDKs can follow.
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed"
        ]
    );
    let stop = event(json!({"type": "message_stop"}));
    assert!(stream.on_event(&stop).unwrap().is_empty());
    assert!(stream.finish().is_empty());
    assert!(stream.fail("again").is_empty());
}

#[test]
fn data_that_is_not_json_is_an_upstream_error() {
    let mut stream =
        AnthropicToResponsesStream::new(ResponsesEcho::from_request(&json!({})), "m", 0);
    let bad = SseEvent {
        event: Some("content_block_delta".into()),
        data: "{not json".into(),
        raw: Bytes::new(),
    };
    assert_eq!(stream.on_event(&bad).unwrap_err().status(), 502);
}

#[test]
fn reasoning_streams_without_a_token_unless_asked() {
    let message = json!({"id": "msg_1", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}});
    let plain = streamed(&message, &ResponsesEcho::from_request(&json!({})));
    let done = plain
        .iter()
        .find(|p| p["type"] == "response.output_item.done")
        .unwrap();
    assert!(done["item"].get("encrypted_content").is_none());
    assert_eq!(done["item"]["content"][0]["text"], "t");
}

#[test]
fn the_echo_defaults_what_the_sdks_require() {
    let echo = ResponsesEcho::from_request(&json!("not an object"));
    assert!(!echo.encrypted_reasoning());
    let message = json!({"id": "msg_1", "content": [], "stop_reason": "end_turn"});
    let response = anthropic_to_responses_response(&message, &echo, "gpt-5", 1).unwrap();
    assert_eq!(response["tools"], json!([]));
    assert_eq!(response["tool_choice"], "auto");
    assert_eq!(response["parallel_tool_calls"], true);
    assert_eq!(response["store"], false);
    assert_eq!(response["output"], json!([]));
    assert_eq!(
        response["usage"]["input_tokens_details"]["cached_tokens"],
        0
    );
}

#[test]
fn items_without_a_type_are_messages_and_a_bad_type_is_named() {
    let body = json!({"input": [{"role": "user", "content": "hi"}, {"type": 3, "role": "user"}]});
    let error = responses_to_anthropic_request(&body, "claude").unwrap_err();
    assert_eq!(error.param(), Some("input[1].type"));
    let body = json!({"input": [{"role": "user", "content": "hi"}]});
    let out = responses_to_anthropic_request(&body, "claude").unwrap();
    assert_eq!(out["messages"][0]["content"][0]["text"], "hi");
}

#[test]
fn parallel_tool_calls_without_tools_adds_no_tool_choice() {
    let body = json!({"input": "a", "parallel_tool_calls": false, "tools": []});
    let out = responses_to_anthropic_request(&body, "claude").unwrap();
    assert!(out.get("tools").is_none() && out.get("tool_choice").is_none());
}

#[test]
fn tool_results_go_first_in_their_user_message() {
    let body = json!({"input": [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"role": "user", "content": "by the way"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
    ]});
    let out = responses_to_anthropic_request(&body, "claude").unwrap();
    let content = &out["messages"][1]["content"];
    assert_eq!(content[0]["type"], "tool_result");
    assert_eq!(content[1]["text"], "by the way");
}

#[test]
fn arguments_must_encode_an_object() {
    let body = json!({"input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "[1]"}]});
    let error = responses_to_anthropic_request(&body, "claude").unwrap_err();
    assert_eq!(error.param(), Some("input[0].arguments"));
}
