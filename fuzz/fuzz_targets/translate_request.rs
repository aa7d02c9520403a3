//! Request translation (OpenAI chat and Responses -> Anthropic Messages and back, every option) over
//! arbitrary JSON: never panics, and what it returns is a JSON object that survives a round trip
//! through its text, for the target model, with a `messages` array.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_protocol::translate::{
    anthropic_to_openai_chat_request_with, openai_chat_to_anthropic_request_with,
    responses_to_anthropic_request_with, AnthropicRequestOptions, MaxTokensField,
    OpenAiRequestOptions, ThinkingStyle,
};
use serde_json::Value;

fn check(out: Result<Value, moat_protocol::TranslateError>) {
    let Ok(out) = out else { return };
    assert!(out.is_object(), "not an object: {out}");
    assert_eq!(out["model"], "target-model", "{out}");
    assert!(out["messages"].is_array(), "no messages: {out}");
    let text = serde_json::to_string(&out).unwrap_or_default();
    let back: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(back, out, "does not survive its own text");
}

fuzz_target!(|input: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    for thinking in [ThinkingStyle::Budget, ThinkingStyle::Adaptive] {
        let options = AnthropicRequestOptions { thinking };
        check(openai_chat_to_anthropic_request_with(
            &body,
            "target-model",
            &options,
        ));
        check(responses_to_anthropic_request_with(
            &body,
            "target-model",
            &options,
        ));
    }
    for max_tokens_field in [
        MaxTokensField::MaxTokens,
        MaxTokensField::MaxCompletionTokens,
    ] {
        let options = OpenAiRequestOptions { max_tokens_field };
        check(anthropic_to_openai_chat_request_with(
            &body,
            "target-model",
            &options,
        ));
    }
});
