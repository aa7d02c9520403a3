//! Targeted unit tests of translation rules the golden fixtures do not isolate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::sse::SseEvent;

fn event(name: Option<&str>, data: Value) -> SseEvent {
    SseEvent {
        event: name.map(str::to_owned),
        data: data.to_string(),
        raw: Bytes::new(),
    }
}

fn text_event(data: &str) -> SseEvent {
    SseEvent {
        event: None,
        data: data.to_owned(),
        raw: Bytes::new(),
    }
}

fn frames_text(frames: &[Bytes]) -> String {
    frames
        .iter()
        .map(|f| std::str::from_utf8(f).unwrap())
        .collect()
}

#[test]
fn tool_results_go_before_user_text_even_when_sent_after_it() {
    let body = json!({"messages": [
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "by the way"},
        {"role": "tool", "tool_call_id": "c1", "content": "result"},
    ]});
    let out = openai_chat_to_anthropic_request(&body, "claude").unwrap();
    let content = &out["messages"][1]["content"];
    assert_eq!(content[0]["type"], "tool_result");
    assert_eq!(content[1]["text"], "by the way");
}

#[test]
fn empty_assistant_messages_are_dropped_and_neighbours_merged() {
    let body = json!({"messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "b"},
    ]});
    let out = openai_chat_to_anthropic_request(&body, "claude").unwrap();
    assert_eq!(out["messages"].as_array().unwrap().len(), 1);
    assert_eq!(out["messages"][0]["content"][1]["text"], "b");
}

#[test]
fn parallel_tool_calls_without_tools_adds_no_tool_choice() {
    let body = json!({"messages": [{"role": "user", "content": "a"}], "parallel_tool_calls": false, "tools": []});
    let out = openai_chat_to_anthropic_request(&body, "claude").unwrap();
    assert!(out.get("tool_choice").is_none());
    assert!(out.get("tools").is_none());
}

#[test]
fn n_of_one_and_nulls_are_accepted() {
    let body = json!({"messages": [{"role": "user", "content": "a"}], "n": 1, "temperature": null,
        "stop": null, "max_tokens": null, "tools": null, "user": null});
    let out = openai_chat_to_anthropic_request(&body, "claude").unwrap();
    assert_eq!(out["max_tokens"], DEFAULT_ANTHROPIC_MAX_TOKENS);
    assert!(out.get("temperature").is_none());
}

#[test]
fn adaptive_thinking_style() {
    let body = json!({"messages": [{"role": "user", "content": "a"}], "reasoning_effort": "xhigh"});
    let options = AnthropicRequestOptions {
        thinking: ThinkingStyle::Adaptive,
    };
    let out = openai_chat_to_anthropic_request_with(&body, "claude-opus-4-7", &options).unwrap();
    assert_eq!(out["thinking"], json!({"type": "adaptive"}));
    assert_eq!(out["output_config"], json!({"effort": "high"}));
    assert_eq!(out["max_tokens"], DEFAULT_ANTHROPIC_MAX_TOKENS);
}

#[test]
fn reasoning_effort_none_enables_nothing() {
    let body = json!({"messages": [{"role": "user", "content": "a"}], "reasoning_effort": "none"});
    let out = openai_chat_to_anthropic_request(&body, "claude").unwrap();
    assert!(out.get("thinking").is_none());
}

#[test]
fn max_completion_tokens_option_and_no_stream_options_without_stream() {
    let body = json!({"max_tokens": 100, "system": "", "stream": false,
        "messages": [{"role": "user", "content": "a"}]});
    let options = OpenAiRequestOptions {
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
    };
    let out = anthropic_to_openai_chat_request_with(&body, "o3", &options).unwrap();
    assert_eq!(out["max_completion_tokens"], 100);
    assert!(out.get("max_tokens").is_none());
    assert!(out.get("stream_options").is_none());
    assert_eq!(
        out["messages"].as_array().unwrap().len(),
        1,
        "empty system string is dropped"
    );
}

#[test]
fn assistant_with_only_thinking_is_dropped() {
    let body = json!({"max_tokens": 10, "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]},
    ]});
    let out = anthropic_to_openai_chat_request(&body, "gpt").unwrap();
    assert_eq!(out["messages"].as_array().unwrap().len(), 1);
}

#[test]
fn a2o_stream_numbers_tools_and_honours_include_usage() {
    let mut stream = AnthropicToOpenAiStream::new("gpt-4o", 1, false);
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ];
    let mut frames = Vec::new();
    for data in events {
        frames.extend(stream.on_event(&event(None, data)).unwrap());
    }
    let text = frames_text(&frames);
    assert!(text.contains(r#""tool_calls":[{"index":0,"id":"t1""#));
    assert!(text.contains(r#""tool_calls":[{"index":0,"function":{"arguments":"{}"}}]"#));
    assert!(
        !text.contains(r#""choices":[]"#),
        "no usage chunk unless asked"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(stream.usage().unwrap().output_tokens, 9);
    assert_eq!(stream.stop_reason(), Some("tool_use"));
    assert!(stream
        .on_event(&event(None, json!({"type": "message_stop"})))
        .unwrap()
        .is_empty());
    assert!(stream.finish().is_empty());
}

#[test]
fn a2o_stream_rejects_non_json_and_fails_once() {
    let mut stream = AnthropicToOpenAiStream::new("gpt-4o", 1, true);
    assert!(matches!(
        stream.on_event(&text_event("{oops")),
        Err(TranslateError::InvalidUpstream { .. })
    ));
    let failed = frames_text(&stream.fail("upstream timed out"));
    assert!(failed.starts_with(r#"data: {"error":{"message":"upstream timed out""#));
    assert!(stream.fail("again").is_empty());
}

#[test]
fn o2a_stream_done_without_finish_reason_ends_cleanly() {
    let mut stream = OpenAiToAnthropicStream::new("claude");
    let chunk = json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}}]});
    let mut frames = stream.on_event(&event(None, chunk)).unwrap();
    frames.extend(stream.on_event(&text_event("[DONE]")).unwrap());
    let text = frames_text(&frames);
    assert!(text.contains(r#""stop_reason":"end_turn""#));
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    assert!(stream.finish().is_empty());
}

#[test]
fn o2a_stream_finalizes_on_usage_in_the_finish_chunk() {
    let mut stream = OpenAiToAnthropicStream::new("claude");
    let chunk = json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1}});
    let text = frames_text(&stream.on_event(&event(None, chunk)).unwrap());
    assert!(text.contains("event: message_stop"));
    assert_eq!(stream.finish_reason(), Some("stop"));
    assert!(stream.on_event(&text_event("[DONE]")).unwrap().is_empty());
}

#[test]
fn o2a_stream_waits_for_usage_after_finish() {
    let mut stream = OpenAiToAnthropicStream::new("claude");
    let finish =
        json!({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]});
    let text = frames_text(&stream.on_event(&event(None, finish)).unwrap());
    assert!(!text.contains("message_delta"));
    let usage =
        json!({"id": "x", "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 7}});
    let text = frames_text(&stream.on_event(&event(None, usage)).unwrap());
    assert!(text.contains(r#""stop_reason":"max_tokens""#));
    assert!(text.contains(r#""output_tokens":7"#));
}

#[test]
fn o2a_stream_rejects_non_json() {
    let mut stream = OpenAiToAnthropicStream::new("claude");
    assert!(stream.on_event(&text_event("nope")).is_err());
}

#[test]
fn translate_error_bodies() {
    let error = TranslateError::invalid("n", "n > 1 is not supported by Anthropic models");
    assert_eq!(error.status(), 400);
    assert_eq!(error.to_openai_body()["error"]["param"], "n");
    assert_eq!(
        error.to_anthropic_body()["error"]["type"],
        "invalid_request_error"
    );
    let upstream = TranslateError::upstream("bad");
    assert_eq!(upstream.status(), 502);
    assert_eq!(upstream.to_anthropic_body()["error"]["type"], "api_error");
    assert_eq!(upstream.to_openai_body()["error"]["type"], "server_error");
}
