//! Unit tests of the request view, for each API and for odd and broken bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::json;

fn view(api: ViewApi, body: &serde_json::Value) -> RequestView<'static> {
    let bytes: &'static [u8] = Vec::leak(serde_json::to_vec(body).unwrap());
    RequestView::parse(api, bytes).unwrap()
}

fn roles(v: &RequestView<'_>) -> Vec<(Role, String)> {
    v.turns
        .iter()
        .map(|t| (t.role, t.text.to_string()))
        .collect()
}

#[test]
fn chat_reads_roles_texts_and_parameters() {
    let v = view(
        ViewApi::OpenAiChat,
        &json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "no lists"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "look at this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "and this"}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
                {"role": "user", "content": "thanks"}
            ],
            "max_completion_tokens": 100, "max_tokens": 50,
            "n": 3, "temperature": 1, "top_p": 0.5,
            "logprobs": true, "top_logprobs": 4,
            "logit_bias": {"1": 10, "2": -100},
            "reasoning_effort": "high",
            "stream": true,
            "user": "u-1",
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "unknown": {"deep": [1, 2, {"x": null}]}
        }),
    );
    assert_eq!(v.model.as_deref(), Some("gpt-4o"));
    assert_eq!(v.system, vec!["be brief", "no lists"]);
    assert_eq!(
        roles(&v),
        vec![
            (Role::User, "look at this\nand this".to_string()),
            (Role::Assistant, String::new()),
            (Role::Tool, "42".to_string()),
            (Role::User, "thanks".to_string()),
        ]
    );
    assert_eq!(v.last_user_text(), Some("thanks"));
    assert_eq!(v.end_user.as_deref(), Some("u-1"));
    assert_eq!(v.tool_count, 1);
    assert_eq!(
        v.params,
        Params {
            max_tokens: Some(100),
            n: Some(3),
            temperature: Some(1.0),
            top_p: Some(0.5),
            logprobs: true,
            top_logprobs: Some(4),
            logit_bias_entries: 2,
            prompt_logprobs: false,
            reasoning_requested: true,
            stream: true,
        }
    );
}

#[test]
fn plain_strings_borrow_from_the_body() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;
    let v = RequestView::parse(ViewApi::OpenAiChat, body).unwrap();
    assert!(matches!(v.model, Some(Cow::Borrowed("m"))));
    assert!(matches!(v.turns[0].text, Cow::Borrowed("hello")));
    // Escapes are decoded, as the provider decodes them.
    let body = br#"{"messages":[{"role":"user","content":"ign\u006fre \"this\""}]}"#;
    let v = RequestView::parse(ViewApi::OpenAiChat, body).unwrap();
    assert_eq!(v.turns[0].text, "ignore \"this\"");
}

#[test]
fn escaped_keys_are_read_as_the_provider_reads_them() {
    let body = br#"{"messages":[{"r\u006fle":"user","c\u006fntent":[{"t\u0065xt":"hidden"}]}],"l\u006fgprobs":true}"#;
    let v = RequestView::parse(ViewApi::OpenAiChat, body).unwrap();
    assert_eq!(roles(&v), vec![(Role::User, "hidden".to_string())]);
    assert!(v.params.logprobs);
}

#[test]
fn chat_odd_shapes_do_not_fail() {
    let v = view(
        ViewApi::OpenAiChat,
        &json!({
            "model": "m",
            "messages": [
                {"role": "user"},
                {"role": "user", "content": []},
                {"role": "user", "content": 7},
                {"role": "user", "content": {"type": "text", "text": "single part"}},
                {"role": "user", "content": [{"type": "text", "text": ["not", "a", "string"]}, "bare string"]},
                {"content": "no role"},
                {"role": "ipython", "content": "custom role"},
                {"role": "function", "name": "f", "content": "legacy"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}
            ],
            "temperature": null, "n": null, "logit_bias": null, "user": null,
            "tools": null, "stream": null, "logprobs": null, "prompt_logprobs": null
        }),
    );
    assert_eq!(
        roles(&v),
        vec![
            (Role::User, String::new()),
            (Role::User, String::new()),
            (Role::User, String::new()),
            (Role::User, "single part".to_string()),
            (Role::User, "bare string".to_string()),
            (Role::Other, "no role".to_string()),
            (Role::Other, "custom role".to_string()),
            (Role::Tool, "legacy".to_string()),
            (Role::Assistant, String::new()),
        ]
    );
    assert_eq!(v.params, Params::default());
    assert_eq!(v.end_user, None);
}

#[test]
fn chat_logprob_forms() {
    let p = |body: serde_json::Value| view(ViewApi::OpenAiChat, &body).params;
    assert!(p(json!({"logprobs": 2})).logprobs);
    assert!(!p(json!({"logprobs": 0})).logprobs);
    assert!(!p(json!({"logprobs": false})).logprobs);
    assert!(p(json!({"echo": true, "logprobs": 1})).prompt_logprobs);
    assert!(!p(json!({"echo": true})).prompt_logprobs);
    assert!(p(json!({"prompt_logprobs": 0})).prompt_logprobs);
    assert!(!p(json!({"reasoning_effort": "none"})).reasoning_requested);
    assert!(p(json!({"reasoning": {"effort": "low"}})).reasoning_requested);
    assert_eq!(p(json!({"safety_identifier": "s"})), Params::default());
    let v = view(
        ViewApi::OpenAiChat,
        &json!({"safety_identifier": "s", "functions": [{}, {}]}),
    );
    assert_eq!(v.end_user.as_deref(), Some("s"));
    assert_eq!(v.tool_count, 2);
}

#[test]
fn responses_reads_instructions_items_and_include() {
    let v = view(
        ViewApi::OpenAiResponses,
        &json!({
            "model": "gpt-5",
            "instructions": "you are terse",
            "input": [
                {"role": "developer", "content": "dev note"},
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "part one"},
                    {"type": "input_image", "image_url": "https://x/y.png"},
                    {"type": "input_text", "text": "part two"}
                ]},
                {"type": "reasoning", "id": "r1", "summary": [], "encrypted_content": "xyz"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "result text"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}
            ],
            "max_output_tokens": 64,
            "top_logprobs": 3,
            "include": ["message.output_text.logprobs", "reasoning.encrypted_content"],
            "store": false,
            "tools": [{"type": "function", "name": "f", "parameters": {}}],
            "user": "u"
        }),
    );
    assert_eq!(v.system, vec!["you are terse", "dev note"]);
    assert_eq!(
        roles(&v),
        vec![
            (Role::User, "hi".to_string()),
            (Role::User, "part one\npart two".to_string()),
            (Role::Tool, "result text".to_string()),
            (Role::Assistant, "ok".to_string()),
        ]
    );
    assert_eq!(v.last_user_text(), Some("part one\npart two"));
    assert_eq!(v.params.max_tokens, Some(64));
    assert_eq!(v.params.top_logprobs, Some(3));
    assert!(v.params.logprobs);
    assert!(v.params.reasoning_requested);
    assert_eq!(v.tool_count, 1);
    assert_eq!(v.end_user.as_deref(), Some("u"));
}

#[test]
fn responses_string_input_is_one_user_turn() {
    let v = view(
        ViewApi::OpenAiResponses,
        &json!({"model": "m", "input": "tell me", "reasoning": {"effort": "none"}}),
    );
    assert_eq!(roles(&v), vec![(Role::User, "tell me".to_string())]);
    assert!(!v.params.reasoning_requested);
    assert_eq!(v.last_user_text(), Some("tell me"));
}

#[test]
fn responses_prompt_variables_are_user_text() {
    let v = view(
        ViewApi::OpenAiResponses,
        &json!({"model": "m", "prompt": {"id": "pmpt_1", "version": "2", "variables": {
            "customer": "Ada", "topic": {"type": "input_text", "text": "billing"}, "n": 3}},
            "input": "go"}),
    );
    assert_eq!(
        roles(&v),
        vec![
            (Role::User, "Ada\nbilling".to_string()),
            (Role::User, "go".to_string())
        ]
    );
    assert_eq!(v.last_user_text(), Some("go"));
}

#[test]
fn anthropic_reads_system_blocks_tool_results_and_thinking() {
    let v = view(
        ViewApi::AnthropicMessages,
        &json!({
            "model": "claude",
            "max_tokens": 1024,
            "system": [
                {"type": "text", "text": "first", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "second"}
            ],
            "messages": [
                {"role": "user", "content": "question"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"q": "x"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "plain result"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": [
                        {"type": "text", "text": "block result"},
                        {"type": "image", "source": {"type": "base64", "data": "AAAA"}}
                    ]}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t3", "is_error": true},
                    {"type": "text", "text": "and a follow-up"},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}}
                ]}
            ],
            "thinking": {"type": "enabled", "budget_tokens": 512},
            "metadata": {"user_id": "end-user-7"},
            "temperature": 0.2,
            "tools": [{"name": "f", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}]
        }),
    );
    assert_eq!(v.system, vec!["first", "second"]);
    assert_eq!(
        roles(&v),
        vec![
            (Role::User, "question".to_string()),
            (Role::Assistant, "calling".to_string()),
            (Role::Tool, "plain result\nblock result".to_string()),
            (Role::User, "and a follow-up\ndoc body".to_string()),
        ]
    );
    assert_eq!(v.end_user.as_deref(), Some("end-user-7"));
    assert_eq!(v.tool_count, 2);
    assert_eq!(v.params.max_tokens, Some(1024));
    assert_eq!(v.params.temperature, Some(0.2));
    assert!(v.params.reasoning_requested);
    assert!(!v.params.logprobs);
}

#[test]
fn anthropic_odd_shapes() {
    let v = view(
        ViewApi::AnthropicMessages,
        &json!({
            "model": "claude", "max_tokens": 10,
            "system": "plain system",
            "thinking": {"type": "disabled"},
            "metadata": {"user_id": 12},
            "messages": [
                {"role": "user", "content": [
                    {"type": "web_search_tool_result", "tool_use_id": "s", "content": {"type": "web_search_tool_result_error", "error_code": "x"}},
                    {"type": "search_result", "source": "https://x", "title": "t", "content": [{"type": "text", "text": "found"}]}
                ]}
            ]
        }),
    );
    assert_eq!(v.system, vec!["plain system"]);
    assert_eq!(roles(&v), vec![(Role::User, "found".to_string())]);
    assert!(!v.params.reasoning_requested);
    assert_eq!(v.end_user, None);
    let v = view(
        ViewApi::AnthropicMessages,
        &json!({"model": "c", "max_tokens": 1, "thinking": {"type": "adaptive"}, "system": []}),
    );
    assert!(v.params.reasoning_requested);
    assert!(v.system.is_empty());
    assert!(v.turns.is_empty());
    assert_eq!(v.last_user_text(), None);
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    for (api, body) in [
        (ViewApi::OpenAiChat, &b""[..]),
        (ViewApi::OpenAiChat, b"   "),
        (ViewApi::OpenAiChat, b"[\"m\", []]"),
        (ViewApi::OpenAiChat, b"{\"model\": \"m\""),
        (ViewApi::OpenAiChat, b"{\"n\": \"3\"}"),
        (ViewApi::OpenAiChat, b"{\"n\": -1}"),
        (ViewApi::OpenAiChat, b"{\"top_logprobs\": 2.5}"),
        (ViewApi::OpenAiChat, b"{\"logprobs\": \"true\"}"),
        (ViewApi::OpenAiChat, b"{\"logit_bias\": 5}"),
        (ViewApi::OpenAiChat, b"{\"n\": 1, \"n\": 100}"),
        (ViewApi::OpenAiChat, b"{\"messages\": \"hi\"}"),
        (
            ViewApi::OpenAiChat,
            b"{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\"}]}",
        ),
        (ViewApi::OpenAiResponses, b"{\"include\": \"x\"}"),
        (ViewApi::AnthropicMessages, b"{\"max_tokens\": true}"),
        (ViewApi::AnthropicMessages, b"{\"system\": 5}"),
        (ViewApi::AnthropicMessages, b"null"),
    ] {
        assert!(
            RequestView::parse(api, body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut body = String::from("{\"messages\":[{\"role\":\"user\",\"content\":");
    for _ in 0..10_000 {
        body.push_str("[{\"type\":\"tool_result\",\"content\":");
    }
    body.push_str("\"x\"");
    for _ in 0..10_000 {
        body.push_str("}]");
    }
    body.push_str("}]}");
    assert!(RequestView::parse(ViewApi::AnthropicMessages, body.as_bytes()).is_err());
}

#[test]
fn truncated_bodies_never_panic() {
    let body = serde_json::to_vec(&json!({
        "model": "m", "system": [{"type": "text", "text": "s\u{e9}"}],
        "messages": [{"role": "user", "content": [{"type": "tool_result", "content": [{"type": "text", "text": "a\"b"}]}]}],
        "input": [{"type": "function_call_output", "output": "o"}],
        "logit_bias": {"1": 2}, "thinking": {"type": "enabled"}
    }))
    .unwrap();
    for api in [
        ViewApi::OpenAiChat,
        ViewApi::OpenAiResponses,
        ViewApi::AnthropicMessages,
    ] {
        assert!(RequestView::parse(api, &body).is_ok());
        for end in 0..body.len() {
            let _ = RequestView::parse(api, &body[..end]);
        }
    }
}
