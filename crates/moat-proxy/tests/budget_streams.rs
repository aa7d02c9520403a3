//! Budgets against answers of unknown length: a request without an output cap reserves its
//! target's `max_output` when the price table knows it; otherwise (only `default_output_tokens`
//! reserved) a stream is metered as it goes, its hold extended before each content delta goes
//! out, and cut with the client protocol's billing error when the budget cannot pay for more.
//!
//! The simulated provider answers 24 words, one token per word, in one delta per word; `sim-gpt`
//! and `sim-claude` cost one micro-unit per input token (1.25 for cache writes, the dearest input
//! rate, which is what a reservation prices the input bound at) and two per output token. The
//! gateway estimates a delta at `ceil(bytes / 3)` tokens, so a test can compute from the
//! fragments it receives exactly what the gateway covered and charged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{events_of, json_of, Event, Harness, KeyScope};
use moat_config::{Budget, Config, PriceConfig, WorkflowConfig};
use moat_core::{ManualClock, Money, Secret};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "admin-token-0123456789";
/// 2026-05-28T20:26:40Z.
const T0: i64 = 1_780_000_000_000;

fn price(model: &str, output: u64, max_output: Option<u64>) -> PriceConfig {
    PriceConfig {
        model: model.into(),
        input: 1_000_000,
        output,
        cached_input: None,
        cache_write: None,
        context_window: None,
        max_output,
    }
}

/// A harness whose `sim-gpt` and `sim-claude` are priced, with a 4-token default output
/// reservation (so an uncapped answer outgrows it) and `budgets` as workflows of that name and
/// daily hard limit in micro-units.
async fn start(budgets: &[(&'static str, i64)], edit: impl FnOnce(&mut Config)) -> Harness {
    let clock = Arc::new(ManualClock::new(T0));
    let budgets: Vec<(&'static str, i64)> = budgets.to_vec();
    Harness::start_with_clock(
        move |c| {
            c.prices.push(price("sim-gpt", 2_000_000, None));
            c.prices.push(price("sim-claude", 2_000_000, None));
            c.admin.token = Some(Secret::new(TOKEN.into()));
            c.governance.default_output_tokens = 4;
            for (name, hard) in budgets {
                let mut w = WorkflowConfig::new(name, "platform-team");
                w.budget = Budget {
                    daily: Some(Money(hard)),
                    ..Budget::default()
                };
                c.workflows.push(w);
            }
            edit(c);
        },
        clock,
    )
    .await
}

async fn key_of(h: &Harness, workflow: &'static str) -> String {
    h.create_key(KeyScope {
        workflow: Some(workflow),
        ..KeyScope::default()
    })
    .await
}

/// An OpenAI chat request without an output cap.
fn chat(model: &str, stream: bool) -> Value {
    let mut body = json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "tell me a story"}],
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// An Anthropic request without `max_tokens` (the gateway does not demand one; an OpenAI-kind
/// target does not need one).
fn messages(model: &str) -> Value {
    json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": "tell me a story"}],
    })
}

/// What a reservation charges for the input bound: the body's bytes at the dearest input rate
/// (1.25 micro-units a token, rounded up) plus `max_cost`'s two micro-units of split rounding.
fn input_bound_cost(body: &Value) -> i64 {
    let len = serde_json::to_vec(body).unwrap().len() as i64;
    (len * 5 + 3) / 4 + 2
}

/// The gateway's estimate of one text fragment.
fn estimate(fragment: &str) -> i64 {
    fragment.len().div_ceil(3) as i64
}

/// The text fragments of an OpenAI chat or Anthropic stream, in order.
fn fragments(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let v = e.json();
            let text = match e.event.as_deref() {
                Some("content_block_delta") => v["delta"]["text"].as_str(),
                _ => v["choices"][0]["delta"]["content"].as_str(),
            };
            text.filter(|t| !t.is_empty()).map(str::to_string)
        })
        .collect()
}

/// Settled spend of a workflow today, from the admin API.
async fn spent(h: &Harness, workflow: &str) -> i64 {
    let (status, body) = json_of(h.admin("/admin/v1/spend", Some(TOKEN)).await).await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["scope"] == "workflow" && r["id"] == workflow && r["period"] == "day")
        .map(|r| r["spent"]["micros"].as_i64().unwrap())
        .sum()
}

/// The whole answer to `body` from a gateway without budgets, as fragments: the sim answers the
/// same request the same way.
async fn unbudgeted_fragments(path: &str, body: &Value) -> Vec<String> {
    let h = start(&[], |_| {}).await;
    let r = match path {
        "/v1/messages" => h.anthropic(path, body).await,
        _ => h.openai(path, body).await,
    };
    assert_eq!(r.status(), 200);
    fragments(&events_of(r).await)
}

/// A counter's value in the gateway's /metrics text (shared by every test of this binary).
async fn counter(h: &Harness, name: &str) -> u64 {
    h.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test]
async fn an_uncapped_stream_is_extended_as_it_goes_and_charged_its_reported_usage() {
    let body = chat("gpt", true);
    let answer = unbudgeted_fragments("/v1/chat/completions", &body).await;
    assert_eq!(answer.len(), 24);
    let output: i64 = answer.iter().map(|f| estimate(f)).sum();
    // Exactly what the whole answer's estimate needs: the hold can never take a 256-token step,
    // only the shortfall of each delta. One micro-unit less cuts the last delta.
    let hard = input_bound_cost(&body) + 2 * output;
    let h = start(&[("story", hard), ("short", hard - 1)], |_| {}).await;
    let key = key_of(&h, "story").await;
    let short = key_of(&h, "short").await;

    let r = h.openai_as(&short, "/v1/chat/completions", &body).await;
    let events = events_of(r).await;
    assert_eq!(fragments(&events), answer[..23]);
    assert_eq!(
        events.last().unwrap().json()["error"]["type"],
        "insufficient_quota"
    );
    let last = estimate(&answer[23]);
    assert_eq!(spent(&h, "short").await, hard - 2 * last);

    let r = h.openai_as(&key, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let events = events_of(r).await;
    assert_eq!(fragments(&events), answer, "the whole answer went out");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let usage = events
        .iter()
        .find_map(|e| Some(e.json()["usage"].as_object()?.clone()))
        .unwrap();
    assert_eq!(usage["completion_tokens"], 24);
    let reported =
        usage["prompt_tokens"].as_i64().unwrap() + 2 * usage["completion_tokens"].as_i64().unwrap();
    assert_eq!(
        spent(&h, "story").await,
        reported,
        "charged the provider's count, not the estimate"
    );
}

#[tokio::test]
async fn an_uncapped_stream_past_its_budget_ends_with_openai_insufficient_quota() {
    let body = chat("gpt", true);
    let answer = unbudgeted_fragments("/v1/chat/completions", &body).await;
    // Affords about a third of the answer's estimated output.
    let hard = input_bound_cost(&body) + 2 * 20;
    let h = start(&[("story", hard)], |_| {}).await;
    let key = key_of(&h, "story").await;
    let cuts_before = counter(&h, "moat_budget_stream_cut_total").await;

    let r = h.openai_as(&key, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let events = events_of(r).await;
    // Cut right before the first delta whose estimate no longer fits.
    let mut fits = 0;
    let mut streamed = 0;
    for f in &answer {
        if streamed + estimate(f) > 20 {
            break;
        }
        streamed += estimate(f);
        fits += 1;
    }
    assert!(fits > 0 && fits < answer.len(), "{fits}");
    assert_eq!(fragments(&events), answer[..fits]);
    let last = events.last().unwrap();
    assert_eq!(
        last.json()["error"]["type"],
        "insufficient_quota",
        "{last:?}"
    );
    assert_eq!(last.json()["error"]["code"], "insufficient_quota");
    let message = last.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("workflow story: daily budget of"),
        "{message}"
    );
    assert!(events.iter().all(|e| e.data != "[DONE]"));

    // Charged the estimate of what went out, which the budget covers.
    let charged = spent(&h, "story").await;
    assert_eq!(charged, input_bound_cost(&body) + 2 * streamed);
    assert!(charged <= hard, "spent {charged} of {hard}");
    assert!(counter(&h, "moat_budget_stream_cut_total").await > cuts_before);

    let r = h.openai_as(&key, "/v1/chat/completions", &body).await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "insufficient_quota");
}

#[tokio::test]
async fn an_uncapped_stream_past_its_budget_ends_with_anthropic_billing_error() {
    // An Anthropic client without `max_tokens`, answered by an OpenAI-kind target: translated.
    let body = messages("gpt");
    let answer = unbudgeted_fragments("/v1/messages", &body).await;
    assert_eq!(answer.len(), 24);
    let hard = input_bound_cost(&body) + 2 * 20;
    let h = start(&[("story", hard)], |_| {}).await;
    let key = key_of(&h, "story").await;

    let r = h.anthropic_as(&key, "/v1/messages", &body).await;
    assert_eq!(r.status(), 200);
    let events = events_of(r).await;
    let got = fragments(&events);
    assert!(!got.is_empty() && got.len() < answer.len(), "{got:?}");
    assert_eq!(got, answer[..got.len()]);
    let streamed: i64 = got.iter().map(|f| estimate(f)).sum();
    assert!(streamed <= 20 && streamed + estimate(&answer[got.len()]) > 20);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(last.json()["type"], "error");
    assert_eq!(last.json()["error"]["type"], "billing_error", "{last:?}");
    assert!(events
        .iter()
        .all(|e| e.event.as_deref() != Some("message_stop")));

    let charged = spent(&h, "story").await;
    assert_eq!(charged, input_bound_cost(&body) + 2 * streamed);
    assert!(charged <= hard, "spent {charged} of {hard}");

    let r = h.anthropic_as(&key, "/v1/messages", &body).await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 402);
    assert_eq!(body["error"]["type"], "billing_error");
}

#[tokio::test]
async fn a_known_max_output_is_reserved_in_full_and_its_stream_is_not_metered() {
    let body = chat("gpt", true);
    let input = input_bound_cost(&body);
    // The whole answer (24 tokens) would fit the first, but not the 30 the model may produce.
    let h = start(
        &[("tight", input + 2 * 30 - 1), ("fits", input + 2 * 30)],
        |c| {
            c.prices[0].max_output = Some(30);
        },
    )
    .await;
    let tight = key_of(&h, "tight").await;
    let r = h.openai_as(&tight, "/v1/chat/completions", &body).await;
    let (status, refused) = json_of(r).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "insufficient_quota");
    assert_eq!(h.sim.request_count(), 0, "refused before it was sent");

    // 30 tokens reserved bound the answer: its estimate (well above 30) is never checked.
    let fits = key_of(&h, "fits").await;
    let r = h.openai_as(&fits, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let events = events_of(r).await;
    let got = fragments(&events);
    assert_eq!(got.len(), 24);
    assert!(got.iter().map(|f| estimate(f)).sum::<i64>() > 30);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    // "tell me a story": 4 input tokens, 24 output tokens.
    assert_eq!(spent(&h, "fits").await, 4 + 2 * 24);
}

#[tokio::test]
async fn a_capped_stream_is_never_cut_however_long_its_estimate() {
    let mut body = chat("claude", true);
    body["max_tokens"] = json!(20);
    let h = start(&[("capped", input_bound_cost(&body) + 2 * 20)], |_| {}).await;
    let key = key_of(&h, "capped").await;
    // An OpenAI client answered by the Anthropic-kind target: translated both ways.
    let r = h.openai_as(&key, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let events = events_of(r).await;
    let got = fragments(&events);
    assert_eq!(got.len(), 20);
    assert!(got.iter().map(|f| estimate(f)).sum::<i64>() > 20);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert_eq!(spent(&h, "capped").await, 4 + 2 * 20);
}

#[tokio::test]
async fn an_uncapped_whole_answer_is_charged_as_reported_past_its_reservation_and_counted() {
    // 100 micro-units an output token: 24 of them cost far more than the 4 reserved.
    let body = chat("gpt", false);
    let reserved = input_bound_cost(&body) + 100 * 4;
    let h = start(&[("story", 100_000)], |c| {
        c.prices[0].output = 100_000_000;
    })
    .await;
    let key = key_of(&h, "story").await;
    let overruns_before = counter(&h, "moat_budget_overrun_total").await;
    let (status, answer) = json_of(h.openai_as(&key, "/v1/chat/completions", &body).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["usage"]["completion_tokens"], 24);
    let charged = spent(&h, "story").await;
    assert_eq!(charged, 4 + 100 * 24);
    assert!(charged > reserved);
    assert!(counter(&h, "moat_budget_overrun_total").await > overruns_before);
}
