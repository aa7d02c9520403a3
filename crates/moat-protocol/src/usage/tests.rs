//! Unit tests of usage parsing and stream observation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::sse::SseEvent;

fn event(name: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: name.map(str::to_owned),
        data: data.to_owned(),
        raw: Bytes::new(),
    }
}

#[test]
fn openai_chat_usage_counts_cached_inside_input() {
    let body = json!({"usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
        "prompt_tokens_details": {"cached_tokens": 60}, "completion_tokens_details": {"reasoning_tokens": 5}}});
    let usage = Usage::from_openai_chat(&body).unwrap();
    assert_eq!(
        usage,
        Usage {
            input_tokens: 100,
            output_tokens: 20,
            cache_read_tokens: 60,
            cache_write_tokens: 0,
            reasoning_tokens: 5
        }
    );
    assert_eq!(usage.uncached_input_tokens(), 40);
    assert_eq!(Usage::from_openai_chat(&json!({"usage": null})), None);
    assert_eq!(Usage::from_openai_chat(&json!(3)), None);
}

#[test]
fn deepseek_cache_hits_are_read_when_details_are_missing() {
    let body = json!({"usage": {"prompt_tokens": 10, "completion_tokens": 1, "prompt_cache_hit_tokens": 8}});
    assert_eq!(Usage::from_openai_chat(&body).unwrap().cache_read_tokens, 8);
}

#[test]
fn anthropic_usage_sums_cache_into_input() {
    let usage = Usage::from_anthropic(
        &json!({"input_tokens": 10, "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 3000, "output_tokens": 7}),
    )
    .unwrap();
    assert_eq!(
        usage,
        Usage {
            input_tokens: 3210,
            output_tokens: 7,
            cache_read_tokens: 3000,
            cache_write_tokens: 200,
            reasoning_tokens: 0
        }
    );
    assert_eq!(usage.to_anthropic_json()["input_tokens"], 10);
    assert_eq!(usage.to_openai_chat_json()["prompt_tokens"], 3210);
    assert_eq!(Usage::from_anthropic(&json!("x")), None);
}

#[test]
fn responses_and_embeddings_usage() {
    let response = json!({"usage": {"input_tokens": 50, "output_tokens": 9, "total_tokens": 59,
        "input_tokens_details": {"cached_tokens": 32}, "output_tokens_details": {"reasoning_tokens": 4}}});
    assert_eq!(
        Usage::from_openai_responses(&response).unwrap(),
        Usage {
            input_tokens: 50,
            output_tokens: 9,
            cache_read_tokens: 32,
            cache_write_tokens: 0,
            reasoning_tokens: 4
        }
    );
    let embeddings = json!({"usage": {"prompt_tokens": 8, "total_tokens": 8}});
    assert_eq!(
        Usage::from_openai_embeddings(&embeddings)
            .unwrap()
            .input_tokens,
        8
    );
}

#[test]
fn lenient_counts() {
    let body = json!({"usage": {"prompt_tokens": 12.0, "completion_tokens": -3, "prompt_tokens_details": {"cached_tokens": "7"}}});
    let usage = Usage::from_openai_chat(&body).unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens
        ),
        (12, 0, 0)
    );
}

#[test]
fn observes_an_openai_chat_stream() {
    let mut observer = UsageObserver::new();
    let kind = StreamKind::OpenAiChat;
    observer.observe(
        kind,
        &event(
            None,
            r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#,
        ),
    );
    observer.observe(kind, &event(None, "not json"));
    observer.observe(
        kind,
        &event(
            None,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        ),
    );
    assert_eq!(observer.stop_reason(), Some("stop"));
    assert!(observer.usage().is_none());
    assert!(!observer.completed());
    observer.observe(
        kind,
        &event(
            None,
            r#"{"choices":null,"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
        ),
    );
    observer.observe(kind, &event(None, "[DONE]"));
    assert_eq!(observer.usage().unwrap().total_tokens(), 7);
    assert!(observer.completed());
}

#[test]
fn observes_a_responses_stream() {
    let mut observer = UsageObserver::new();
    let kind = StreamKind::OpenAiResponses;
    observer.observe(
        kind,
        &event(
            Some("response.created"),
            r#"{"type":"response.created","response":{"status":"in_progress"}}"#,
        ),
    );
    assert!(!observer.completed());
    observer.observe(kind, &event(Some("response.incomplete"), r#"{"type":"response.incomplete","response":{"status":"incomplete",
        "incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":3,"output_tokens":4}}}"#));
    assert!(observer.completed());
    assert_eq!(observer.stop_reason(), Some("max_output_tokens"));
    assert_eq!(observer.usage().unwrap().output_tokens, 4);

    let mut failed = UsageObserver::new();
    failed.observe(
        kind,
        &event(
            Some("response.failed"),
            r#"{"type":"response.failed","response":{"status":"failed"}}"#,
        ),
    );
    assert!(!failed.completed());
    assert_eq!(failed.stop_reason(), Some("failed"));
}

#[test]
fn observes_an_anthropic_stream_with_cumulative_deltas() {
    let mut observer = UsageObserver::new();
    let kind = StreamKind::Anthropic;
    observer.observe(kind, &event(Some("message_start"), r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":1}}}"#));
    assert_eq!(observer.usage().unwrap().input_tokens, 100);
    observer.observe(kind, &event(Some("ping"), r#"{"type":"ping"}"#));
    observer.observe(kind, &event(Some("message_delta"), r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":42}}"#));
    observer.observe(kind, &event(Some("message_delta"), r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":11,"output_tokens":50}}"#));
    assert!(!observer.completed());
    observer.observe(
        kind,
        &event(Some("message_stop"), r#"{"type":"message_stop"}"#),
    );
    let usage = observer.usage().unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens
        ),
        (101, 50, 90)
    );
    assert_eq!(observer.stop_reason(), Some("end_turn"));
    assert!(observer.completed());
}

#[test]
fn token_estimate_counts_text_not_structure() {
    let body = serde_json::json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"}, "efgh"]}]});
    assert_eq!(super::estimate_input_tokens(&body), 2);
    assert_eq!(super::estimate_input_tokens(&serde_json::json!({})), 1);
}

#[test]
fn usage_only_chunks_are_told_from_content_chunks() {
    assert!(super::is_usage_only_chunk(
        r#"{"choices":[],"usage":{"prompt_tokens":1}}"#
    ));
    assert!(super::is_usage_only_chunk(
        r#"{"choices":null,"usage":{"prompt_tokens":1}}"#
    ));
    assert!(!super::is_usage_only_chunk(
        r#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1}}"#
    ));
    assert!(!super::is_usage_only_chunk(
        r#"{"choices":[],"usage":null}"#
    ));
}
