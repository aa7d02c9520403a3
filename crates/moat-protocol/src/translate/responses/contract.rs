//! Responses request fields an Anthropic target cannot honour, refused with a 400 naming the
//! field: what needs OpenAI's stored state, and output Anthropic does not produce.

use serde_json::Value;

use crate::translate::contract::{anthropic_target, use_openai};
use crate::translate::json::{expect_array, field, item, Object};
use crate::translate::TranslateError;

/// The only `include` entry an Anthropic target can honour.
pub(super) const ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// What a client relying on OpenAI's stored state can do instead.
pub(super) const SEND_EVERYTHING: &str =
    "moat keeps no responses, items or conversations: send the whole conversation in input, with store: false";

/// Refuses `previous_response_id`, `conversation`, `background: true`, `prompt` (a stored
/// template), `top_logprobs` above 0 and `include` entries other than
/// `reasoning.encrypted_content`.
pub(super) fn refuse_for_anthropic(
    request: &Object,
    target_model: &str,
) -> Result<(), TranslateError> {
    let target = anthropic_target(target_model);
    for param in ["previous_response_id", "conversation"] {
        if field(request, param).is_some() {
            return Err(TranslateError::unsupported(param, &target, SEND_EVERYTHING));
        }
    }
    if field(request, "background").and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::unsupported(
            "background",
            &target,
            "moat answers in the foreground only: remove background",
        ));
    }
    if field(request, "prompt").is_some() {
        return Err(TranslateError::unsupported(
            "prompt",
            &target,
            "prompt templates are stored at OpenAI: send instructions and input instead",
        ));
    }
    match field(request, "top_logprobs") {
        Some(count) if count.as_f64() != Some(0.0) => {
            return Err(TranslateError::unsupported(
                "top_logprobs",
                &target,
                use_openai(),
            ));
        }
        _ => {}
    }
    let Some(include) = field(request, "include") else {
        return Ok(());
    };
    for (index, entry) in expect_array(include, "include")?.iter().enumerate() {
        if entry.as_str() != Some(ENCRYPTED_REASONING) {
            return Err(TranslateError::unsupported(
                item("include", index),
                &target,
                &format!("it can include only {ENCRYPTED_REASONING}, not {entry}"),
            ));
        }
    }
    Ok(())
}
