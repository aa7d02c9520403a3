//! Whole answers (to chat, messages and Responses) and upstream error bodies, translated, and the secret masking that
//! runs on every upstream error body first. Never panics; a translated answer or error is a JSON
//! object of the client protocol's shape; a configured key never survives masking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_protocol::errors::{
    anthropic_error_to_openai, mask_error_body, openai_error_to_anthropic, parse_error_body,
};
use moat_protocol::translate::{
    anthropic_to_openai_chat_response, anthropic_to_responses_response,
    openai_chat_to_anthropic_response, ResponsesEcho,
};
use serde_json::Value;

/// A provider key as configured; the fuzzer learns it from the seed corpus.
const KEY: &str = "sk-fuzz-0123456789abcdefKEY";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fuzz_target!(|input: &[u8]| {
    let Some((&status_byte, body)) = input.split_first() else {
        return;
    };
    // Masking, as `relay::upstream_failure` runs it on every upstream error body.
    let masked = mask_error_body(body, &[KEY]).unwrap_or_else(|| body.to_vec());
    assert!(
        !contains(&masked, KEY),
        "the configured key survived masking"
    );
    let status =
        [0, 200, 400, 401, 403, 404, 413, 429, 500, 503, 529][usize::from(status_byte % 11)];
    let error = parse_error_body(&masked);
    let openai = anthropic_error_to_openai(status, &error);
    assert!(openai["error"]["message"].is_string(), "{openai}");
    assert!(openai["error"]["type"].is_string(), "{openai}");
    let anthropic = openai_error_to_anthropic(status, &error);
    assert_eq!(anthropic["type"], "error", "{anthropic}");
    assert!(anthropic["error"]["message"].is_string(), "{anthropic}");

    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    for structured in [false, true] {
        if let Ok(out) = anthropic_to_openai_chat_response(&answer, "client-model", 0, structured) {
            assert!(out["choices"].is_array(), "{out}");
            assert_eq!(out["model"], "client-model", "{out}");
        }
    }
    // The answer doubles as the Responses request whose settings are echoed.
    let echo = ResponsesEcho::from_request(&answer);
    if let Ok(out) = anthropic_to_responses_response(&answer, &echo, "client-model", 0) {
        assert_eq!(out["object"], "response", "{out}");
        assert!(out["output"].is_array(), "{out}");
        assert_eq!(out["model"], "client-model", "{out}");
    }
    if let Ok(out) = openai_chat_to_anthropic_response(&answer, "client-model") {
        assert!(out["content"].is_array(), "{out}");
        assert_eq!(out["model"], "client-model", "{out}");
    }
});
