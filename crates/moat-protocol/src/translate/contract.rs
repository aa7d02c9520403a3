//! Request fields that change what the client will receive and that the other protocol's
//! targets cannot honour: refused with a 400 naming the field and the target, never dropped
//! silently. Fields that are only hints (sampling penalties, `seed`, `service_tier`, caching
//! keys) are ignored instead; `docs/translation.md` lists every field with its decision.

use serde_json::Value;

use super::json::{field, Object};
use super::TranslateError;

/// What a client can do about a field an Anthropic model cannot honour.
const USE_OPENAI: &str = "remove it, or call a model served by an OpenAI-kind provider";
/// What a client can do about a field an OpenAI-kind model cannot honour.
const USE_ANTHROPIC: &str = "remove it, or call a model served by an Anthropic provider";

/// Refuses OpenAI chat fields an Anthropic model cannot honour: `n` > 1, `logprobs`,
/// `top_logprobs`, `logit_bias`, audio output (`audio`, `modalities` with `audio`), the legacy
/// `functions`/`function_call` (whose answer shape differs from tool calls), and
/// `web_search_options`.
pub(super) fn refuse_for_anthropic(
    request: &Object,
    target_model: &str,
) -> Result<(), TranslateError> {
    let target = anthropic_target(target_model);
    let refuse = |param: &str| Err(TranslateError::unsupported(param, &target, USE_OPENAI));
    if field(request, "n").and_then(Value::as_f64).unwrap_or(1.0) > 1.0 {
        return Err(TranslateError::unsupported(
            "n",
            &target,
            "it returns one choice per request; send n requests, or remove n",
        ));
    }
    if field(request, "logprobs").and_then(Value::as_bool) == Some(true) {
        return refuse("logprobs");
    }
    if field(request, "top_logprobs")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        > 0.0
    {
        return refuse("top_logprobs");
    }
    if field(request, "logit_bias").is_some_and(is_non_empty) {
        return refuse("logit_bias");
    }
    if field(request, "audio").is_some() {
        return refuse("audio");
    }
    let modalities = field(request, "modalities").and_then(Value::as_array);
    if modalities.is_some_and(|m| m.iter().any(|m| m != "text")) {
        return refuse("modalities");
    }
    for legacy in ["functions", "function_call"] {
        if field(request, legacy).is_some_and(is_non_empty) {
            return Err(TranslateError::unsupported(
                legacy,
                &target,
                "use tools and tool_choice, which moat translates",
            ));
        }
    }
    if field(request, "web_search_options").is_some() {
        return refuse("web_search_options");
    }
    Ok(())
}

/// Refuses Anthropic Messages fields an OpenAI-kind model cannot honour: `mcp_servers` and
/// `container` (tools Anthropic runs on its side). Server tools and cited documents are refused
/// where they are converted.
pub(super) fn refuse_for_openai(
    request: &Object,
    target_model: &str,
) -> Result<(), TranslateError> {
    let target = openai_target(target_model);
    for param in ["mcp_servers", "container"] {
        if field(request, param).is_some_and(is_non_empty) {
            return Err(TranslateError::unsupported(param, &target, USE_ANTHROPIC));
        }
    }
    Ok(())
}

/// How refusals name an Anthropic target.
pub(super) fn anthropic_target(target_model: &str) -> String {
    format!("the Anthropic model '{target_model}'")
}

/// The remedy for a field an Anthropic model cannot honour.
pub(super) fn use_openai() -> &'static str {
    USE_OPENAI
}

/// How refusals name an OpenAI-kind target.
pub(super) fn openai_target(target_model: &str) -> String {
    format!("the OpenAI-kind model '{target_model}'")
}

/// The remedy for a field an OpenAI-kind model cannot honour.
pub(super) fn use_anthropic() -> &'static str {
    USE_ANTHROPIC
}

/// Whether a present value asks for something: not `false`, `""`, `[]` or `{}`.
fn is_non_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused_o2a(body: Value) -> Option<String> {
        refuse_for_anthropic(body.as_object().unwrap(), "claude-x")
            .err()
            .map(|e| e.param().unwrap_or_default().to_owned())
    }

    #[test]
    fn fields_that_change_the_answer_are_refused_for_anthropic() {
        for (body, param) in [
            (json!({"n": 2}), "n"),
            (json!({"logprobs": true}), "logprobs"),
            (json!({"top_logprobs": 3}), "top_logprobs"),
            (json!({"logit_bias": {"1234": -100}}), "logit_bias"),
            (
                json!({"audio": {"voice": "alloy", "format": "wav"}}),
                "audio",
            ),
            (json!({"modalities": ["text", "audio"]}), "modalities"),
            (json!({"functions": [{"name": "f"}]}), "functions"),
            (json!({"web_search_options": {}}), "web_search_options"),
        ] {
            assert_eq!(refused_o2a(body.clone()).as_deref(), Some(param), "{body}");
        }
    }

    #[test]
    fn defaults_and_hints_pass() {
        for body in [
            json!({"n": 1, "logprobs": false, "top_logprobs": 0, "logit_bias": {}}),
            json!({"n": null, "logprobs": null, "audio": null, "modalities": ["text"]}),
            json!({"seed": 7, "frequency_penalty": 0.5, "presence_penalty": 0.1, "service_tier": "auto"}),
            json!({"functions": [], "store": true, "prediction": {"type": "content", "content": "x"}}),
        ] {
            assert_eq!(refused_o2a(body.clone()), None, "{body}");
        }
    }

    #[test]
    fn anthropic_side_tools_are_refused_for_openai() {
        let mcp = json!({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]});
        let err = refuse_for_openai(mcp.as_object().unwrap(), "gpt-x").unwrap_err();
        assert_eq!(err.param(), Some("mcp_servers"));
        assert!(err.message().contains("gpt-x"), "{}", err.message());
        assert_eq!(err.code(), Some("unsupported_parameter"));
        let none = json!({"mcp_servers": [], "container": null, "top_k": 5});
        assert!(refuse_for_openai(none.as_object().unwrap(), "gpt-x").is_ok());
    }
}
