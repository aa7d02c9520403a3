//! Rate-limit response headers in each protocol's spelling: on a 429 from moat's limits and on
//! every admitted response of a limited key, as the providers send them.

use axum::response::Response;
use http::HeaderValue;
use moat_core::Protocol;
use moat_policy::limits::{BucketStatus, RateStatus, Refusal};

/// `retry-after` (whole seconds, at least 1), `retry-after-ms` and the rate-limit headers, on a
/// refusal.
pub fn refusal(response: &mut Response, protocol: Protocol, refusal: &Refusal, now_ms: i64) {
    let secs = refusal.retry_after_ms.div_ceil(1000).max(1);
    set(response, "retry-after", secs.to_string());
    set(
        response,
        "retry-after-ms",
        refusal.retry_after_ms.to_string(),
    );
    status(response, protocol, &refusal.status, now_ms);
}

/// The rate-limit headers of the tightest limits that admitted a request.
pub fn status(response: &mut Response, protocol: Protocol, status: &RateStatus, now_ms: i64) {
    for (what, bucket) in [("requests", status.requests), ("tokens", status.tokens)] {
        let Some(b) = bucket else { continue };
        match protocol {
            Protocol::OpenAi => openai(response, what, &b),
            Protocol::Anthropic => anthropic(response, what, &b, now_ms),
        }
    }
}

fn openai(response: &mut Response, what: &str, b: &BucketStatus) {
    set_named(
        response,
        format!("x-ratelimit-limit-{what}"),
        b.limit.to_string(),
    );
    set_named(
        response,
        format!("x-ratelimit-remaining-{what}"),
        b.remaining.to_string(),
    );
    set_named(
        response,
        format!("x-ratelimit-reset-{what}"),
        go_duration(b.reset_ms),
    );
}

fn anthropic(response: &mut Response, what: &str, b: &BucketStatus, now_ms: i64) {
    set_named(
        response,
        format!("anthropic-ratelimit-{what}-limit"),
        b.limit.to_string(),
    );
    set_named(
        response,
        format!("anthropic-ratelimit-{what}-remaining"),
        b.remaining.to_string(),
    );
    let at = u64::try_from(now_ms)
        .unwrap_or(0)
        .saturating_add(b.reset_ms);
    // RFC 3339 in whole seconds, rounded up so a client that waits until then finds room.
    let reset = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.div_ceil(1000) * 1000);
    set_named(
        response,
        format!("anthropic-ratelimit-{what}-reset"),
        humantime::format_rfc3339_seconds(reset).to_string(),
    );
}

/// A duration as OpenAI writes its resets: `250ms`, `1s`, `6m0s`, `1h2m3s` (whole seconds
/// rounded up from one second on).
pub fn go_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms.div_ceil(1000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn set(response: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, v);
    }
}

fn set_named(response: &mut Response, name: String, value: String) {
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(&value),
    ) {
        response.headers_mut().insert(n, v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::go_duration;

    #[test]
    fn resets_read_like_openai_writes_them() {
        assert_eq!(go_duration(250), "250ms");
        assert_eq!(go_duration(1000), "1s");
        assert_eq!(go_duration(1001), "2s");
        assert_eq!(go_duration(360_000), "6m0s");
        assert_eq!(go_duration(3_723_000), "1h2m3s");
    }
}
