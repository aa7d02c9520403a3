//! Translation between OpenAI Chat Completions and Anthropic Messages, and from the OpenAI
//! Responses API to Anthropic Messages and back: requests, responses, streams. Errors have their
//! own module ([`crate::errors`]).
//!
//! Each function takes and returns `serde_json::Value` bodies. Requests fail with
//! [`TranslateError::InvalidRequest`] (the client's fault) and a client-facing message naming the
//! field; responses and streams fail with [`TranslateError::InvalidUpstream`]. No input panics.

mod anthropic_event;
mod contract;
mod error;
mod json;
mod mapping;
mod messages_a2o;
mod messages_o2a;
mod request_a2o;
mod request_o2a;
mod response_a2o;
mod response_o2a;
mod responses;
mod stream_a2o;
mod stream_o2a;
mod structured;

pub use error::TranslateError;
pub use mapping::{
    adaptive_effort_for_reasoning, finish_reason_for_stop_reason, reasoning_effort_for_adaptive,
    reasoning_effort_for_budget, stop_reason_for_finish_reason, thinking_budget_for_effort,
    MIN_THINKING_BUDGET,
};
pub use request_a2o::{
    anthropic_to_openai_chat_request, anthropic_to_openai_chat_request_with, MaxTokensField,
    OpenAiRequestOptions,
};
pub use request_o2a::{
    openai_chat_to_anthropic_request, openai_chat_to_anthropic_request_with,
    AnthropicRequestOptions, ThinkingStyle, DEFAULT_ANTHROPIC_MAX_TOKENS,
};
pub use response_a2o::{
    anthropic_to_openai_chat_response, asks_structured_output, openai_usage_json,
};
pub use response_o2a::openai_chat_to_anthropic_response;
pub use responses::{
    anthropic_to_responses_response, openai_responses_usage_json, responses_to_anthropic_request,
    responses_to_anthropic_request_with, AnthropicToResponsesStream, ResponsesEcho,
};
pub use stream_a2o::AnthropicToOpenAiStream;
pub use stream_o2a::OpenAiToAnthropicStream;
pub use structured::{anthropic_schema, JSON_OBJECT_INSTRUCTION};

#[cfg(test)]
mod tests;
