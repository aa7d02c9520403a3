//! Anthropic Messages request -> OpenAI Chat Completions request.

use serde_json::{json, Value};

use super::contract;
use super::json::{
    child, copy_field, expect_array, expect_object, expect_str, field, item, positive_int,
    str_field, Object,
};
use super::mapping::{reasoning_effort_for_adaptive, reasoning_effort_for_budget};
use super::messages_a2o::{convert_messages, system_messages};
use super::structured;
use super::TranslateError;

/// Which OpenAI field carries Anthropic's `max_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_tokens`: understood by every OpenAI-compatible server (vLLM, Ollama, llama.cpp,
    /// Groq, DeepSeek, Mistral...), many of which do not know `max_completion_tokens`.
    #[default]
    MaxTokens,
    /// `max_completion_tokens`: required by OpenAI's own reasoning models, which reject
    /// `max_tokens`.
    MaxCompletionTokens,
}

impl MaxTokensField {
    fn key(self) -> &'static str {
        match self {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// Choices for [`anthropic_to_openai_chat_request_with`] that depend on the target server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenAiRequestOptions {
    /// Where `max_tokens` goes.
    pub max_tokens_field: MaxTokensField,
}

/// Translates an Anthropic Messages request into an OpenAI chat request for `target_model`,
/// with default [`OpenAiRequestOptions`] (`max_tokens`, for the broadest server support).
///
/// See [`anthropic_to_openai_chat_request_with`] for the rules.
pub fn anthropic_to_openai_chat_request(
    body: &Value,
    target_model: &str,
) -> Result<Value, TranslateError> {
    anthropic_to_openai_chat_request_with(body, target_model, &OpenAiRequestOptions::default())
}

/// Translates an Anthropic Messages request into an OpenAI chat request for `target_model`.
///
/// - `system` -> one system message per block (or one for a string), in order;
/// - text, image (base64 -> data: URL, url -> url) and PDF document blocks -> parts (a lone
///   text part travels as a plain string); `tool_use` -> `tool_calls` with JSON-string
///   arguments; each `tool_result` -> a `role: "tool"` message placed before the rest of its user
///   message (text joined with newlines; images move into that user message); `thinking`
///   blocks are dropped, as OpenAI-compatible servers cannot verify their signatures;
/// - `max_tokens` -> the field chosen in `options`: `max_tokens` by default, because many
///   OpenAI-compatible servers do not know `max_completion_tokens` (see [`MaxTokensField`]);
///   `stop_sequences` -> `stop`;
///   `metadata.user_id` -> `user`; `temperature`, `top_p`, `stream` copied, and a stream asks
///   for `stream_options.include_usage` so usage can be metered;
/// - tools -> nested function tools (server tools such as web search are an error);
///   `tool_choice` auto/any/none/tool -> auto/required/none/named;
///   `disable_parallel_tool_use` -> `parallel_tool_calls: false`;
/// - `thinking` enabled -> `reasoning_effort` by budget (see [`reasoning_effort_for_budget`]);
///   adaptive thinking -> `reasoning_effort` from `output_config.effort`, if given.
///
/// - `output_config.format` (or the legacy `output_format`) -> `response_format` (see
///   [`super::structured`]).
///
/// Refused (see [`super::contract`]): server tools, `mcp_servers`, `container`, documents with
/// citations enabled. Ignored, as hints without an OpenAI equivalent that do not change the
/// answer's shape: `top_k`, `service_tier` (different values), `context_management`, the rest of
/// `metadata`, `cache_control` markers, thinking signatures and any unknown field.
pub fn anthropic_to_openai_chat_request_with(
    body: &Value,
    target_model: &str,
    options: &OpenAiRequestOptions,
) -> Result<Value, TranslateError> {
    let request = expect_object(body, "")?;
    contract::refuse_for_openai(request, target_model)?;
    let mut messages = system_messages(field(request, "system"))?;
    let conversation = request
        .get("messages")
        .ok_or_else(|| TranslateError::invalid("messages", "messages is required"))?;
    messages.extend(convert_messages(conversation)?);

    let mut out = Object::new();
    out.insert("model".to_owned(), json!(target_model));
    out.insert("messages".to_owned(), Value::Array(messages));
    if let Some(max_tokens) = positive_int(request, "max_tokens")? {
        out.insert(options.max_tokens_field.key().to_owned(), json!(max_tokens));
    }
    if let Some(stop) = stop(request)? {
        out.insert("stop".to_owned(), stop);
    }
    copy_field(request, &mut out, "temperature");
    copy_field(request, &mut out, "top_p");
    if let Some(user) = field(request, "metadata").and_then(|m| m.get("user_id")) {
        if let Some(user) = user.as_str() {
            out.insert("user".to_owned(), json!(user));
        }
    }
    if let Some(tools) = convert_tools(request, target_model)? {
        out.insert("tools".to_owned(), Value::Array(tools));
        apply_tool_choice(request, &mut out)?;
    }
    if let Some(effort) = reasoning_effort(request) {
        out.insert("reasoning_effort".to_owned(), json!(effort));
    }
    let format = structured::from_anthropic(request)?;
    if let Some(format) = structured::to_chat_response_format(&format) {
        out.insert("response_format".to_owned(), format);
    }
    if let Some(stream) = field(request, "stream").and_then(Value::as_bool) {
        out.insert("stream".to_owned(), json!(stream));
        if stream {
            out.insert("stream_options".to_owned(), json!({"include_usage": true}));
        }
    }
    Ok(Value::Object(out))
}

fn stop(request: &Object) -> Result<Option<Value>, TranslateError> {
    let Some(stops) = field(request, "stop_sequences") else {
        return Ok(None);
    };
    let list = expect_array(stops, "stop_sequences")?;
    if !list.iter().all(Value::is_string) {
        return Err(TranslateError::invalid(
            "stop_sequences",
            "stop_sequences must be an array of strings",
        ));
    }
    Ok((!list.is_empty()).then(|| stops.clone()))
}

fn convert_tools(
    request: &Object,
    target_model: &str,
) -> Result<Option<Vec<Value>>, TranslateError> {
    let Some(tools) = field(request, "tools") else {
        return Ok(None);
    };
    let tools = expect_array(tools, "tools")?;
    let mut out = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        out.push(convert_tool(tool, &item("tools", index), target_model)?);
    }
    Ok((!out.is_empty()).then_some(out))
}

fn convert_tool(tool: &Value, path: &str, target_model: &str) -> Result<Value, TranslateError> {
    let tool = expect_object(tool, path)?;
    if let Some(kind) = str_field(tool, "type").filter(|kind| *kind != "custom") {
        return Err(TranslateError::unsupported(
            child(path, "type"),
            &contract::openai_target(target_model),
            &format!(
                "'{kind}' is a tool Anthropic runs on its side; {}",
                contract::use_anthropic()
            ),
        ));
    }
    let mut function = Object::new();
    function.insert("name".to_owned(), json!(expect_str(tool, "name", path)?));
    copy_field(tool, &mut function, "description");
    let parameters = field(tool, "input_schema")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    function.insert("parameters".to_owned(), parameters);
    Ok(json!({"type": "function", "function": function}))
}

fn apply_tool_choice(request: &Object, out: &mut Object) -> Result<(), TranslateError> {
    let Some(choice) = field(request, "tool_choice") else {
        return Ok(());
    };
    let choice = expect_object(choice, "tool_choice")?;
    let converted = match expect_str(choice, "type", "tool_choice")? {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => json!({
            "type": "function",
            "function": {"name": expect_str(choice, "name", "tool_choice")?},
        }),
        other => {
            return Err(TranslateError::invalid(
                "tool_choice.type",
                format!("tool_choice.type '{other}' is not supported by OpenAI models"),
            ))
        }
    };
    let is_none = converted == "none";
    out.insert("tool_choice".to_owned(), converted);
    let no_parallel = field(choice, "disable_parallel_tool_use").and_then(Value::as_bool);
    if no_parallel == Some(true) && !is_none {
        out.insert("parallel_tool_calls".to_owned(), json!(false));
    }
    Ok(())
}

fn reasoning_effort(request: &Object) -> Option<&'static str> {
    let thinking = field(request, "thinking");
    let kind = thinking.and_then(|t| t.get("type")).and_then(Value::as_str);
    match kind {
        Some("enabled") => {
            let budget = thinking?.get("budget_tokens")?.as_u64()?;
            Some(reasoning_effort_for_budget(budget))
        }
        Some("disabled") => None,
        _ => {
            let effort = field(request, "output_config")?.get("effort")?.as_str()?;
            reasoning_effort_for_adaptive(effort)
        }
    }
}
