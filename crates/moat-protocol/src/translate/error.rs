//! The one error type of translation, with a message fit to show the client.

use serde_json::Value;

use crate::errors::{anthropic_error, openai_error};

/// Why a body or event could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The client's request is malformed or asks for something the target protocol cannot do;
    /// the client's fault (HTTP 400).
    #[error("{message}")]
    InvalidRequest {
        /// Client-facing explanation, e.g. `n > 1 is not supported by Anthropic models`.
        message: String,
        /// Path of the offending field, e.g. `messages[2].content`, where known.
        param: Option<String>,
    },
    /// The request is valid but asks for something that changes what the client receives and
    /// that the target cannot honour (`logprobs` to an Anthropic model, `n > 1`, a server
    /// tool): refused rather than dropped silently (HTTP 400, code `unsupported_parameter`).
    #[error("{message}")]
    Unsupported {
        /// Client-facing explanation naming the field and the target.
        message: String,
        /// Path of the field.
        param: String,
    },
    /// The upstream's response or stream event is malformed; the upstream's fault (HTTP 502).
    #[error("{message}")]
    InvalidUpstream {
        /// What was wrong with the upstream's answer.
        message: String,
    },
}

impl TranslateError {
    /// An invalid request with the path of the offending field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        let param = param.into();
        TranslateError::InvalidRequest {
            message: message.into(),
            param: (!param.is_empty()).then_some(param),
        }
    }

    /// A valid request field that `target` cannot honour; `remedy` says what the client can do.
    pub fn unsupported(param: impl Into<String>, target: &str, remedy: &str) -> Self {
        let param = param.into();
        TranslateError::Unsupported {
            message: format!("'{param}' cannot be honoured by {target}: {remedy}"),
            param,
        }
    }

    /// A malformed upstream answer.
    pub fn upstream(message: impl Into<String>) -> Self {
        TranslateError::InvalidUpstream {
            message: message.into(),
        }
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        match self {
            TranslateError::InvalidRequest { message, .. }
            | TranslateError::Unsupported { message, .. }
            | TranslateError::InvalidUpstream { message } => message,
        }
    }

    /// The path of the offending request field, where known.
    pub fn param(&self) -> Option<&str> {
        match self {
            TranslateError::InvalidRequest { param, .. } => param.as_deref(),
            TranslateError::Unsupported { param, .. } => Some(param),
            TranslateError::InvalidUpstream { .. } => None,
        }
    }

    /// For a refused field, its path with list indices blanked (`tools[].type`): a metric
    /// label of bounded cardinality.
    pub fn refused_field(&self) -> Option<String> {
        let TranslateError::Unsupported { param, .. } = self else {
            return None;
        };
        let mut label = String::with_capacity(param.len());
        let mut in_index = false;
        for c in param.chars().take(64) {
            match c {
                '[' => {
                    in_index = true;
                    label.push_str("[]");
                }
                ']' => in_index = false,
                _ if in_index => {}
                c => label.push(c),
            }
        }
        Some(label)
    }

    /// The HTTP status to answer with: 400 for the client's fault, 502 for the upstream's.
    pub fn status(&self) -> u16 {
        match self {
            TranslateError::InvalidRequest { .. } | TranslateError::Unsupported { .. } => 400,
            TranslateError::InvalidUpstream { .. } => 502,
        }
    }

    /// The OpenAI error `code`: `unsupported_parameter` for a refused field, as OpenAI itself
    /// answers a parameter a model does not support.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            TranslateError::Unsupported { .. } => Some("unsupported_parameter"),
            _ => None,
        }
    }

    /// This error as an OpenAI error body.
    pub fn to_openai_body(&self) -> Value {
        let r#type = match self {
            TranslateError::InvalidRequest { .. } | TranslateError::Unsupported { .. } => {
                "invalid_request_error"
            }
            TranslateError::InvalidUpstream { .. } => "server_error",
        };
        openai_error(self.message(), r#type, self.param(), self.code())
    }

    /// This error as an Anthropic error body.
    pub fn to_anthropic_body(&self) -> Value {
        let r#type = match self {
            TranslateError::InvalidRequest { .. } | TranslateError::Unsupported { .. } => {
                "invalid_request_error"
            }
            TranslateError::InvalidUpstream { .. } => "api_error",
        };
        anthropic_error(r#type, self.message())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn refused_fields_have_bounded_labels() {
        let e = TranslateError::unsupported("messages[12].content[3].citations", "t", "r");
        assert_eq!(
            e.refused_field().as_deref(),
            Some("messages[].content[].citations")
        );
        assert_eq!(TranslateError::invalid("n", "bad").refused_field(), None);
    }
}
