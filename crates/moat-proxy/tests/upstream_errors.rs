//! Hostile and misconfigured upstreams through the live gateway: an error body that echoes the
//! provider key (or another secret) reaches the client masked, in either protocol; a provider
//! that refuses moat's own credentials (401/403) is a 502 `upstream_auth_failed`, never the
//! client's `invalid_api_key`, and the request moves on to the next target at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness, UPSTREAM_KEY};
use moat_config::{Config, ModelConfig, ProviderConfig, TargetConfig};
use moat_core::{Protocol, Secret};
use moat_testkit::Fault;
use serde_json::{json, Value};

/// A key shaped like a real one, which the upstream below echoes though moat never sent it.
const FOREIGN_KEY: &str = "sk-proj-Zq8vR2mX7tLw4Kp9Yb3Nc6Hd1Fg5Js0A";

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn msg(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

/// The same 400 body the sim's OpenAI or Anthropic side would answer, echoing the credentials.
fn echo_fault(protocol: Protocol) -> Fault {
    let message = format!(
        "bad request; headers were Authorization: Bearer {UPSTREAM_KEY}, x-api-key: {UPSTREAM_KEY}, x-other: {FOREIGN_KEY}"
    );
    let body = match protocol {
        Protocol::OpenAi => json!({"error": {"message": message, "type": "invalid_request_error",
            "param": null, "code": "bad_thing", "debug": {"authorization": format!("Bearer {UPSTREAM_KEY}")}}}),
        Protocol::Anthropic => {
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
        }
    };
    Fault::Status {
        status: 400,
        body: Some(body.to_string()),
        retry_after: None,
        retry_after_ms: None,
    }
}

async fn post_chat(h: &Harness, model: &str) -> (u16, Value) {
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .json(&chat(model))
        .send()
        .await
        .unwrap();
    json_of(r).await
}

async fn post_messages(h: &Harness, model: &str) -> (u16, Value) {
    let r = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &h.key)
        .header("anthropic-version", "2023-06-01")
        .json(&msg(model))
        .send()
        .await
        .unwrap();
    json_of(r).await
}

fn assert_no_secret(v: &Value) {
    let text = v.to_string();
    assert!(!text.contains(UPSTREAM_KEY), "provider key leaked: {text}");
    assert!(!text.contains(FOREIGN_KEY), "echoed key leaked: {text}");
    assert!(
        !text.contains("Zq8vR2mX7tLw4Kp9"),
        "echoed key leaked: {text}"
    );
}

#[tokio::test]
async fn echoed_credentials_are_masked_passed_through_and_translated() {
    let h = Harness::start().await;
    // model `gpt` is the OpenAI-kind provider, `claude` the Anthropic one: each protocol's client
    // sees one passthrough and one translated error.
    let cases = [
        ("openai_from_openai", "gpt", Protocol::OpenAi, true),
        ("anthropic_from_openai", "gpt", Protocol::OpenAi, false),
        ("openai_from_anthropic", "claude", Protocol::Anthropic, true),
        (
            "anthropic_from_anthropic",
            "claude",
            Protocol::Anthropic,
            false,
        ),
    ];
    for (name, model, upstream, openai_client) in cases {
        let target = if upstream == Protocol::OpenAi {
            "sim-gpt"
        } else {
            "sim-claude"
        };
        h.sim.push_fault_for_model(target, echo_fault(upstream));
        let (status, v) = if openai_client {
            post_chat(&h, model).await
        } else {
            post_messages(&h, model).await
        };
        // The provider's status and error type travel; its secrets do not.
        assert_eq!(status, 400, "{name}: {v}");
        assert_no_secret(&v);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("Bearer ****"), "{name}: {message}");
        assert!(message.contains("sk-proj-****Js0A"), "{name}: {message}");
        insta::assert_json_snapshot!(name, v);
    }
}

/// `gpt` on a provider whose key the sim refuses, falling back to `claude`; `bad` has no fallback.
fn wrong_key(c: &mut Config) {
    let mut p = ProviderConfig::new("oa-wrong", Protocol::OpenAi, provider_url(c, "oa"));
    p.api_key = Some(Secret::new("sk-wrong-0123456789abcdefWXYZ".into()));
    c.providers.push(p);
    let mut p = ProviderConfig::new("an-wrong", Protocol::Anthropic, provider_url(c, "an"));
    p.api_key = Some(Secret::new("sk-ant-wrong-0123456789abcdefWXYZ".into()));
    c.providers.push(p);
    c.models.push(ModelConfig::new(
        "bad",
        vec![TargetConfig::new("oa-wrong", "sim-gpt")],
    ));
    c.models.push(ModelConfig::new(
        "bad-claude",
        vec![TargetConfig::new("an-wrong", "sim-claude")],
    ));
    let mut m = ModelConfig::new(
        "bad-then-claude",
        vec![TargetConfig::new("oa-wrong", "sim-gpt")],
    );
    m.fallbacks = vec!["claude".into()];
    c.models.push(m);
    // Retries would show as extra attempts on the refusing provider.
    c.failover.retries = 2;
}

fn provider_url(c: &Config, name: &str) -> String {
    c.providers
        .iter()
        .find(|p| p.name == name)
        .unwrap()
        .base_url
        .clone()
}

#[tokio::test]
async fn a_provider_refusing_moats_key_is_a_502_that_never_blames_the_client() {
    let h = Harness::start_with(wrong_key).await;
    for (name, model) in [
        ("refused_openai_upstream", "bad"),
        ("refused_anthropic_upstream", "bad-claude"),
    ] {
        let (status, v) = post_chat(&h, model).await;
        assert_eq!(status, 502, "{v}");
        assert_eq!(v["error"]["code"], "upstream_auth_failed", "{v}");
        assert_eq!(v["error"]["type"], "server_error", "{v}");
        assert!(!v.to_string().contains("invalid_api_key"), "{v}");
        assert!(!v.to_string().contains("wrong-0123"), "{v}");
        insta::assert_json_snapshot!(format!("{name}_openai_client"), v);

        let (status, v) = post_messages(&h, model).await;
        assert_eq!(status, 502, "{v}");
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "api_error", "{v}");
        assert!(!v.to_string().contains("authentication_error"), "{v}");
        insta::assert_json_snapshot!(format!("{name}_anthropic_client"), v);
    }
    // The same key again: the client's own key still works.
    let (status, _) = post_chat(&h, "gpt").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_refused_provider_is_not_retried_and_the_fallback_answers() {
    let h = Harness::start_with(wrong_key).await;
    let before = h.sim.request_count_for_model("sim-gpt");
    let (status, v) = post_chat(&h, "bad-then-claude").await;
    assert_eq!(status, 200, "{v}");
    // One attempt on the refusing provider (no retries despite `retries = 2`), then the fallback.
    assert_eq!(h.sim.request_count_for_model("sim-gpt") - before, 1);
    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
}

#[tokio::test]
async fn an_upstream_403_is_the_gateways_fault_too() {
    let h = Harness::start().await;
    h.sim.push_fault_for_model(
        "sim-claude",
        Fault::Status {
            status: 403,
            body: Some(format!(
                r#"{{"type":"error","error":{{"type":"permission_error","message":"key {UPSTREAM_KEY} may not use this model"}}}}"#
            )),
            retry_after: None,
            retry_after_ms: None,
        },
    );
    let (status, v) = post_messages(&h, "claude").await;
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"]["type"], "api_error", "{v}");
    assert_no_secret(&v);
    assert!(!v.to_string().contains("permission_error"), "{v}");
}
