//! How long reading a request view takes: the filters and the detector do it on every chat
//! request. Run with `cargo bench -p moat-protocol --bench view`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use moat_protocol::view::{RequestView, ViewApi};
use serde_json::json;

fn main() {
    divan::main();
}

/// A ~2 KB chat body: a system prompt, four turns, tools and sampling parameters.
fn chat_body() -> Vec<u8> {
    let paragraph =
        "The quarterly report covers revenue, churn and the hiring plan for the platform team; \
                     summarise the risks in plain words and keep numbers exact. ";
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": format!("You are a careful analyst. {paragraph}")},
            {"role": "user", "content": paragraph.repeat(4)},
            {"role": "assistant", "content": paragraph.repeat(2)},
            {"role": "user", "content": [
                {"type": "text", "text": paragraph.repeat(3)},
                {"type": "image_url", "image_url": {"url": "https://example.invalid/chart.png"}}
            ]},
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "temperature": 0.3, "max_tokens": 512, "logprobs": true, "top_logprobs": 3,
        "stream": true, "user": "end-user-42"
    });
    serde_json::to_vec(&body).unwrap()
}

fn anthropic_body() -> Vec<u8> {
    let paragraph =
        "Compare the two contracts clause by clause and list every difference in liability. ";
    let body = json!({
        "model": "claude-sonnet",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": paragraph, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": paragraph.repeat(6)},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {"doc": "a"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": paragraph.repeat(8)}]},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 512},
        "metadata": {"user_id": "u-1"}
    });
    serde_json::to_vec(&body).unwrap()
}

#[divan::bench]
fn chat_2kb(bencher: divan::Bencher) {
    let body = chat_body();
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .bench(|| {
            RequestView::parse(ViewApi::OpenAiChat, divan::black_box(&body))
                .unwrap()
                .turns
                .len()
        });
}

#[divan::bench]
fn anthropic_2kb(bencher: divan::Bencher) {
    let body = anthropic_body();
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .bench(|| {
            RequestView::parse(ViewApi::AnthropicMessages, divan::black_box(&body))
                .unwrap()
                .turns
                .len()
        });
}
