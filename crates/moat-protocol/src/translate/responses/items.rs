//! The output items both answers are made of (whole and streamed), their ids, and what an
//! Anthropic stop reason makes of the response's status.

use serde_json::{json, Value};

use crate::translate::mapping::finish_reason_for_stop_reason;
use crate::translate::response_a2o::REFUSAL_TEXT;

/// Ids derived from the Anthropic message id, so that a whole answer and a stream of the same
/// message name their items alike and the upstream log line stays findable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ItemIds {
    anthropic: String,
}

impl ItemIds {
    /// From the Anthropic message id (`moat` when the upstream gave none).
    pub(super) fn new(anthropic_id: Option<&str>) -> Self {
        Self {
            anthropic: anthropic_id
                .filter(|id| !id.is_empty())
                .unwrap_or("moat")
                .to_owned(),
        }
    }

    /// `resp_` + the Anthropic id.
    pub(super) fn response(&self) -> String {
        format!("resp_{}", self.anthropic)
    }

    /// The id of the item at `output_index`: `msg_`, `rs_` or `fc_` (by `prefix`) + the
    /// Anthropic id without its own `msg_` + the index.
    pub(super) fn item(&self, prefix: &str, output_index: usize) -> String {
        let base = self
            .anthropic
            .strip_prefix("msg_")
            .unwrap_or(&self.anthropic);
        format!("{prefix}_{base}_{output_index}")
    }
}

/// What the response's status is for an Anthropic stop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome {
    /// `completed` or `incomplete`.
    pub status: &'static str,
    /// `incomplete_details.reason` when incomplete.
    pub incomplete_reason: Option<&'static str>,
    /// Anthropic refused (`stop_reason: refusal`): the answer ends with a refusal part.
    pub refused: bool,
}

impl Outcome {
    /// `max_tokens` and `model_context_window_exceeded` -> incomplete (`max_output_tokens`);
    /// `refusal` -> completed with a refusal; anything else -> completed.
    pub(super) fn of(stop_reason: Option<&str>) -> Self {
        match finish_reason_for_stop_reason(stop_reason) {
            "length" => Self {
                status: "incomplete",
                incomplete_reason: Some("max_output_tokens"),
                refused: false,
            },
            reason => Self {
                status: "completed",
                incomplete_reason: None,
                refused: reason == "content_filter",
            },
        }
    }

    /// The status of the item the answer ended in: `incomplete` when it was cut short.
    pub(super) fn last_item_status(&self) -> &'static str {
        if self.incomplete_reason.is_some() {
            "incomplete"
        } else {
            "completed"
        }
    }
}

/// Whether a structured output's text so far is the JSON: constrained decoding makes it start
/// with `{` or `[`, so text that starts otherwise is a refusal. `None` while it is blank.
pub(super) fn opens_json(text: &str) -> Option<bool> {
    text.trim_start()
        .chars()
        .next()
        .map(|first| matches!(first, '{' | '['))
}

/// The text of a structured output's refusal: what the model said, or [`REFUSAL_TEXT`] when it
/// said nothing.
pub(super) fn refusal_text(text: &str) -> &str {
    if text.trim().is_empty() {
        REFUSAL_TEXT
    } else {
        text
    }
}

/// An assistant `message` item.
pub(super) fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "content": content, "role": "assistant"})
}

/// An `output_text` content part.
pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// A `refusal` content part.
pub(super) fn refusal(text: &str) -> Value {
    json!({"type": "refusal", "refusal": text})
}

/// A `function_call` item; `call_id` is the Anthropic `tool_use` id.
pub(super) fn function_call_item(
    id: &str,
    status: &str,
    call_id: &Value,
    name: &Value,
    arguments: &str,
) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    })
}

/// A `reasoning` item: no summary (Anthropic gives none), the thinking text as `reasoning_text`
/// content when there is any, and the moat token when the client asked for it.
pub(super) fn reasoning_item(id: &str, thinking: &str, token: Option<String>) -> Value {
    let mut item = json!({"id": id, "type": "reasoning", "summary": []});
    if !thinking.is_empty() {
        item["content"] = json!([{"type": "reasoning_text", "text": thinking}]);
    }
    if let Some(token) = token {
        item["encrypted_content"] = Value::String(token);
    }
    item
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_anthropic_id() {
        let ids = ItemIds::new(Some("msg_01Abc"));
        assert_eq!(ids.response(), "resp_msg_01Abc");
        assert_eq!(ids.item("msg", 0), "msg_01Abc_0");
        assert_eq!(ids.item("fc", 2), "fc_01Abc_2");
        assert_eq!(ItemIds::new(Some("")).response(), "resp_moat");
        assert_eq!(ItemIds::new(None).item("rs", 1), "rs_moat_1");
    }

    #[test]
    fn the_first_character_tells_json_from_a_refusal() {
        assert_eq!(opens_json(""), None);
        assert_eq!(opens_json(" \n\t"), None);
        assert_eq!(opens_json("\n {\"a\""), Some(true));
        assert_eq!(opens_json("["), Some(true));
        assert_eq!(opens_json(" I can't"), Some(false));
        assert_eq!(refusal_text(" \n"), REFUSAL_TEXT);
        assert_eq!(refusal_text("No."), "No.");
    }

    #[test]
    fn stop_reasons_decide_the_status() {
        for (stop, status, reason, refused) in [
            (Some("end_turn"), "completed", None, false),
            (Some("tool_use"), "completed", None, false),
            (
                Some("max_tokens"),
                "incomplete",
                Some("max_output_tokens"),
                false,
            ),
            (
                Some("model_context_window_exceeded"),
                "incomplete",
                Some("max_output_tokens"),
                false,
            ),
            (Some("refusal"), "completed", None, true),
            (None, "completed", None, false),
        ] {
            let outcome = Outcome::of(stop);
            assert_eq!(
                (outcome.status, outcome.incomplete_reason, outcome.refused),
                (status, reason, refused),
                "{stop:?}"
            );
        }
    }
}
