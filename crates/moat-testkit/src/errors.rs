//! Provider-shaped API errors: one type, rendered as OpenAI's or Anthropic's error envelope.

use moat_core::Protocol;
use serde_json::{json, Value};

/// The class of an error, which names its `type` in both protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    TooLarge,
    RateLimit,
    Server,
    Overloaded,
}

impl ErrorKind {
    /// The kind a provider reports with this status.
    pub(crate) fn for_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::TooLarge,
            429 => ErrorKind::RateLimit,
            503 | 529 => ErrorKind::Overloaded,
            s if s >= 500 => ErrorKind::Server,
            _ => ErrorKind::InvalidRequest,
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::RateLimit => "requests",
            ErrorKind::Server | ErrorKind::Overloaded => "server_error",
            _ => "invalid_request_error",
        }
    }

    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::TooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Server => "api_error",
            ErrorKind::Overloaded => "overloaded_error",
        }
    }
}

/// An error response: status, class, message and (OpenAI only) `param` and `code`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {message}")]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<&'static str>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: ErrorKind::InvalidRequest,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// A 400 about one request parameter.
    pub(crate) fn invalid_param(message: impl Into<String>, param: &str) -> ApiError {
        ApiError {
            param: Some(param.to_owned()),
            ..ApiError::invalid(message)
        }
    }

    /// Sets the OpenAI `code`.
    pub(crate) fn with_code(self, code: &'static str) -> ApiError {
        ApiError {
            code: Some(code),
            ..self
        }
    }

    /// The 401 for a missing or wrong API key.
    pub(crate) fn unauthorized(protocol: Protocol) -> ApiError {
        let message = match protocol {
            Protocol::OpenAi => {
                "Incorrect API key provided. You can find your API key at \
                 https://platform.openai.com/account/api-keys."
            }
            Protocol::Anthropic => "invalid x-api-key",
        };
        ApiError {
            status: 401,
            kind: ErrorKind::Authentication,
            message: message.to_owned(),
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    /// The 404 for a path the sim does not serve.
    pub(crate) fn unknown_route(protocol: Protocol, method: &str, path: &str) -> ApiError {
        let message = match protocol {
            Protocol::OpenAi => format!("Invalid URL ({method} {path})"),
            Protocol::Anthropic => "Not Found".to_owned(),
        };
        ApiError {
            status: 404,
            kind: ErrorKind::NotFound,
            message,
            param: None,
            code: None,
        }
    }

    /// The 405 for a known path with the wrong method.
    pub(crate) fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: 405,
            ..ApiError::invalid(format!("Method {method} is not allowed on {path}."))
        }
    }

    /// The 413 for a body over the sim's limit.
    pub(crate) fn too_large() -> ApiError {
        ApiError {
            status: 413,
            kind: ErrorKind::TooLarge,
            ..ApiError::invalid("Request exceeds the maximum allowed number of bytes.")
        }
    }

    /// The provider's context-window error.
    pub(crate) fn context_length_exceeded(protocol: Protocol) -> ApiError {
        match protocol {
            Protocol::OpenAi => ApiError::invalid_param(
                "This model's maximum context length is 128000 tokens. However, your messages \
                 resulted in 131072 tokens. Please reduce the length of the messages.",
                "messages",
            )
            .with_code("context_length_exceeded"),
            Protocol::Anthropic => {
                ApiError::invalid("prompt is too long: 210000 tokens > 200000 maximum")
            }
        }
    }

    /// The provider's content-policy rejection.
    pub(crate) fn content_policy(protocol: Protocol) -> ApiError {
        match protocol {
            Protocol::OpenAi => ApiError::invalid(
                "Your request was rejected as a result of our safety system. Your prompt may \
                 contain text that is not allowed by our safety system.",
            )
            .with_code("content_policy_violation"),
            Protocol::Anthropic => ApiError::invalid("Output blocked by content filtering policy"),
        }
    }

    /// The error a provider sends with `status` when a `Status` fault gives no body.
    pub(crate) fn for_status(protocol: Protocol, status: u16, model: Option<&str>) -> ApiError {
        let kind = ErrorKind::for_status(status);
        let model = model.unwrap_or("the requested model");
        let (message, code) = match (protocol, kind) {
            (_, ErrorKind::Authentication) => return ApiError::unauthorized(protocol),
            (Protocol::OpenAi, ErrorKind::NotFound) => (
                format!("The model `{model}` does not exist or you do not have access to it."),
                Some("model_not_found"),
            ),
            (Protocol::OpenAi, ErrorKind::RateLimit) => (
                format!(
                    "Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, \
                     Requested 1. Please try again in 20s."
                ),
                Some("rate_limit_exceeded"),
            ),
            (Protocol::OpenAi, ErrorKind::Server) => (
                "The server had an error while processing your request. Sorry about that!"
                    .to_owned(),
                None,
            ),
            (Protocol::OpenAi, ErrorKind::Overloaded) => (
                "The server is overloaded or not ready yet.".to_owned(),
                None,
            ),
            (Protocol::Anthropic, ErrorKind::NotFound) => (format!("model: {model}"), None),
            (Protocol::Anthropic, ErrorKind::RateLimit) => (
                "Number of request tokens has exceeded your per-minute rate limit".to_owned(),
                None,
            ),
            (Protocol::Anthropic, ErrorKind::Server) => ("Internal server error".to_owned(), None),
            (Protocol::Anthropic, ErrorKind::Overloaded) => ("Overloaded".to_owned(), None),
            _ => (format!("Simulated upstream error (status {status})."), None),
        };
        ApiError {
            status,
            kind,
            message,
            param: None,
            code,
        }
    }

    /// The JSON error body in `protocol`'s envelope.
    pub(crate) fn body(&self, protocol: Protocol, request_id: &str) -> Value {
        match protocol {
            Protocol::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.kind.openai_type(),
                    "param": self.param,
                    "code": self.code,
                }
            }),
            Protocol::Anthropic => json!({
                "type": "error",
                "error": {"type": self.kind.anthropic_type(), "message": self.message},
                "request_id": request_id,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn status_kinds_follow_the_providers() {
        assert_eq!(ErrorKind::for_status(429), ErrorKind::RateLimit);
        assert_eq!(ErrorKind::for_status(529), ErrorKind::Overloaded);
        assert_eq!(ErrorKind::for_status(502), ErrorKind::Server);
        assert_eq!(ErrorKind::for_status(422), ErrorKind::InvalidRequest);
    }

    #[test]
    fn envelopes_match_each_protocol() {
        let err = ApiError::for_status(Protocol::OpenAi, 429, Some("m"));
        let body = err.body(Protocol::OpenAi, "req_1");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["param"], Value::Null);

        let err = ApiError::for_status(Protocol::Anthropic, 529, Some("m"));
        let body = err.body(Protocol::Anthropic, "req_1");
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "overloaded_error");
        assert_eq!(body["request_id"], "req_1");
    }
}
