//! Unit tests of the error builders and translations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn anthropic_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap()
}

fn openai_type(body: &Value) -> (&str, &Value) {
    (
        body["error"]["type"].as_str().unwrap(),
        &body["error"]["code"],
    )
}

#[test]
fn builders_have_the_sdk_shapes() {
    assert_eq!(
        openai_error("m", "invalid_request_error", Some("model"), None),
        json!({"error": {"message": "m", "type": "invalid_request_error", "param": "model", "code": null}})
    );
    assert_eq!(
        anthropic_error("not_found_error", "m"),
        json!({"type": "error", "error": {"type": "not_found_error", "message": "m"}})
    );
}

#[test]
fn openai_to_anthropic_maps_by_status_and_keeps_message() {
    let body = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    let out = openai_error_to_anthropic(401, &body);
    assert_eq!(anthropic_type(&out), "authentication_error");
    assert_eq!(out["error"]["message"], "Incorrect API key provided");
    for (status, expected) in [
        (400, "invalid_request_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ] {
        assert_eq!(
            anthropic_type(&openai_error_to_anthropic(status, &body)),
            expected,
            "{status}"
        );
    }
}

#[test]
fn insufficient_quota_becomes_billing_error() {
    let body = json!({"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}});
    assert_eq!(
        anthropic_type(&openai_error_to_anthropic(429, &body)),
        "billing_error"
    );
}

#[test]
fn stream_errors_without_status_map_by_type() {
    let body = json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}});
    assert_eq!(
        anthropic_type(&openai_error_to_anthropic(200, &body)),
        "rate_limit_error"
    );
    let body = json!({"error": {"message": "boom", "type": "server_error"}});
    assert_eq!(
        anthropic_type(&openai_error_to_anthropic(0, &body)),
        "api_error"
    );
}

#[test]
fn anthropic_to_openai_maps_by_type_then_status() {
    for (r#type, expected, code) in [
        (
            "invalid_request_error",
            "invalid_request_error",
            Value::Null,
        ),
        (
            "authentication_error",
            "authentication_error",
            json!("invalid_api_key"),
        ),
        (
            "billing_error",
            "insufficient_quota",
            json!("insufficient_quota"),
        ),
        ("permission_error", "permission_error", Value::Null),
        ("not_found_error", "not_found_error", Value::Null),
        (
            "request_too_large",
            "invalid_request_error",
            json!("request_too_large"),
        ),
        (
            "rate_limit_error",
            "rate_limit_error",
            json!("rate_limit_exceeded"),
        ),
        ("api_error", "server_error", Value::Null),
        ("overloaded_error", "server_error", json!("overloaded")),
    ] {
        let out = anthropic_error_to_openai(200, &anthropic_error(r#type, "msg"));
        assert_eq!(openai_type(&out), (expected, &code), "{type}");
        assert_eq!(out["error"]["message"], "msg");
        assert_eq!(out["error"]["param"], Value::Null);
    }
    let unknown = anthropic_error("brand_new_error", "msg");
    assert_eq!(
        openai_type(&anthropic_error_to_openai(404, &unknown)).0,
        "not_found_error"
    );
}

#[test]
fn spend_limit_is_insufficient_quota() {
    let body = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "spend", "details": {"error_code": "enforced_spend_limit_reached"}}});
    assert_eq!(
        openai_type(&anthropic_error_to_openai(429, &body)).0,
        "insufficient_quota"
    );
}

#[test]
fn non_envelope_bodies_still_give_valid_envelopes() {
    let html = parse_error_body(b"<html><body>502 Bad Gateway</body></html>\n");
    let out = openai_error_to_anthropic(502, &html);
    assert_eq!(out["type"], "error");
    assert_eq!(
        out["error"]["message"],
        "<html><body>502 Bad Gateway</body></html>"
    );
    let out = anthropic_error_to_openai(502, &html);
    assert_eq!(
        out["error"]["message"],
        "<html><body>502 Bad Gateway</body></html>"
    );
    assert_eq!(out["error"]["type"], "server_error");

    let empty = parse_error_body(b"");
    assert_eq!(
        anthropic_error_to_openai(503, &empty)["error"]["message"],
        "upstream returned HTTP 503"
    );
    assert_eq!(
        openai_error_to_anthropic(0, &Value::Null)["error"]["message"],
        "upstream returned an error"
    );

    let string_error = json!({"error": "model not loaded"});
    assert_eq!(
        openai_error_to_anthropic(404, &string_error)["error"]["message"],
        "model not loaded"
    );
    let fastapi = json!({"detail": "Not Found"});
    assert_eq!(
        openai_error_to_anthropic(404, &fastapi)["error"]["message"],
        "Not Found"
    );
    let vllm = json!({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400});
    assert_eq!(
        openai_error_to_anthropic(400, &vllm)["error"]["message"],
        "bad"
    );
    let odd = json!([1, 2]);
    assert_eq!(
        anthropic_error_to_openai(500, &odd)["error"]["message"],
        "[1,2]"
    );
}

#[test]
fn long_fallback_text_is_truncated_on_a_char_boundary() {
    let long = Value::String("é".repeat(5000));
    let message = openai_error_to_anthropic(500, &long)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(message.chars().count(), MAX_FALLBACK_MESSAGE_CHARS + 1);
    assert!(message.ends_with('…'));
}
