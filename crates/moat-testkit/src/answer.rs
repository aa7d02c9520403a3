//! What the simulated model answers: text, or one tool call, within the output-token limit.

use crate::text::{self, Generation};
use crate::tools::{ToolCall, ToolSpec};

/// The model's answer to one request (or one `n` choice).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// A text reply.
    Text(Generation),
    /// One tool call.
    Tool(ToolCall),
}

impl Answer {
    /// The answer for this model and prompt. A tool call that would exceed `max` output tokens
    /// becomes a text reply cut at `max`, so the limit is never exceeded.
    pub(crate) fn new(
        model: &str,
        prompt: &str,
        variant: u64,
        max: Option<u64>,
        tool: Option<ToolSpec<'_>>,
    ) -> Answer {
        if let Some(tool) = tool {
            let call = ToolCall::new(tool, model, prompt);
            if max.is_none_or(|m| call.tokens() <= m) {
                return Answer::Tool(call);
            }
        }
        Answer::Text(text::reply(model, prompt, variant, max))
    }

    /// Output tokens of the answer.
    pub(crate) fn tokens(&self) -> u64 {
        match self {
            Answer::Text(g) => g.tokens(),
            Answer::Tool(call) => call.tokens(),
        }
    }

    /// Whether the output limit cut the answer short.
    pub(crate) fn truncated(&self) -> bool {
        matches!(self, Answer::Text(g) if g.truncated)
    }
}
