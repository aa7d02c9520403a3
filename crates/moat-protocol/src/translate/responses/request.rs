//! OpenAI Responses request -> Anthropic Messages request.

use serde_json::{json, Value};

use super::contract;
use super::input::convert_input;
use crate::translate::contract::anthropic_target;
use crate::translate::json::{child, expect_object, expect_str, field, positive_int};
use crate::translate::request_o2a::{assemble, function_tool, Parts};
use crate::translate::structured;
use crate::translate::{AnthropicRequestOptions, TranslateError};

/// Translates a Responses request into an Anthropic Messages request for `target_model`, with
/// default [`AnthropicRequestOptions`].
///
/// See [`responses_to_anthropic_request_with`] for the rules.
pub fn responses_to_anthropic_request(
    body: &Value,
    target_model: &str,
) -> Result<Value, TranslateError> {
    responses_to_anthropic_request_with(body, target_model, &AnthropicRequestOptions::default())
}

/// Translates a Responses request into an Anthropic Messages request for `target_model`.
///
/// - `instructions` -> the first system block; `input` -> system blocks and alternating
///   messages: a string is one user message; `message` items (role user, assistant, system or
///   developer; `input_text`, `output_text`, `refusal`, `input_image` by data: or https URL,
///   `input_file` inline or by URL) -> blocks; `function_call` items -> `tool_use` blocks (the
///   arguments must be a JSON object); `function_call_output` items -> `tool_result` blocks in
///   a user message, placed first; `reasoning` items carrying a moat token -> thinking blocks,
///   other reasoning items dropped;
/// - `max_output_tokens`, else
///   [`DEFAULT_ANTHROPIC_MAX_TOKENS`](crate::translate::DEFAULT_ANTHROPIC_MAX_TOKENS); `reasoning.effort` -> thinking
///   by the same rules as chat's `reasoning_effort` (see
///   [`crate::translate::openai_chat_to_anthropic_request_with`]);
/// - function tools (flat `{type: "function", name, description, parameters}`) -> Anthropic
///   tools, `tool_choice` and `parallel_tool_calls: false` as in chat; `text.format` ->
///   `output_config.format` (see [`crate::translate::anthropic_schema`]); `temperature`,
///   `top_p` and `stream` copied; `user`, else `safety_identifier` -> `metadata.user_id`.
///
/// Refused with a 400 naming the field: `previous_response_id`, `conversation`,
/// `background: true`, `prompt`, `top_logprobs` above 0, `include` entries other than
/// `reasoning.encrypted_content`, `item_reference` input items, tool types other than
/// `function` and input items of such tools, and files uploaded to OpenAI (`file_id`).
///
/// Ignored, as they do not change the answer's shape: `store` (moat is a stateless relay:
/// nothing is stored, whatever it says), `metadata`, `service_tier`, `prompt_cache_key`,
/// `prompt_cache_retention`, `truncation`, `max_tool_calls`, `text.verbosity`,
/// `reasoning.summary`, `stream_options`, a tool's `strict`, an image's `detail`, item ids and
/// statuses, and any unknown field.
pub fn responses_to_anthropic_request_with(
    body: &Value,
    target_model: &str,
    options: &AnthropicRequestOptions,
) -> Result<Value, TranslateError> {
    let request = expect_object(body, "")?;
    contract::refuse_for_anthropic(request, target_model)?;
    let conversation = convert_input(request, target_model)?;
    let effort = match field(request, "reasoning") {
        None => None,
        Some(reasoning) => field(expect_object(reasoning, "reasoning")?, "effort"),
    };
    let parts = Parts {
        conversation,
        explicit_max: positive_int(request, "max_output_tokens")?,
        convert_tool,
        named_choice: named_tool_choice,
        stop_sequences: None,
        effort: (effort, "reasoning.effort"),
        format: (structured::from_responses(request)?, "text.format.schema"),
    };
    assemble(request, target_model, parts, options.thinking)
}

/// A flat function tool `{type: "function", name, description, parameters}` -> an Anthropic
/// tool; any other type (web_search, file_search, computer_use_preview, code_interpreter,
/// image_generation, mcp, custom, ...) is a tool OpenAI runs or parses itself: refused.
fn convert_tool(tool: &Value, path: &str, target_model: &str) -> Result<Value, TranslateError> {
    let tool = expect_object(tool, path)?;
    let kind = expect_str(tool, "type", path)?;
    if kind != "function" {
        return Err(TranslateError::unsupported(
            child(path, "type"),
            &anthropic_target(target_model),
            &format!("it cannot run OpenAI's '{kind}' tool; only function tools are translated"),
        ));
    }
    function_tool(tool, path).map(Value::Object)
}

/// `{type: "function", name}` -> `{type: "tool", name}`; the other forms (`allowed_tools`,
/// hosted tools, `mcp`, `custom`) are refused.
fn named_tool_choice(choice: &Value, target_model: &str) -> Result<Value, TranslateError> {
    let choice = expect_object(choice, "tool_choice")?;
    let kind = expect_str(choice, "type", "tool_choice")?;
    if kind != "function" {
        return Err(TranslateError::unsupported(
            "tool_choice.type",
            &anthropic_target(target_model),
            &format!("it can be made to use a function, not '{kind}'"),
        ));
    }
    let name = expect_str(choice, "name", "tool_choice")?;
    Ok(json!({"type": "tool", "name": name}))
}
