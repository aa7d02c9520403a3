//! Reading request fields with validation errors phrased as each provider phrases them.

use moat_core::Protocol;
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// A JSON request body and the protocol whose error wording applies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields<'a> {
    pub(crate) body: &'a Map<String, Value>,
    pub(crate) protocol: Protocol,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(body: &'a Map<String, Value>, protocol: Protocol) -> Fields<'a> {
        Fields { body, protocol }
    }

    /// The field's value; `null` counts as absent, as the providers treat it.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    /// The 400 for a required field that is absent.
    pub(crate) fn missing(&self, name: &str) -> ApiError {
        let message = match self.protocol {
            Protocol::OpenAi => format!("Missing required parameter: '{name}'."),
            Protocol::Anthropic => format!("{name}: Field required"),
        };
        ApiError::invalid_param(message, name)
    }

    /// The 400 for a field of the wrong type or out of range.
    pub(crate) fn invalid(&self, name: &str, expected: &str) -> ApiError {
        let message = match self.protocol {
            Protocol::OpenAi => format!("Invalid value for '{name}': expected {expected}."),
            Protocol::Anthropic => format!("{name}: Input should be {expected}"),
        };
        ApiError::invalid_param(message, name)
    }

    /// A required, non-empty string (such as `model`).
    pub(crate) fn required_str(&self, name: &str) -> Result<&'a str, ApiError> {
        match self.get(name) {
            None => Err(self.missing(name)),
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.invalid(name, "a non-empty string")),
        }
    }

    /// A required, non-empty array (such as `messages`).
    pub(crate) fn required_array(&self, name: &str) -> Result<&'a [Value], ApiError> {
        match self.get(name) {
            None => Err(self.missing(name)),
            Some(Value::Array(items)) if !items.is_empty() => Ok(items),
            Some(_) => Err(self.invalid(name, "a non-empty array")),
        }
    }

    /// An optional array; absent gives an empty slice.
    pub(crate) fn array(&self, name: &str) -> Result<&'a [Value], ApiError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.invalid(name, "an array")),
        }
    }

    /// An optional integer of at least 1 (token limits, `n`).
    pub(crate) fn positive(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Ok(Some(n)),
                _ => Err(self.invalid(name, "an integer of at least 1")),
            },
        }
    }

    /// An optional boolean; absent is false.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.invalid(name, "a boolean")),
        }
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(name, "a string")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_is_phrased_per_protocol() {
        let body = json!({"n": 0, "model": "", "stream": "yes", "max_tokens": null});
        let body = body.as_object().unwrap();
        let openai = Fields::new(body, Protocol::OpenAi);
        let anthropic = Fields::new(body, Protocol::Anthropic);
        assert_eq!(
            anthropic.positive("max_tokens").map(|_| ()),
            Ok(()),
            "null is absent"
        );
        assert_eq!(
            anthropic.missing("max_tokens").message,
            "max_tokens: Field required"
        );
        assert_eq!(
            openai.required_array("messages").unwrap_err().message,
            "Missing required parameter: 'messages'."
        );
        assert!(openai.positive("n").is_err());
        assert!(openai.required_str("model").is_err());
        assert!(openai.flag("stream").is_err());
    }
}
