//! Which error type each protocol uses for an HTTP status or for the other protocol's type.

/// The Anthropic error type for an HTTP status (`api_error` for unknown 5xx,
/// `invalid_request_error` for other 4xx).
pub fn anthropic_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The OpenAI error `type` and `code` for an HTTP status.
pub fn openai_type_for_status(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("authentication_error", Some("invalid_api_key")),
        402 => ("insufficient_quota", Some("insufficient_quota")),
        403 => ("permission_error", None),
        404 => ("not_found_error", None),
        408 | 504 => ("server_error", Some("timeout")),
        413 => ("invalid_request_error", Some("request_too_large")),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        503 | 529 => ("server_error", Some("overloaded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

pub(super) fn anthropic_type_for_openai(
    status: u16,
    r#type: Option<&str>,
    code: Option<&str>,
) -> &'static str {
    if r#type == Some("insufficient_quota") || code == Some("insufficient_quota") {
        return "billing_error";
    }
    if status >= 400 {
        return anthropic_type_for_status(status);
    }
    match (r#type, code) {
        (_, Some("rate_limit_exceeded")) => "rate_limit_error",
        (_, Some("invalid_api_key")) => "authentication_error",
        (Some("invalid_request_error"), _) => "invalid_request_error",
        (Some("authentication_error"), _) => "authentication_error",
        (Some("permission_error"), _) => "permission_error",
        (Some("not_found_error"), _) => "not_found_error",
        (Some("rate_limit_error" | "requests" | "tokens"), _) => "rate_limit_error",
        _ => "api_error",
    }
}

pub(super) fn openai_type_for_anthropic(
    status: u16,
    r#type: Option<&str>,
) -> (&'static str, Option<&'static str>) {
    match r#type {
        Some("invalid_request_error") => ("invalid_request_error", None),
        Some("authentication_error") => openai_type_for_status(401),
        Some("billing_error") => openai_type_for_status(402),
        Some("permission_error") => openai_type_for_status(403),
        Some("not_found_error") => openai_type_for_status(404),
        Some("request_too_large") => openai_type_for_status(413),
        Some("rate_limit_error") => openai_type_for_status(429),
        Some("timeout_error") => openai_type_for_status(504),
        Some("overloaded_error") => openai_type_for_status(529),
        Some("api_error") => openai_type_for_status(500),
        _ if status >= 400 => openai_type_for_status(status),
        _ => ("server_error", None),
    }
}
