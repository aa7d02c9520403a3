//! Every way a request can fail in the gateway, and the one function that turns a failure into a
//! response in the client's own protocol.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use moat_core::Protocol;
use moat_guard::ParamViolation;
use moat_policy::ScopeError;
use moat_protocol::errors::{
    anthropic_error, anthropic_error_to_openai, openai_error, openai_error_to_anthropic,
};
use moat_protocol::translate::TranslateError;
use moat_store::StoreError;

/// Whose fault a failure is: it decides the log level and whether a fallback may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something wrong; retrying elsewhere will not help.
    Client,
    /// The upstream failed; another target may succeed.
    Upstream,
    /// moat itself failed.
    Internal,
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No credential in any of the accepted headers.
    #[error("missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'")]
    MissingKey,
    /// Key scope refused the request.
    #[error("{0}")]
    Scope(#[from] ScopeError),
    /// The body is over the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read (client went away, read timeout).
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The body is not the JSON the endpoint expects.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, for the client.
        message: String,
        /// The offending field, if known.
        param: Option<String>,
    },
    /// A block filter matched the request's system or user text.
    #[error("This request was blocked by the '{filter}' filter (reason: {reason}).")]
    Blocked {
        /// The filter's name.
        filter: String,
        /// The reason code of the matching entry.
        reason: String,
    },
    /// The request uses a parameter the account's tier may not use.
    #[error("{0}")]
    ParamNotAllowed(#[from] ParamViolation),
    /// No model of that name is configured (or the key may not see it).
    #[error("The model '{0}' does not exist or you do not have access to it.")]
    UnknownModel(String),
    /// The request could not be translated to the target's protocol.
    #[error("{0}")]
    Translate(#[from] TranslateError),
    /// The upstream answered with an error status; the body is in the upstream's protocol.
    #[error("upstream {provider} answered {status}")]
    UpstreamStatus {
        /// The provider's name.
        provider: String,
        /// The upstream's status.
        status: u16,
        /// The upstream's body.
        body: Bytes,
        /// The protocol the upstream speaks.
        protocol: Protocol,
        /// The upstream's retry-after header, kept for the client.
        retry_after: Option<HeaderValue>,
    },
    /// The provider refused moat's own credentials (its 401 or 403): a gateway-side fault,
    /// answered as a 502 `upstream_auth_failed` that never blames the client's key.
    #[error("the gateway's credentials for an upstream provider were refused (HTTP {status}); this is not a problem with your API key; the gateway logged it for its operator")]
    UpstreamAuth {
        /// The provider's name (for logs and metrics; not in the message).
        provider: String,
        /// The provider's status, 401 or 403.
        status: u16,
    },
    /// No upstream could be reached or none answered in time.
    #[error("{message}")]
    UpstreamUnavailable {
        /// What happened, for the client.
        message: String,
        /// True when the failure was a timeout (504), false for connection failures (502).
        timeout: bool,
    },
    /// The store failed.
    #[error("internal store error")]
    Store(#[from] StoreError),
    /// The detection gate blocks the account (or the end user) for suspected model extraction.
    #[error("This {} is blocked for suspected model extraction (distillation) of this service's models. If you believe this is a mistake, contact the operator of this service.", who(*.end_user))]
    AccountBlocked {
        /// The block is on the end user named in the request, not on the whole account.
        end_user: bool,
    },
    /// The detection gate throttles the account (or the end user), and this request is over.
    #[error("Rate limit reached for requests: this {} is limited to {rpm} requests per minute by the service's abuse controls. Try again in {} s; if you believe this is a mistake, contact the operator of this service.", who(*.end_user), retry_secs(*.retry_after_ms))]
    Throttled {
        /// The limit, requests per minute.
        rpm: u32,
        /// When the next request will be admitted, in ms from now.
        retry_after_ms: u64,
        /// The same, as Unix ms (for Anthropic's RFC 3339 reset header).
        reset_at_ms: i64,
        /// The limit is on the end user named in the request, not on the whole account.
        end_user: bool,
    },
    /// The client's address sent too many requests with a missing or invalid key lately
    /// (`server.auth_failures_per_minute`).
    #[error("Too many requests with a missing or invalid API key from this address. Try again in {} s.", retry_secs(*.retry_after_ms))]
    AuthThrottled {
        /// When the address may try again, in ms from now.
        retry_after_ms: u64,
    },
    /// A rate limit of the key, its workflow or its account refused the request.
    #[error("{refusal}")]
    RateLimited {
        /// What refused and for how long.
        refusal: moat_policy::limits::Refusal,
        /// When, Unix ms (for Anthropic's RFC 3339 reset headers).
        at_ms: i64,
    },
    /// A budget of the key, its workflow or its account cannot cover the request's worst case.
    #[error("{0}")]
    BudgetExceeded(moat_policy::budget::BudgetRefusal),
    /// The key has no registered workflow and unregistered traffic is denied.
    #[error("{}", unregistered_message(.workflow.as_deref()))]
    Unregistered {
        /// The workflow the key names, if any (not in the inventory).
        workflow: Option<String>,
    },
    /// The workflow may not call this model.
    #[error("workflow '{workflow}' is not registered for model '{model}'")]
    WorkflowModel {
        /// The workflow.
        workflow: String,
        /// The model asked for.
        model: String,
    },
    /// A routing rule refuses the request.
    #[error("{message} (routing rule '{rule}')")]
    PolicyDenied {
        /// The rule's name.
        rule: String,
        /// The rule's message.
        message: String,
    },
    /// A routing rule allows only providers with certain tags, and no target of the route has one.
    #[error("no target of model '{model}' is on a provider tagged {} as routing rule '{rule}' requires; the request was not sent anywhere", tags.join(" or "))]
    NoCompliantTarget {
        /// The rule's name.
        rule: String,
        /// The model routed.
        model: String,
        /// The tags it requires.
        tags: Vec<String>,
    },
    /// The audit log cannot keep this request's record (backlog full, appends failing, chain
    /// broken, or a `sync` commit that did not come in time): the request is refused rather than
    /// answered without evidence.
    #[error(
        "the gateway cannot record requests right now, so it does not serve them: {0}; retry later"
    )]
    AuditUnavailable(String),
    /// Every target of the route was skipped, its circuit breaker open after repeated failures.
    #[error("all targets unavailable: every target of this model is failing and was not tried; retry in {} s", retry_secs(*.retry_in_ms))]
    AllTargetsUnavailable {
        /// When the first breaker lets a probe through, in ms from now.
        retry_in_ms: u64,
    },
}

fn unregistered_message(workflow: Option<&str>) -> String {
    match workflow {
        Some(w) => format!("this key's workflow '{w}' is not registered with the gateway, and unregistered traffic is denied; ask the operator to register it"),
        None => "this key belongs to no workflow, and unregistered traffic is denied; use a key issued for a registered workflow".into(),
    }
}

fn who(end_user: bool) -> &'static str {
    if end_user {
        "end user"
    } else {
        "account"
    }
}

/// Whole seconds to wait, at least one (clients give up on 0 and on fractions alike).
fn retry_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

impl GatewayError {
    /// A 400 with a message and optional field name.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        GatewayError::InvalidRequest {
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    /// A request body that does not parse as JSON: names the mistake and where, never the
    /// value (`moat_protocol::json_error::describe`), so the message and any record of it carry
    /// no body content.
    pub fn invalid_json(error: &serde_json::Error) -> Self {
        GatewayError::invalid(
            format!(
                "request body is not valid JSON: {}",
                moat_protocol::json_error::describe(error)
            ),
            None,
        )
    }

    /// The HTTP status this failure is answered with.
    pub fn status(&self) -> StatusCode {
        let code = match self {
            GatewayError::MissingKey => 401,
            GatewayError::Scope(e) => e.status(),
            GatewayError::BodyTooLarge { .. } => 413,
            GatewayError::BodyRead(_)
            | GatewayError::InvalidRequest { .. }
            | GatewayError::ParamNotAllowed(_) => 400,
            GatewayError::Translate(e) => e.status(),
            GatewayError::Blocked { .. }
            | GatewayError::AccountBlocked { .. }
            | GatewayError::Unregistered { .. }
            | GatewayError::WorkflowModel { .. }
            | GatewayError::PolicyDenied { .. }
            | GatewayError::NoCompliantTarget { .. } => 403,
            GatewayError::Throttled { .. }
            | GatewayError::AuthThrottled { .. }
            | GatewayError::RateLimited { .. }
            | GatewayError::BudgetExceeded(_) => 429,
            GatewayError::UnknownModel(_) => 404,
            GatewayError::UpstreamStatus { status, .. } => *status,
            GatewayError::UpstreamUnavailable { timeout: true, .. } => 504,
            GatewayError::UpstreamUnavailable { timeout: false, .. }
            | GatewayError::UpstreamAuth { .. } => 502,
            GatewayError::Store(_)
            | GatewayError::AllTargetsUnavailable { .. }
            | GatewayError::AuditUnavailable(_) => 503,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    /// The HTTP status for a client speaking `protocol`: as [`GatewayError::status`], except
    /// that an exhausted budget is Anthropic's 402 `billing_error` (OpenAI's is a 429
    /// `insufficient_quota`).
    pub fn status_for(&self, protocol: Protocol) -> StatusCode {
        match (self, protocol) {
            (GatewayError::BudgetExceeded(_), Protocol::Anthropic) => StatusCode::PAYMENT_REQUIRED,
            _ => self.status(),
        }
    }

    /// Whose fault the failure is.
    pub fn fault(&self) -> Fault {
        match self {
            GatewayError::UpstreamStatus { .. }
            | GatewayError::UpstreamUnavailable { .. }
            | GatewayError::UpstreamAuth { .. }
            | GatewayError::AllTargetsUnavailable { .. } => Fault::Upstream,
            GatewayError::Store(_) | GatewayError::AuditUnavailable(_) => Fault::Internal,
            _ => Fault::Client,
        }
    }

    /// The pipeline stage that refused or failed the request, for the audit record.
    pub fn stage(&self) -> &'static str {
        match self {
            GatewayError::MissingKey
            | GatewayError::Scope(ScopeError::InvalidKey)
            | GatewayError::Scope(ScopeError::Expired { .. })
            | GatewayError::Scope(ScopeError::Revoked { .. })
            | GatewayError::AuthThrottled { .. } => "auth",
            GatewayError::Scope(_) => "authorize",
            GatewayError::BodyTooLarge { .. }
            | GatewayError::BodyRead(_)
            | GatewayError::InvalidRequest { .. } => "request",
            GatewayError::Blocked { .. } | GatewayError::ParamNotAllowed(_) => "filter",
            GatewayError::AccountBlocked { .. } | GatewayError::Throttled { .. } => "detection",
            GatewayError::Unregistered { .. }
            | GatewayError::WorkflowModel { .. }
            | GatewayError::PolicyDenied { .. }
            | GatewayError::NoCompliantTarget { .. }
            | GatewayError::UnknownModel(_) => "policy",
            GatewayError::RateLimited { .. } => "limits",
            GatewayError::BudgetExceeded(_) => "budget",
            GatewayError::UpstreamStatus { .. }
            | GatewayError::UpstreamUnavailable { .. }
            | GatewayError::UpstreamAuth { .. }
            | GatewayError::AllTargetsUnavailable { .. }
            | GatewayError::Translate(_) => "upstream",
            GatewayError::Store(_) => "internal",
            GatewayError::AuditUnavailable(_) => "audit",
        }
    }

    /// A short stable label for logs and metrics (`error.type` in OpenTelemetry terms).
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::MissingKey => "missing_key",
            GatewayError::Scope(ScopeError::InvalidKey) => "invalid_key",
            GatewayError::Scope(ScopeError::Expired { .. }) => "key_expired",
            GatewayError::Scope(ScopeError::Revoked { .. }) => "key_revoked",
            GatewayError::Scope(ScopeError::ModelNotAllowed { .. }) => "model_not_allowed",
            GatewayError::Scope(ScopeError::SourceNotAllowed { .. }) => "source_not_allowed",
            GatewayError::BodyTooLarge { .. } => "body_too_large",
            GatewayError::BodyRead(_) => "body_read",
            GatewayError::InvalidRequest { .. } => "invalid_request",
            GatewayError::Blocked { .. } => "content_blocked",
            GatewayError::ParamNotAllowed(_) => "param_not_allowed",
            GatewayError::UnknownModel(_) => "unknown_model",
            GatewayError::Translate(_) => "translate",
            GatewayError::UpstreamStatus { .. } => "upstream_status",
            GatewayError::UpstreamUnavailable { timeout: true, .. } => "upstream_timeout",
            GatewayError::UpstreamUnavailable { timeout: false, .. } => "upstream_unreachable",
            GatewayError::UpstreamAuth { .. } => "upstream_auth_failed",
            GatewayError::Store(_) => "store",
            GatewayError::AccountBlocked { .. } => "account_blocked",
            GatewayError::Throttled { .. } => "detection_throttled",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::AuthThrottled { .. } => "auth_throttled",
            GatewayError::BudgetExceeded(_) => "budget_exceeded",
            GatewayError::Unregistered { .. } => "workflow_unregistered",
            GatewayError::WorkflowModel { .. } => "workflow_model_not_allowed",
            GatewayError::PolicyDenied { .. } => "policy_denied",
            GatewayError::NoCompliantTarget { .. } => "no_compliant_target",
            GatewayError::AllTargetsUnavailable { .. } => "all_targets_unavailable",
            GatewayError::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// The response for a client speaking `protocol`. This is the only place a failure becomes a
    /// response body.
    pub fn into_protocol_response(self, protocol: Protocol) -> Response {
        let status = self.status_for(protocol);
        if let GatewayError::UpstreamStatus {
            body,
            protocol: upstream,
            retry_after,
            ..
        } = self
        {
            return upstream_error_response(status, body, upstream, protocol, retry_after);
        }
        let message = self.to_string();
        let body = match protocol {
            Protocol::OpenAi => {
                let (kind, code) = openai_type_and_code(&self);
                openai_error(&message, kind, self.param(), code)
            }
            Protocol::Anthropic => {
                let kind = match self {
                    GatewayError::BudgetExceeded(_) => "billing_error",
                    _ => anthropic_type(status),
                };
                anthropic_error(kind, &message)
            }
        };
        let mut response = json_response(status, &body);
        match &self {
            GatewayError::RateLimited { refusal, at_ms } => {
                crate::governance::headers::refusal(&mut response, protocol, refusal, *at_ms);
            }
            GatewayError::AuthThrottled { retry_after_ms } => {
                let secs = HeaderValue::from(retry_secs(*retry_after_ms));
                response.headers_mut().insert(header::RETRY_AFTER, secs);
            }
            GatewayError::AllTargetsUnavailable { retry_in_ms } => {
                let secs = HeaderValue::from(retry_secs(*retry_in_ms));
                response.headers_mut().insert(header::RETRY_AFTER, secs);
            }
            GatewayError::AuditUnavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            GatewayError::BudgetExceeded(_) => {
                // Waiting will not help until the window resets: SDKs must not retry.
                response
                    .headers_mut()
                    .insert("x-should-retry", HeaderValue::from_static("false"));
            }
            _ => {}
        }
        if let GatewayError::Throttled {
            rpm,
            retry_after_ms,
            reset_at_ms,
            ..
        } = self
        {
            rate_limit_headers(&mut response, protocol, rpm, retry_after_ms, reset_at_ms);
        }
        response
    }

    fn param(&self) -> Option<&str> {
        match self {
            GatewayError::InvalidRequest { param, .. } => param.as_deref(),
            GatewayError::ParamNotAllowed(v) => Some(v.param),
            GatewayError::UnknownModel(_) => Some("model"),
            GatewayError::Translate(e) => e.param(),
            _ => None,
        }
    }
}

fn openai_type_and_code(err: &GatewayError) -> (&'static str, Option<&'static str>) {
    match err {
        GatewayError::MissingKey | GatewayError::Scope(ScopeError::InvalidKey) => {
            ("invalid_request_error", Some("invalid_api_key"))
        }
        GatewayError::Scope(ScopeError::Expired { .. }) => {
            ("invalid_request_error", Some("api_key_expired"))
        }
        GatewayError::Scope(ScopeError::Revoked { .. }) => {
            ("invalid_request_error", Some("api_key_revoked"))
        }
        GatewayError::Scope(ScopeError::ModelNotAllowed { .. }) => {
            ("permission_error", Some("model_not_allowed"))
        }
        GatewayError::Scope(ScopeError::SourceNotAllowed { .. }) => {
            ("permission_error", Some("source_not_allowed"))
        }
        GatewayError::BodyTooLarge { .. } => ("invalid_request_error", Some("request_too_large")),
        GatewayError::Blocked { .. } => ("permission_error", Some("content_blocked")),
        GatewayError::ParamNotAllowed(_) => ("invalid_request_error", Some("param_not_allowed")),
        GatewayError::UnknownModel(_) => ("invalid_request_error", Some("model_not_found")),
        GatewayError::BodyRead(_) | GatewayError::InvalidRequest { .. } => {
            ("invalid_request_error", None)
        }
        GatewayError::Translate(e) if e.status() == 502 => ("server_error", Some("upstream_error")),
        GatewayError::Translate(e) => ("invalid_request_error", e.code()),
        GatewayError::UpstreamStatus { .. } | GatewayError::UpstreamUnavailable { .. } => {
            ("server_error", Some("upstream_error"))
        }
        GatewayError::UpstreamAuth { .. } => ("server_error", Some("upstream_auth_failed")),
        GatewayError::Store(_) => ("server_error", None),
        GatewayError::AccountBlocked { .. } => ("permission_error", Some("account_blocked")),
        // OpenAI's own request-rate refusals say `"type": "requests"`.
        GatewayError::Throttled { .. } | GatewayError::AuthThrottled { .. } => {
            ("requests", Some("rate_limit_exceeded"))
        }
        GatewayError::RateLimited { refusal: r, .. } => match r.kind {
            moat_policy::limits::LimitKind::Tokens => ("tokens", Some("rate_limit_exceeded")),
            _ => ("requests", Some("rate_limit_exceeded")),
        },
        GatewayError::BudgetExceeded(_) => ("insufficient_quota", Some("insufficient_quota")),
        GatewayError::Unregistered { .. } => ("permission_error", Some("workflow_unregistered")),
        GatewayError::WorkflowModel { .. } => {
            ("permission_error", Some("workflow_model_not_allowed"))
        }
        GatewayError::PolicyDenied { .. } => ("permission_error", Some("policy_denied")),
        GatewayError::NoCompliantTarget { .. } => ("permission_error", Some("no_compliant_target")),
        GatewayError::AllTargetsUnavailable { .. } => {
            ("server_error", Some("all_targets_unavailable"))
        }
        GatewayError::AuditUnavailable(_) => ("server_error", Some("audit_unavailable")),
    }
}

/// `Retry-After` (whole seconds), `retry-after-ms` and the protocol's request rate-limit headers
/// on a 429 from moat's own limits.
fn rate_limit_headers(
    response: &mut Response,
    protocol: Protocol,
    rpm: u32,
    retry_after_ms: u64,
    reset_at_ms: i64,
) {
    let secs = retry_secs(retry_after_ms);
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    };
    set("retry-after", secs.to_string());
    set("retry-after-ms", retry_after_ms.to_string());
    match protocol {
        Protocol::OpenAi => {
            set("x-ratelimit-limit-requests", rpm.to_string());
            set("x-ratelimit-remaining-requests", "0".into());
            set("x-ratelimit-reset-requests", format!("{secs}s"));
        }
        Protocol::Anthropic => {
            set("anthropic-ratelimit-requests-limit", rpm.to_string());
            set("anthropic-ratelimit-requests-remaining", "0".into());
            let reset = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(reset_at_ms).unwrap_or(0))
                + std::time::Duration::from_millis(999);
            set(
                "anthropic-ratelimit-requests-reset",
                humantime::format_rfc3339_seconds(reset).to_string(),
            );
        }
    }
}

fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// An upstream's error, passed through when protocols match and translated when they do not.
fn upstream_error_response(
    status: StatusCode,
    body: Bytes,
    upstream: Protocol,
    client: Protocol,
    retry_after: Option<HeaderValue>,
) -> Response {
    let parsed: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    let mut response = match (upstream, client) {
        (a, b) if a == b && parsed.is_object() => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        (_, Protocol::OpenAi) => {
            json_response(status, &anthropic_error_to_openai(status.as_u16(), &parsed))
        }
        (_, Protocol::Anthropic) => {
            json_response(status, &openai_error_to_anthropic(status.as_u16(), &parsed))
        }
    };
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_take_the_clients_protocol_shape() {
        let r = GatewayError::UnknownModel("nope".into()).into_protocol_response(Protocol::OpenAi);
        assert_eq!(r.status(), 404);
        let v = body_json(r).await;
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");

        let r = GatewayError::MissingKey.into_protocol_response(Protocol::Anthropic);
        assert_eq!(r.status(), 401);
        let v = body_json(r).await;
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
    }

    #[tokio::test]
    async fn filter_and_parameter_refusals_take_both_shapes() {
        let blocked = || GatewayError::Blocked {
            filter: "extraction".into(),
            reason: "system_prompt_extraction".into(),
        };
        let r = blocked().into_protocol_response(Protocol::OpenAi);
        assert_eq!(r.status(), 403);
        let v = body_json(r).await;
        assert_eq!(v["error"]["type"], "permission_error");
        assert_eq!(v["error"]["code"], "content_blocked");
        assert_eq!(v["error"]["param"], serde_json::Value::Null);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("'extraction'") && message.contains("system_prompt_extraction"));
        let v = body_json(blocked().into_protocol_response(Protocol::Anthropic)).await;
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "permission_error");

        let violation = || {
            GatewayError::ParamNotAllowed(ParamViolation {
                param: "n",
                reason: "n_cap",
                message: "n is 9, but this account may ask for at most 8".into(),
            })
        };
        let r = violation().into_protocol_response(Protocol::OpenAi);
        assert_eq!(r.status(), 400);
        let v = body_json(r).await;
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "param_not_allowed");
        assert_eq!(v["error"]["param"], "n");
        let v = body_json(violation().into_protocol_response(Protocol::Anthropic)).await;
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(
            v["error"]["message"],
            "n is 9, but this account may ask for at most 8"
        );
    }

    #[tokio::test]
    async fn detection_refusals_take_both_shapes_with_rate_limit_headers() {
        let r = GatewayError::AccountBlocked { end_user: false }
            .into_protocol_response(Protocol::OpenAi);
        assert_eq!(r.status(), 403);
        let v = body_json(r).await;
        assert_eq!(v["error"]["type"], "permission_error");
        assert_eq!(v["error"]["code"], "account_blocked");
        assert_eq!(v["error"]["param"], serde_json::Value::Null);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("account is blocked for suspected model extraction"));
        assert!(message.contains("contact the operator"));
        let v = body_json(
            GatewayError::AccountBlocked { end_user: true }
                .into_protocol_response(Protocol::Anthropic),
        )
        .await;
        assert_eq!(v["error"]["type"], "permission_error");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("end user is blocked"));

        let throttled = || GatewayError::Throttled {
            rpm: 6,
            retry_after_ms: 9_001,
            reset_at_ms: 1_700_000_009_001,
            end_user: false,
        };
        let r = throttled().into_protocol_response(Protocol::OpenAi);
        assert_eq!(r.status(), 429);
        let h = r.headers().clone();
        assert_eq!(h["retry-after"], "10");
        assert_eq!(h["retry-after-ms"], "9001");
        assert_eq!(h["x-ratelimit-limit-requests"], "6");
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(h["x-ratelimit-reset-requests"], "10s");
        let v = body_json(r).await;
        assert_eq!(v["error"]["type"], "requests");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("6 requests per minute"));
        let r = throttled().into_protocol_response(Protocol::Anthropic);
        assert_eq!(r.status(), 429);
        let h = r.headers().clone();
        assert_eq!(h["retry-after"], "10");
        assert_eq!(h["anthropic-ratelimit-requests-limit"], "6");
        assert_eq!(
            h["anthropic-ratelimit-requests-reset"],
            "2023-11-14T22:13:30Z"
        );
        let v = body_json(r).await;
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "rate_limit_error");
    }

    #[tokio::test]
    async fn upstream_errors_cross_protocols_with_their_message() {
        let body = Bytes::from_static(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        );
        let err = GatewayError::UpstreamStatus {
            provider: "a".into(),
            status: 529,
            body,
            protocol: Protocol::Anthropic,
            retry_after: Some(HeaderValue::from_static("3")),
        };
        let r = err.into_protocol_response(Protocol::OpenAi);
        assert_eq!(r.status(), 529);
        assert_eq!(r.headers()["retry-after"], "3");
        let v = body_json(r).await;
        assert_eq!(v["error"]["message"], "busy");
    }
}
