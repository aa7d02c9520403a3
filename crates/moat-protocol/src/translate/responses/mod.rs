//! The OpenAI Responses API (`POST /v1/responses`) to and from Anthropic Messages: a client that
//! speaks only Responses (Vercel AI SDK's `openai(model)`, Codex-style agents, the official SDKs'
//! `responses.create` and `responses.stream`) reaches a Claude model.
//!
//! moat relays statelessly: nothing is stored, so everything that needs OpenAI's server state
//! (`previous_response_id`, `conversation`, `item_reference` items, stored `prompt`s, `background`)
//! is refused with a 400 naming the field. Reasoning survives a round trip anyway: with `include:
//! ["reasoning.encrypted_content"]` each thinking block comes back as a reasoning item whose
//! `encrypted_content` is a moat token holding the thinking text and its signature (see
//! [`reasoning`]), and a later request that sends the item back restores the block.
//!
//! Answers, whole ([`anthropic_to_responses_response`]) or streamed
//! ([`AnthropicToResponsesStream`]), give the same output items in the same order: a thinking
//! block -> a `reasoning` item, a run of text blocks -> one `message` item, a `tool_use` block ->
//! a `function_call` item.

mod contract;
mod echo;
mod events;
mod input;
mod items;
mod reasoning;
mod request;
mod response;
mod stream;

pub use echo::ResponsesEcho;
pub use request::{responses_to_anthropic_request, responses_to_anthropic_request_with};
pub use response::{anthropic_to_responses_response, openai_responses_usage_json};
pub use stream::AnthropicToResponsesStream;

#[cfg(test)]
mod tests;
