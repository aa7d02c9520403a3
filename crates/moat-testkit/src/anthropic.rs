//! Anthropic Messages (`POST /v1/messages`) and token counting (`/v1/messages/count_tokens`).

use base64::Engine as _;
use moat_core::Protocol;
use serde_json::{json, Map, Value};

use crate::answer::{Answer, Ask};
use crate::errors::ApiError;
use crate::format;
use crate::reply::Reply;
use crate::request::Fields;
use crate::text::{self, content_text, count_words, id_suffix, stable_hash, Generation};
use crate::tools::{self, ToolCall, ToolChoice, ToolSpec};

mod stream;

/// Smallest thinking budget Anthropic accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

/// Serves one Messages request.
pub(crate) fn messages(body: &Map<String, Value>) -> Result<Reply, ApiError> {
    let fields = Fields::new(body, Protocol::Anthropic);
    let model = fields.required_str("model")?;
    let turns = turns(&fields)?;
    let max = fields
        .positive("max_tokens")?
        .ok_or_else(|| fields.missing("max_tokens"))?;
    let stream = fields.flag("stream")?;
    let thinking = thinking(&fields, max)?;
    let offered = tool_specs(&fields)?;
    let choice = tool_choice(&fields)?;
    let tool = tools::select(&offered, &choice, ends_with_tool_results(turns)).map_err(|name| {
        ApiError::invalid_param(
            format!("tool_choice.name: Tool '{name}' not found in provided tools"),
            "tool_choice",
        )
    })?;

    let format = format::anthropic(&fields)?;
    let prompt = last_user_text(turns);
    let seed = stable_hash(&["messages", model, &prompt]);
    let thought = thinking.then(|| text::thought(model, &prompt, Some(max)));
    let used = thought.as_ref().map_or(0, Generation::tokens);
    let mut blocks = Vec::new();
    let mut truncated = false;
    let mut refused = false;
    if let Some(thought) = thought {
        truncated = thought.truncated;
        let signature = base64::engine::general_purpose::STANDARD
            .encode(format!("moat-sim-signature:{model}:{seed:016x}"));
        blocks.push(Block::Thinking { thought, signature });
    }
    if used < max {
        let ask = Ask {
            max: Some(max - used),
            tool,
            format,
        };
        let answer = Answer::new(model, &prompt, 0, ask);
        truncated |= answer.truncated();
        blocks.push(match answer {
            Answer::Text(g) => Block::Text(g),
            Answer::Refusal(g) => {
                // Anthropic refuses in a text block and says so in `stop_reason`.
                refused = true;
                Block::Text(g)
            }
            Answer::Tool(call) => Block::Tool(call),
        });
    }
    let stop_reason = if blocks.iter().any(|b| matches!(b, Block::Tool(_))) {
        "tool_use"
    } else if truncated {
        "max_tokens"
    } else if refused {
        "refusal"
    } else {
        "end_turn"
    };
    let message = Message {
        id: format!("msg_01{}", id_suffix(seed, 22)),
        model,
        input_tokens: input_tokens(&fields, turns),
        output_tokens: blocks.iter().map(Block::tokens).sum(),
        blocks,
        stop_reason,
    };
    Ok(if stream {
        Reply::Stream(stream::events(&message))
    } else {
        Reply::Json(message.object())
    })
}

/// Serves one token-counting request: `{"input_tokens": N}` by the same rule as `messages`.
pub(crate) fn count_tokens(body: &Map<String, Value>) -> Result<Reply, ApiError> {
    let fields = Fields::new(body, Protocol::Anthropic);
    fields.required_str("model")?;
    let turns = turns(&fields)?;
    Ok(Reply::Json(
        json!({"input_tokens": input_tokens(&fields, turns)}),
    ))
}

/// The `messages`, each with a `user` or `assistant` role.
fn turns<'a>(fields: &Fields<'a>) -> Result<&'a [Value], ApiError> {
    let turns = fields.required_array("messages")?;
    for (i, turn) in turns.iter().enumerate() {
        let role = turn.get("role").and_then(Value::as_str);
        if !matches!(role, Some("user" | "assistant")) {
            return Err(ApiError::invalid_param(
                format!("messages.{i}.role: Input should be 'user' or 'assistant'"),
                "messages",
            ));
        }
    }
    Ok(turns)
}

/// Whether extended thinking is on, validating the budget as Anthropic does.
fn thinking(fields: &Fields<'_>, max_tokens: u64) -> Result<bool, ApiError> {
    let Some(thinking) = fields.get("thinking") else {
        return Ok(false);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => Ok(false),
        Some("adaptive") => Ok(true),
        Some("enabled") => {
            let budget = thinking.get("budget_tokens").and_then(Value::as_u64);
            match budget {
                None => Err(fields.missing("thinking.enabled.budget_tokens")),
                Some(b) if b < MIN_THINKING_BUDGET => Err(ApiError::invalid_param(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                    "thinking",
                )),
                Some(b) if b >= max_tokens => Err(ApiError::invalid_param(
                    "`max_tokens` must be greater than `thinking.budget_tokens`.",
                    "max_tokens",
                )),
                Some(_) => Ok(true),
            }
        }
        _ => Err(fields.invalid("thinking.type", "'enabled', 'adaptive' or 'disabled'")),
    }
}

/// The tools, named, with their `input_schema` when they have one (server tools have none).
fn tool_specs<'a>(fields: &Fields<'a>) -> Result<Vec<ToolSpec<'a>>, ApiError> {
    let mut specs = Vec::new();
    for (i, tool) in fields.array("tools")?.iter().enumerate() {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return Err(fields.missing(&format!("tools.{i}.name")));
        };
        specs.push(ToolSpec {
            name,
            schema: tool.get("input_schema"),
        });
    }
    Ok(specs)
}

fn tool_choice(fields: &Fields<'_>) -> Result<ToolChoice, ApiError> {
    let Some(choice) = fields.get("tool_choice") else {
        return Ok(ToolChoice::Auto);
    };
    let name = choice.get("name").and_then(Value::as_str);
    match (choice.get("type").and_then(Value::as_str), name) {
        (Some("auto"), _) => Ok(ToolChoice::Auto),
        (Some("any"), _) => Ok(ToolChoice::Required),
        (Some("none"), _) => Ok(ToolChoice::None),
        (Some("tool"), Some(name)) => Ok(ToolChoice::Named(name.to_owned())),
        (Some("tool"), None) => Err(fields.missing("tool_choice.name")),
        _ => Err(fields.invalid("tool_choice.type", "'auto', 'any', 'tool' or 'none'")),
    }
}

/// Whether the last turn consists only of tool results (the model then answers in text).
fn ends_with_tool_results(turns: &[Value]) -> bool {
    let blocks = turns
        .last()
        .and_then(|t| t.get("content"))
        .and_then(Value::as_array);
    blocks.is_some_and(|blocks| {
        !blocks.is_empty()
            && blocks
                .iter()
                .all(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
    })
}

fn last_user_text(turns: &[Value]) -> String {
    turns
        .iter()
        .rev()
        .find(|t| t.get("role").and_then(Value::as_str) == Some("user"))
        .map(|t| content_text(t.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default()
}

/// Words of the system prompt and of every turn's text and tool results.
fn input_tokens(fields: &Fields<'_>, turns: &[Value]) -> u64 {
    let system = fields
        .get("system")
        .map_or(0, |s| count_words(&content_text(s)));
    let turns: u64 = turns
        .iter()
        .map(|t| match t.get("content") {
            Some(Value::Array(blocks)) => blocks.iter().map(block_tokens).sum(),
            Some(content) => count_words(&content_text(content)),
            None => 0,
        })
        .sum();
    system.saturating_add(turns)
}

fn block_tokens(block: &Value) -> u64 {
    match block.get("type").and_then(Value::as_str) {
        Some("tool_result") => {
            count_words(&content_text(block.get("content").unwrap_or(&Value::Null)))
        }
        _ => block
            .get("text")
            .and_then(Value::as_str)
            .map_or(0, count_words),
    }
}

/// One content block of the reply.
#[derive(Clone, Debug)]
enum Block {
    Thinking {
        thought: Generation,
        signature: String,
    },
    Text(Generation),
    Tool(ToolCall),
}

impl Block {
    fn tokens(&self) -> u64 {
        match self {
            Block::Thinking { thought, .. } => thought.tokens(),
            Block::Text(g) => g.tokens(),
            Block::Tool(call) => call.tokens(),
        }
    }

    fn object(&self) -> Value {
        match self {
            Block::Thinking { thought, signature } => {
                json!({"type": "thinking", "thinking": thought.text(), "signature": signature})
            }
            Block::Text(g) => json!({"type": "text", "text": g.text()}),
            Block::Tool(call) => json!({
                "type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": call.input,
            }),
        }
    }
}

fn tool_use_id(call: &ToolCall) -> String {
    call.id("toolu_01", 22)
}

/// The reply message.
#[derive(Clone, Debug)]
struct Message<'a> {
    id: String,
    model: &'a str,
    blocks: Vec<Block>,
    stop_reason: &'static str,
    input_tokens: u64,
    output_tokens: u64,
}

impl Message<'_> {
    fn object(&self) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.blocks.iter().map(Block::object).collect::<Vec<_>>(),
            "stop_reason": self.stop_reason,
            "stop_sequence": null,
            "usage": self.usage(self.output_tokens),
        })
    }

    fn usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        })
    }
}
