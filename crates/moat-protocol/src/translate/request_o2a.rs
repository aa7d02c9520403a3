//! OpenAI Chat Completions request -> Anthropic Messages request.

use serde_json::{json, Value};

use super::contract;
use super::json::{
    child, copy_as, copy_field, expect_array, expect_object, expect_str, field, item, positive_int,
    str_field, Object,
};
use super::mapping::{
    adaptive_effort_for_reasoning, thinking_budget_for_effort, MIN_THINKING_BUDGET,
};
use super::messages_o2a::{convert_messages, AnthropicConversation};
use super::structured::{self, OutputFormat};
use super::TranslateError;

/// `max_tokens` sent to Anthropic, which requires it, when the OpenAI client set neither
/// `max_completion_tokens` nor `max_tokens`. 4096 fits every current Claude model's output limit.
pub const DEFAULT_ANTHROPIC_MAX_TOKENS: u64 = 4096;

/// How `reasoning_effort` is expressed to Anthropic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ThinkingStyle {
    /// `thinking: {type: "enabled", budget_tokens}`: models up to Claude 4.6.
    #[default]
    Budget,
    /// `thinking: {type: "adaptive"}` plus `output_config.effort`: Claude 4.6 and later, and
    /// the only form Claude Opus 4.7 and later accept.
    Adaptive,
}

/// Choices for [`openai_chat_to_anthropic_request_with`] that depend on the target model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnthropicRequestOptions {
    /// How to express `reasoning_effort`.
    pub thinking: ThinkingStyle,
}

/// Translates an OpenAI chat request into an Anthropic Messages request for `target_model`,
/// with default [`AnthropicRequestOptions`].
///
/// See [`openai_chat_to_anthropic_request_with`] for the rules.
pub fn openai_chat_to_anthropic_request(
    body: &Value,
    target_model: &str,
) -> Result<Value, TranslateError> {
    openai_chat_to_anthropic_request_with(body, target_model, &AnthropicRequestOptions::default())
}

/// Translates an OpenAI chat request into an Anthropic Messages request for `target_model`.
///
/// - system/developer messages -> `system` text blocks, in order and never merged; text,
///   `image_url` (data: URL -> base64 source, http(s) URL -> url source) and `file` (inline PDF
///   -> document) parts -> blocks, keeping any `cache_control`; assistant `tool_calls` ->
///   `tool_use` blocks whose `input` is the parsed arguments (invalid JSON is an error);
///   consecutive `tool` messages -> one user message of `tool_result` blocks, placed first;
///   consecutive same-role messages merged, since Anthropic requires alternation;
/// - `max_completion_tokens`, else `max_tokens`, else [`DEFAULT_ANTHROPIC_MAX_TOKENS`];
/// - `stop` -> `stop_sequences`; `temperature`, `top_p`, `stream` copied; `user` ->
///   `metadata.user_id`; tools and `tool_choice` converted, `parallel_tool_calls: false` ->
///   `disable_parallel_tool_use: true`;
/// - `reasoning_effort` -> thinking, budgets from [`thinking_budget_for_effort`]. The budget is
///   kept below `max_tokens`: with a client-set limit it is cut to `max_tokens - 1` and thinking is
///   left off if that is under Anthropic's minimum of 1024; without one, `max_tokens` becomes the
///   default plus the budget so the answer keeps its room. Thinking is left off for a turn whose
///   last assistant message called tools without a thinking block first (Anthropic refuses
///   that combination, and chat cannot carry thinking blocks back). Anthropic may reject thinking
///   combined with `temperature` or a forced tool choice; those are passed on unchanged.
/// - `response_format` -> `output_config.format` (see [`super::structured`]);
/// - assistant `reasoning_content` is not sent (it has no signature).
///
/// Refused (see [`super::contract`]): `n` > 1, `logprobs`, `top_logprobs`, `logit_bias`,
/// audio output, the legacy `functions`/`function_call`, `web_search_options`, tool types other
/// than `function`. Ignored, as hints without an Anthropic equivalent that do not change the
/// answer's shape: `frequency_penalty`, `presence_penalty`, `seed`, `service_tier`, `store`,
/// `metadata`, `prediction`, `stream_options`, `verbosity`, `prompt_cache_key`, message `name`s
/// and any unknown field. `safety_identifier` is the end user's id when `user` is absent.
pub fn openai_chat_to_anthropic_request_with(
    body: &Value,
    target_model: &str,
    options: &AnthropicRequestOptions,
) -> Result<Value, TranslateError> {
    let request = expect_object(body, "")?;
    contract::refuse_for_anthropic(request, target_model)?;
    let messages = request
        .get("messages")
        .ok_or_else(|| TranslateError::invalid("messages", "messages is required"))?;
    let conversation = convert_messages(messages)?;
    let explicit_max = match positive_int(request, "max_completion_tokens")? {
        Some(max) => Some(max),
        None => positive_int(request, "max_tokens")?,
    };
    let parts = Parts {
        conversation,
        explicit_max,
        convert_tool,
        named_choice: named_tool_choice,
        stop_sequences: stop_sequences(request)?,
        effort: (field(request, "reasoning_effort"), "reasoning_effort"),
        format: (
            structured::from_chat(request)?,
            "response_format.json_schema.schema",
        ),
    };
    assemble(request, target_model, parts, options.thinking)
}

/// What an OpenAI request kind (chat or Responses) contributes to the Anthropic request
/// [`assemble`] builds.
pub(super) struct Parts<'a> {
    /// System blocks and messages.
    pub conversation: AnthropicConversation,
    /// The output limit the client set.
    pub explicit_max: Option<u64>,
    /// Converts one entry of `tools`.
    pub convert_tool: ToolConverter,
    /// Converts the object form of `tool_choice`.
    pub named_choice: NamedChoiceConverter,
    /// `stop_sequences`, where the request kind has them.
    pub stop_sequences: Option<Value>,
    /// The reasoning effort asked for, and the name of its parameter.
    pub effort: (Option<&'a Value>, &'static str),
    /// The output format asked for, and the name of the parameter holding its schema.
    pub format: (OutputFormat, &'static str),
}

/// The Anthropic request from `parts` and what chat and Responses requests share: `model`,
/// `max_tokens` (the client's, else [`DEFAULT_ANTHROPIC_MAX_TOKENS`], raised for thinking),
/// `system`, `messages`, tools and `tool_choice`, `temperature`, `top_p`, `metadata.user_id`
/// (from `user`, else `safety_identifier`), thinking, the output format and `stream`.
pub(super) fn assemble(
    request: &Object,
    target_model: &str,
    parts: Parts,
    style: ThinkingStyle,
) -> Result<Value, TranslateError> {
    let mut out = Object::new();
    out.insert("model".to_owned(), json!(target_model));
    out.insert(
        "max_tokens".to_owned(),
        json!(parts.explicit_max.unwrap_or(DEFAULT_ANTHROPIC_MAX_TOKENS)),
    );
    if !parts.conversation.system.is_empty() {
        out.insert("system".to_owned(), Value::Array(parts.conversation.system));
    }
    let messages = parts.conversation.messages;
    out.insert("messages".to_owned(), Value::Array(messages));
    if let Some(tools) = convert_tools(request, target_model, parts.convert_tool)? {
        out.insert("tools".to_owned(), Value::Array(tools));
        if let Some(choice) = convert_tool_choice(request, target_model, parts.named_choice)? {
            out.insert("tool_choice".to_owned(), choice);
        }
    }
    if let Some(stop) = parts.stop_sequences {
        out.insert("stop_sequences".to_owned(), stop);
    }
    copy_field(request, &mut out, "temperature");
    copy_field(request, &mut out, "top_p");
    if let Some(user) = str_field(request, "user").or(str_field(request, "safety_identifier")) {
        out.insert("metadata".to_owned(), json!({"user_id": user}));
    }
    let (effort, effort_param) = parts.effort;
    apply_reasoning(effort, effort_param, parts.explicit_max, style, &mut out)?;
    let messages = out.get("messages").and_then(Value::as_array);
    if messages.is_some_and(|m| tool_loop_without_thinking(m)) {
        // Anthropic refuses thinking when the tool loop in progress did not start with a thinking
        // block ("a final assistant message must start with a thinking block"), and chat clients
        // have no way to send one back: this turn goes without thinking, as Anthropic advises.
        out.remove("thinking");
    }
    let (format, format_param) = parts.format;
    structured::apply_to_anthropic(&format, format_param, &mut out)?;
    copy_as(request, "stream", &mut out, "stream");
    Ok(Value::Object(out))
}

/// Whether the last assistant message calls tools without starting with a thinking block.
fn tool_loop_without_thinking(messages: &[Value]) -> bool {
    let Some(last) = messages.iter().rev().find(|m| m["role"] == "assistant") else {
        return false;
    };
    let blocks = last["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let calls_tools = blocks.iter().any(|b| b["type"] == "tool_use");
    let first = blocks.first().and_then(|b| b["type"].as_str());
    calls_tools && !matches!(first, Some("thinking" | "redacted_thinking"))
}

/// Converts one entry of `tools` found at a path for the named target model.
pub(super) type ToolConverter = fn(&Value, &str, &str) -> Result<Value, TranslateError>;

/// `tools`, each converted by `convert` -> Anthropic tools; `None` when there are none (an
/// empty list is left out rather than sent).
fn convert_tools(
    request: &Object,
    target_model: &str,
    convert: ToolConverter,
) -> Result<Option<Vec<Value>>, TranslateError> {
    let Some(tools) = field(request, "tools") else {
        return Ok(None);
    };
    let tools = expect_array(tools, "tools")?;
    let mut out = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        out.push(convert(tool, &item("tools", index), target_model)?);
    }
    Ok((!out.is_empty()).then_some(out))
}

/// A nested chat tool `{type: "function", function: {...}}` -> an Anthropic tool.
fn convert_tool(tool: &Value, path: &str, target_model: &str) -> Result<Value, TranslateError> {
    let tool = expect_object(tool, path)?;
    let kind = str_field(tool, "type").unwrap_or("function");
    if kind != "function" {
        return Err(TranslateError::unsupported(
            child(path, "type"),
            &contract::anthropic_target(target_model),
            &format!("its tools are functions, not '{kind}'"),
        ));
    }
    let function_path = child(path, "function");
    let function = expect_object(tool.get("function").unwrap_or(&Value::Null), &function_path)?;
    let mut out = function_tool(function, &function_path)?;
    copy_field(tool, &mut out, "cache_control");
    Ok(Value::Object(out))
}

/// A function definition `{name, description, parameters}` at `path` -> an Anthropic tool
/// `{name, description, input_schema}` (an empty object schema when `parameters` is absent).
pub(super) fn function_tool(function: &Object, path: &str) -> Result<Object, TranslateError> {
    let mut out = Object::new();
    out.insert(
        "name".to_owned(),
        json!(expect_str(function, "name", path)?),
    );
    copy_field(function, &mut out, "description");
    let schema = field(function, "parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    out.insert("input_schema".to_owned(), schema);
    Ok(out)
}

/// Converts the object form of `tool_choice` (naming one function) to an Anthropic one, for the
/// named target model.
pub(super) type NamedChoiceConverter = fn(&Value, &str) -> Result<Value, TranslateError>;

/// `tool_choice` (`auto`, `required`, `none`, or an object converted by `named`) and
/// `parallel_tool_calls` -> Anthropic `tool_choice` (only sent with tools).
fn convert_tool_choice(
    request: &Object,
    target_model: &str,
    named: NamedChoiceConverter,
) -> Result<Option<Value>, TranslateError> {
    let mut choice = match field(request, "tool_choice") {
        None => None,
        Some(Value::String(mode)) => Some(match mode.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            other => {
                return Err(TranslateError::invalid(
                    "tool_choice",
                    format!("tool_choice '{other}' is not supported by Anthropic models"),
                ))
            }
        }),
        Some(object) => Some(named(object, target_model)?),
    };
    let parallel = field(request, "parallel_tool_calls").and_then(Value::as_bool);
    if parallel == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            if let Some(object) = choice.as_object_mut() {
                object.insert("disable_parallel_tool_use".to_owned(), json!(true));
            }
        }
    }
    Ok(choice)
}

fn named_tool_choice(choice: &Value, _target_model: &str) -> Result<Value, TranslateError> {
    let object = expect_object(choice, "tool_choice")?;
    if str_field(object, "type") != Some("function") {
        return Err(TranslateError::invalid(
            "tool_choice.type",
            "tool_choice must be auto, required, none or a function",
        ));
    }
    let function = expect_object(
        object.get("function").unwrap_or(&Value::Null),
        "tool_choice.function",
    )?;
    let name = expect_str(function, "name", "tool_choice.function")?;
    Ok(json!({"type": "tool", "name": name}))
}

fn stop_sequences(request: &Object) -> Result<Option<Value>, TranslateError> {
    match field(request, "stop") {
        None => Ok(None),
        Some(Value::String(stop)) => Ok(Some(json!([stop]))),
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            Ok((!stops.is_empty()).then(|| Value::Array(stops.clone())))
        }
        Some(_) => Err(TranslateError::invalid(
            "stop",
            "stop must be a string or an array of strings",
        )),
    }
}

/// A reasoning effort (chat's `reasoning_effort`, the Responses API's `reasoning.effort`, named
/// `param` in errors) -> `thinking` (and `output_config` in the adaptive style); may raise
/// `max_tokens` when the client did not set it.
fn apply_reasoning(
    effort: Option<&Value>,
    param: &str,
    explicit_max: Option<u64>,
    style: ThinkingStyle,
    out: &mut Object,
) -> Result<(), TranslateError> {
    let Some(effort) = effort.filter(|effort| !effort.is_null()) else {
        return Ok(());
    };
    let effort = effort.as_str().unwrap_or_default();
    let Some(budget) = thinking_budget_for_effort(effort) else {
        return Err(TranslateError::invalid(
            param,
            format!("{param} must be one of none, minimal, low, medium, high, xhigh"),
        ));
    };
    let Some(budget) = budget else {
        return Ok(());
    };
    if style == ThinkingStyle::Adaptive {
        if let Some(level) = adaptive_effort_for_reasoning(effort) {
            out.insert("thinking".to_owned(), json!({"type": "adaptive"}));
            out.insert("output_config".to_owned(), json!({"effort": level}));
        }
        return Ok(());
    }
    let budget = match explicit_max {
        Some(max) => budget.min(max.saturating_sub(1)),
        None => {
            out.insert(
                "max_tokens".to_owned(),
                json!(DEFAULT_ANTHROPIC_MAX_TOKENS + budget),
            );
            budget
        }
    };
    if budget >= MIN_THINKING_BUDGET {
        out.insert(
            "thinking".to_owned(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    Ok(())
}
