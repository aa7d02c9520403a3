//! Anthropic Messages response -> Responses API `response` object.

use serde_json::Value;

use super::echo::{Answer, ResponsesEcho};
use super::items::{
    function_call_item, message_item, opens_json, output_text, reasoning_item, refusal,
    refusal_text, ItemIds, Outcome,
};
use super::reasoning;
use crate::translate::json::{str_field, upstream_object};
use crate::translate::response_a2o::{
    arguments_json, content_blocks, with_anthropic_cache_counts, REFUSAL_TEXT,
};
use crate::translate::TranslateError;
use crate::usage::Usage;

/// Translates an Anthropic message into a Responses `response` object answering a client that
/// asked for `client_model` with the request `echo` was taken from, created at `created_at`
/// (unix seconds; the caller owns the clock).
///
/// The id is `resp_` + the Anthropic id. Output items, in the order of the blocks: a `thinking`
/// or `redacted_thinking` block -> a `reasoning` item (empty `summary`, the thinking text as
/// `reasoning_text` content, and `encrypted_content` when the request included
/// `reasoning.encrypted_content`); a run of `text` blocks -> one `message` item with one
/// `output_text` part; a `tool_use` block -> a `function_call` item (`call_id` = the tool_use
/// id, JSON-string `arguments`). Server tool blocks are dropped.
///
/// `stop_reason` `max_tokens` (or `model_context_window_exceeded`) -> status `incomplete` with
/// `incomplete_details.reason: max_output_tokens` and the last item `incomplete`; `refusal` ->
/// `completed`, the answer ending with a `refusal` part holding a fixed text (in the last message
/// item, or a message item of its own); anything else -> `completed`. When the client asked for a
/// structured output ([`ResponsesEcho::structured_output`]), a refusal is answered the way
/// OpenAI's structured outputs refuse: the last message's only part is a `refusal` part holding
/// its text (the fixed text if blank), unless that text had begun the JSON (`{` or `[`). Usage
/// follows OpenAI semantics ([`openai_responses_usage_json`]).
pub fn anthropic_to_responses_response(
    body: &Value,
    echo: &ResponsesEcho,
    client_model: &str,
    created_at: i64,
) -> Result<Value, TranslateError> {
    let message = upstream_object(body, "response")?;
    let blocks = content_blocks(message)?;
    let ids = ItemIds::new(str_field(message, "id"));
    let outcome = Outcome::of(str_field(message, "stop_reason"));
    let mut items: Vec<Item> = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = block["text"].as_str().unwrap_or_default();
                match items.last_mut() {
                    Some(Item::Message(Some(run))) => run.push_str(text),
                    _ => items.push(Item::Message(Some(text.to_owned()))),
                }
            }
            Some("thinking" | "redacted_thinking") => items.push(Item::Reasoning(block)),
            Some("tool_use") => items.push(Item::Call(block)),
            _ => {}
        }
    }
    if outcome.refused && !matches!(items.last(), Some(Item::Message(_))) {
        items.push(Item::Message(None));
    }
    let last = items.len().saturating_sub(1);
    let output = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let status = if index == last {
                outcome.last_item_status()
            } else {
                "completed"
            };
            let refused = outcome.refused && index == last;
            item.into_value(&ids, index, status, refused, echo)
        })
        .collect();
    let usage = message
        .get("usage")
        .and_then(Usage::from_anthropic)
        .unwrap_or_default();
    Ok(echo.response(Answer {
        id: ids.response(),
        model: client_model,
        created_at,
        status: outcome.status,
        incomplete_reason: outcome.incomplete_reason,
        error: None,
        output,
        usage: Some(usage),
    }))
}

/// Responses usage for Anthropic numbers: `input_tokens` = input + cache read + cache write,
/// `input_tokens_details.cached_tokens` = cache read, `output_tokens_details.reasoning_tokens`
/// 0 (Anthropic does not count thinking apart), plus Anthropic's raw
/// `cache_creation_input_tokens` and `cache_read_input_tokens`, as for chat clients.
pub fn openai_responses_usage_json(usage: Usage) -> Value {
    with_anthropic_cache_counts(usage.to_openai_responses_json(), usage)
}

/// One output item before ids and statuses are known.
enum Item<'a> {
    /// A run of text (`None`: a message holding only the refusal).
    Message(Option<String>),
    Reasoning(&'a Value),
    Call(&'a Value),
}

impl Item<'_> {
    fn into_value(
        self,
        ids: &ItemIds,
        index: usize,
        status: &str,
        refused: bool,
        echo: &ResponsesEcho,
    ) -> Value {
        match self {
            Item::Message(text) => {
                let content = match text {
                    // A structured output's refusal, as OpenAI's structured outputs refuse.
                    Some(text)
                        if refused
                            && echo.structured_output()
                            && opens_json(&text) != Some(true) =>
                    {
                        vec![refusal(refusal_text(&text))]
                    }
                    text => {
                        let mut content: Vec<Value> =
                            text.iter().map(|text| output_text(text)).collect();
                        if refused {
                            content.push(refusal(REFUSAL_TEXT));
                        }
                        content
                    }
                };
                message_item(&ids.item("msg", index), status, content)
            }
            Item::Reasoning(block) => {
                let token = echo
                    .encrypted_reasoning()
                    .then(|| reasoning::seal(block))
                    .flatten();
                let thinking = block["thinking"].as_str().unwrap_or_default();
                reasoning_item(&ids.item("rs", index), thinking, token)
            }
            Item::Call(block) => function_call_item(
                &ids.item("fc", index),
                status,
                &block["id"],
                &block["name"],
                &arguments_json(block),
            ),
        }
    }
}
