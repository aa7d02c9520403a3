//! Token usage in one shape for every protocol, parsed from bodies and observed on streams.

mod answer;
mod observer;

pub use answer::AnswerKind;

pub use observer::{has_non_null, has_usage, is_usage_only_chunk, StreamKind, UsageObserver};

use serde_json::{json, Value};

/// Token counts of one request, in OpenAI semantics: `input_tokens` includes the cached tokens
/// (read and written), which are also counted separately.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// All prompt tokens, cached or not.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's cache (Anthropic only).
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning, where the provider reports them.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// From a Chat Completions response or chunk (the whole object); `None` without `usage`.
    ///
    /// Also reads DeepSeek's `prompt_cache_hit_tokens` when `prompt_tokens_details` is absent.
    pub fn from_openai_chat(body: &Value) -> Option<Usage> {
        let usage = body.get("usage").filter(|u| u.is_object())?;
        let cached = usage
            .pointer("/prompt_tokens_details/cached_tokens")
            .or_else(|| usage.get("prompt_cache_hit_tokens"));
        Some(Usage {
            input_tokens: count(usage.get("prompt_tokens")),
            output_tokens: count(usage.get("completion_tokens")),
            cache_read_tokens: count(cached),
            cache_write_tokens: 0,
            reasoning_tokens: count(usage.pointer("/completion_tokens_details/reasoning_tokens")),
        })
    }

    /// From an Anthropic `usage` object; cache reads and writes are added into `input_tokens`.
    pub fn from_anthropic(usage: &Value) -> Option<Usage> {
        usage.is_object().then(|| {
            let mut parts = AnthropicUsage::default();
            parts.apply(usage);
            parts.to_usage()
        })
    }

    /// From a Responses API response object; `None` without `usage`.
    pub fn from_openai_responses(response: &Value) -> Option<Usage> {
        let usage = response.get("usage").filter(|u| u.is_object())?;
        Some(Usage {
            input_tokens: count(usage.get("input_tokens")),
            output_tokens: count(usage.get("output_tokens")),
            cache_read_tokens: count(usage.pointer("/input_tokens_details/cached_tokens")),
            cache_write_tokens: 0,
            reasoning_tokens: count(usage.pointer("/output_tokens_details/reasoning_tokens")),
        })
    }

    /// From an Embeddings response (`usage.prompt_tokens`); `None` without `usage`.
    pub fn from_openai_embeddings(body: &Value) -> Option<Usage> {
        let usage = body.get("usage").filter(|u| u.is_object())?;
        Some(Usage {
            input_tokens: count(usage.get("prompt_tokens")),
            ..Usage::default()
        })
    }

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Prompt tokens neither read from nor written to a cache (Anthropic's `input_tokens`).
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }

    /// As a Chat Completions `usage` object.
    pub fn to_openai_chat_json(&self) -> Value {
        let mut usage = json!({
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens(),
            "prompt_tokens_details": {"cached_tokens": self.cache_read_tokens},
        });
        if self.reasoning_tokens > 0 {
            usage["completion_tokens_details"] = json!({"reasoning_tokens": self.reasoning_tokens});
        }
        usage
    }

    /// As a Responses API `usage` object (both details objects always present, as the official
    /// SDKs require them).
    pub fn to_openai_responses_json(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cache_read_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens(),
        })
    }

    /// As an Anthropic `usage` object (`input_tokens` without the cached tokens).
    pub fn to_anthropic_json(&self) -> Value {
        json!({
            "input_tokens": self.uncached_input_tokens(),
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens,
        })
    }
}

/// Anthropic's raw usage numbers, kept apart so a later `message_delta` can update each one.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AnthropicUsage {
    pub input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    pub output: u64,
}

impl AnthropicUsage {
    /// Overwrites every count present in `usage` (stream counts are cumulative).
    pub fn apply(&mut self, usage: &Value) {
        let set = |slot: &mut u64, key: &str| {
            if let Some(value) = usage.get(key).filter(|v| !v.is_null()) {
                *slot = count(Some(value));
            }
        };
        set(&mut self.input, "input_tokens");
        set(&mut self.cache_write, "cache_creation_input_tokens");
        set(&mut self.cache_read, "cache_read_input_tokens");
        set(&mut self.output, "output_tokens");
    }

    pub fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self
                .input
                .saturating_add(self.cache_write)
                .saturating_add(self.cache_read),
            output_tokens: self.output,
            cache_read_tokens: self.cache_read,
            cache_write_tokens: self.cache_write,
            reasoning_tokens: 0,
        }
    }
}

/// A token count, leniently: integers, or non-negative floats some servers send; else 0.
fn count(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(n)) => n.as_u64().unwrap_or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f > 0.0)
                .map_or(0, |f| f as u64)
        }),
        _ => 0,
    }
}

/// Estimated input tokens of an Anthropic request, for a target that cannot count them: about
/// four characters a token over every text of `system`, `messages` and `tools` (structure keys
/// such as `type`, `source` and ids not counted), at least 1.
pub fn estimate_input_tokens(body: &serde_json::Value) -> u64 {
    let chars: usize = ["system", "messages", "tools"]
        .iter()
        .filter_map(|field| body.get(field))
        .map(text_chars)
        .sum();
    chars.div_ceil(4).max(1) as u64
}

fn text_chars(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.iter().map(text_chars).sum(),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "type" | "source" | "role" | "cache_control" | "id" | "tool_use_id"
                )
            })
            .map(|(_, v)| text_chars(v))
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
