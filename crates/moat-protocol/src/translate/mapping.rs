//! Vocabulary shared by requests, responses and streams: stop reasons and reasoning effort.

/// Anthropic's minimum `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// The thinking budget for an OpenAI `reasoning_effort`.
///
/// | effort    | budget_tokens |
/// |-----------|---------------|
/// | `none`    | no thinking   |
/// | `minimal` | 1024          |
/// | `low`     | 2048          |
/// | `medium`  | 8192          |
/// | `high`    | 16384         |
/// | `xhigh`   | 32768         |
///
/// `Some(None)` for `none`, `None` for an unknown effort.
pub fn thinking_budget_for_effort(effort: &str) -> Option<Option<u64>> {
    match effort {
        "none" => Some(None),
        "minimal" => Some(Some(1024)),
        "low" => Some(Some(2048)),
        "medium" => Some(Some(8192)),
        "high" => Some(Some(16384)),
        "xhigh" => Some(Some(32768)),
        _ => None,
    }
}

/// The OpenAI `reasoning_effort` for an Anthropic thinking budget: below 4096 `low`, below
/// 16384 `medium`, else `high` (the inverse of [`thinking_budget_for_effort`], leaving out
/// `minimal` and `xhigh`, which not every OpenAI-compatible server accepts).
pub fn reasoning_effort_for_budget(budget_tokens: u64) -> &'static str {
    match budget_tokens {
        0..4096 => "low",
        4096..16384 => "medium",
        _ => "high",
    }
}

/// The Anthropic adaptive-thinking `output_config.effort` for an OpenAI `reasoning_effort`
/// (`None` for `none` and unknown efforts).
pub fn adaptive_effort_for_reasoning(effort: &str) -> Option<&'static str> {
    match effort {
        "minimal" | "low" => Some("low"),
        "medium" => Some("medium"),
        "high" | "xhigh" => Some("high"),
        _ => None,
    }
}

/// The OpenAI `reasoning_effort` for an Anthropic `output_config.effort`.
pub fn reasoning_effort_for_adaptive(effort: &str) -> Option<&'static str> {
    match effort {
        "low" => Some("low"),
        "medium" => Some("medium"),
        "high" | "xhigh" | "max" => Some("high"),
        _ => None,
    }
}

/// The OpenAI `finish_reason` for an Anthropic `stop_reason`; unknown or missing -> `stop`.
pub fn finish_reason_for_stop_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// The Anthropic `stop_reason` for an OpenAI `finish_reason`; unknown or missing -> `end_turn`.
///
/// Some OpenAI-compatible servers answer `stop` after tool calls; when the message carries tool
/// calls the result is `tool_use` so agent loops run the tools.
pub fn stop_reason_for_finish_reason(
    finish_reason: Option<&str>,
    has_tool_calls: bool,
) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("content_filter") => "refusal",
        Some("tool_calls" | "function_call") => "tool_use",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn effort_and_budget_round_trip() {
        for effort in ["low", "medium", "high"] {
            let budget = thinking_budget_for_effort(effort).unwrap().unwrap();
            assert_eq!(reasoning_effort_for_budget(budget), effort);
        }
        assert_eq!(thinking_budget_for_effort("none"), Some(None));
        assert_eq!(thinking_budget_for_effort("extreme"), None);
    }

    #[test]
    fn stop_reasons_map_both_ways() {
        for (anthropic, openai) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("pause_turn", "stop"),
            ("max_tokens", "length"),
            ("model_context_window_exceeded", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason_for_stop_reason(Some(anthropic)), openai);
        }
        assert_eq!(
            stop_reason_for_finish_reason(Some("stop"), false),
            "end_turn"
        );
        assert_eq!(
            stop_reason_for_finish_reason(Some("stop"), true),
            "tool_use"
        );
        assert_eq!(
            stop_reason_for_finish_reason(Some("length"), true),
            "max_tokens"
        );
        assert_eq!(
            stop_reason_for_finish_reason(Some("tool_calls"), false),
            "tool_use"
        );
        assert_eq!(
            stop_reason_for_finish_reason(Some("content_filter"), false),
            "refusal"
        );
        assert_eq!(stop_reason_for_finish_reason(None, false), "end_turn");
    }
}
