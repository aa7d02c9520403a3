//! Golden tests: every fixture under `tests/fixtures/<direction>/` is translated and the result
//! compared with its snapshot under `tests/snapshots/`, one snapshot per input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use moat_protocol::errors::{anthropic_error_to_openai, openai_error_to_anthropic};
use moat_protocol::translate::{
    anthropic_to_openai_chat_request, anthropic_to_openai_chat_response,
    openai_chat_to_anthropic_request, openai_chat_to_anthropic_response, AnthropicToOpenAiStream,
    OpenAiToAnthropicStream, TranslateError,
};
use serde_json::{json, Value};
use support::{fixtures, read_json, recorded_events, transcript};

const CREATED: i64 = 1_700_000_000;

fn error_snapshot(error: &TranslateError, body: Value) -> Value {
    json!({"status": error.status(), "param": error.param(), "body": body})
}

#[test]
fn requests_openai_to_anthropic() {
    for (name, path) in fixtures("request_o2a") {
        let out = openai_chat_to_anthropic_request(&read_json(&path), "claude-sonnet-4-5")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_json_snapshot!(format!("request_o2a__{name}"), out);
    }
}

#[test]
fn invalid_requests_openai_to_anthropic() {
    for (name, path) in fixtures("request_o2a_invalid") {
        let error = openai_chat_to_anthropic_request(&read_json(&path), "claude-sonnet-4-5")
            .expect_err(&name);
        let snapshot = error_snapshot(&error, error.to_openai_body());
        insta::assert_json_snapshot!(format!("request_o2a_invalid__{name}"), snapshot);
    }
}

#[test]
fn requests_anthropic_to_openai() {
    for (name, path) in fixtures("request_a2o") {
        let out = anthropic_to_openai_chat_request(&read_json(&path), "gpt-4.1")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_json_snapshot!(format!("request_a2o__{name}"), out);
    }
}

#[test]
fn invalid_requests_anthropic_to_openai() {
    for (name, path) in fixtures("request_a2o_invalid") {
        let error =
            anthropic_to_openai_chat_request(&read_json(&path), "gpt-4.1").expect_err(&name);
        let snapshot = error_snapshot(&error, error.to_anthropic_body());
        insta::assert_json_snapshot!(format!("request_a2o_invalid__{name}"), snapshot);
    }
}

#[test]
fn responses_anthropic_to_openai() {
    for (name, path) in fixtures("response_a2o") {
        // Fixtures named `structured_*` answer a request that asked for a structured output.
        let structured = name.starts_with("structured");
        let out =
            anthropic_to_openai_chat_response(&read_json(&path), "gpt-4o", CREATED, structured)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_json_snapshot!(format!("response_a2o__{name}"), out);
    }
}

#[test]
fn responses_openai_to_anthropic() {
    for (name, path) in fixtures("response_o2a") {
        let out = openai_chat_to_anthropic_response(&read_json(&path), "claude-sonnet-4-5")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_json_snapshot!(format!("response_o2a__{name}"), out);
    }
}

#[test]
fn errors_openai_to_anthropic() {
    for (name, path) in fixtures("error_o2a") {
        let fixture = read_json(&path);
        let status = fixture["status"].as_u64().unwrap() as u16;
        let out = openai_error_to_anthropic(status, &fixture["body"]);
        insta::assert_json_snapshot!(format!("error_o2a__{name}"), out);
    }
}

#[test]
fn errors_anthropic_to_openai() {
    for (name, path) in fixtures("error_a2o") {
        let fixture = read_json(&path);
        let status = fixture["status"].as_u64().unwrap() as u16;
        let out = anthropic_error_to_openai(status, &fixture["body"]);
        insta::assert_json_snapshot!(format!("error_a2o__{name}"), out);
    }
}

#[test]
fn streams_anthropic_to_openai() {
    for (name, path) in fixtures("stream_a2o") {
        let include_usage = !name.contains("no_usage");
        let mut stream = AnthropicToOpenAiStream::new("gpt-4o", CREATED, include_usage)
            .structured_output(name.starts_with("structured"));
        let mut frames = Vec::new();
        for event in recorded_events(&path) {
            frames.extend(
                stream
                    .on_event(&event)
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
            );
        }
        frames.extend(stream.finish());
        assert!(stream.finish().is_empty(), "{name}: finish is idempotent");
        insta::assert_snapshot!(
            format!("stream_a2o__{name}"),
            transcript(&frames, stream.usage())
        );
    }
}

#[test]
fn streams_openai_to_anthropic() {
    for (name, path) in fixtures("stream_o2a") {
        let mut stream = OpenAiToAnthropicStream::new("claude-sonnet-4-5");
        let mut frames = Vec::new();
        for event in recorded_events(&path) {
            frames.extend(
                stream
                    .on_event(&event)
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
            );
        }
        frames.extend(stream.finish());
        assert!(stream.finish().is_empty(), "{name}: finish is idempotent");
        insta::assert_snapshot!(
            format!("stream_o2a__{name}"),
            transcript(&frames, stream.usage())
        );
    }
}
