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
            | TranslateError::InvalidUpstream { message } => message,
        }
    }

    /// The path of the offending request field, where known.
    pub fn param(&self) -> Option<&str> {
        match self {
            TranslateError::InvalidRequest { param, .. } => param.as_deref(),
            TranslateError::InvalidUpstream { .. } => None,
        }
    }

    /// The HTTP status to answer with: 400 for the client's fault, 502 for the upstream's.
    pub fn status(&self) -> u16 {
        match self {
            TranslateError::InvalidRequest { .. } => 400,
            TranslateError::InvalidUpstream { .. } => 502,
        }
    }

    /// This error as an OpenAI error body.
    pub fn to_openai_body(&self) -> Value {
        let r#type = match self {
            TranslateError::InvalidRequest { .. } => "invalid_request_error",
            TranslateError::InvalidUpstream { .. } => "server_error",
        };
        openai_error(self.message(), r#type, self.param(), None)
    }

    /// This error as an Anthropic error body.
    pub fn to_anthropic_body(&self) -> Value {
        let r#type = match self {
            TranslateError::InvalidRequest { .. } => "invalid_request_error",
            TranslateError::InvalidUpstream { .. } => "api_error",
        };
        anthropic_error(r#type, self.message())
    }
}
