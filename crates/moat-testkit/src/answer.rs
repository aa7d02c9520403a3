//! What the simulated model answers: text (JSON when asked), one tool call, or a refusal, within
//! the output-token limit.

use crate::format::Format;
use crate::structured;
use crate::text::Generation;
use crate::tools::{ToolCall, ToolSpec};

/// The model's answer to one request (or one `n` choice).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// A text reply: prose, or JSON in the requested format.
    Text(Generation),
    /// One tool call.
    Tool(ToolCall),
    /// A refusal of a structured request.
    Refusal(Generation),
}

/// What one request asks of the model, beyond its model and prompt.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask<'a> {
    /// Output-token limit.
    pub(crate) max: Option<u64>,
    /// The tool to call, if one is to be called.
    pub(crate) tool: Option<ToolSpec<'a>>,
    /// The format of a text answer.
    pub(crate) format: Format<'a>,
}

impl Answer {
    /// The answer for this model and prompt. A tool call that would exceed `max` output tokens
    /// becomes a text reply cut at `max`, so the limit is never exceeded.
    pub(crate) fn new(model: &str, prompt: &str, variant: u64, ask: Ask<'_>) -> Answer {
        if let Some(tool) = ask.tool {
            let call = ToolCall::new(tool, model, prompt);
            if ask.max.is_none_or(|m| call.tokens() <= m) {
                return Answer::Tool(call);
            }
        }
        if structured::refuses(&ask.format, prompt) {
            return Answer::Refusal(structured::refusal(ask.max));
        }
        Answer::Text(structured::answer(
            &ask.format,
            model,
            prompt,
            variant,
            ask.max,
        ))
    }

    /// Output tokens of the answer.
    pub(crate) fn tokens(&self) -> u64 {
        match self {
            Answer::Text(g) | Answer::Refusal(g) => g.tokens(),
            Answer::Tool(call) => call.tokens(),
        }
    }

    /// Whether the output limit cut the answer short.
    pub(crate) fn truncated(&self) -> bool {
        matches!(self, Answer::Text(g) | Answer::Refusal(g) if g.truncated)
    }
}
