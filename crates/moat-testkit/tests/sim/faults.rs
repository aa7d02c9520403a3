//! Every fault, observed from a real HTTP client.

use std::time::{Duration, Instant};

use moat_testkit::{Fault, SimOptions, SimUpstream};
use serde_json::{json, Value};

use crate::common::{client_with_timeout, parse_sse, post, post_json, post_stream};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn message(stream: bool) -> Value {
    json!({"model": "sim-claude", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn status(status: u16) -> Fault {
    Fault::Status {
        status,
        body: None,
        retry_after: None,
        retry_after_ms: None,
    }
}

/// Reads a streamed body until it ends or fails; returns what arrived and the error, if any.
async fn read_until_end(response: reqwest::Response) -> (String, Option<reqwest::Error>) {
    let mut response = response;
    let mut text = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => text.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8(text).unwrap(), None),
            Err(err) => return (String::from_utf8(text).unwrap(), Some(err)),
        }
    }
}

#[tokio::test]
async fn status_fault_sends_retry_headers_and_protocol_bodies() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::Status {
        status: 429,
        body: None,
        retry_after: Some("2".into()),
        retry_after_ms: Some("1500".into()),
    });
    let response = post(&sim, CHAT, &chat("m", false)).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["retry-after-ms"], "1500");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    sim.push_fault(status(529));
    let (code, body) = post_json(&sim, MESSAGES, &message(false)).await;
    assert_eq!(code, 529);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");

    sim.push_fault(Fault::Status {
        status: 502,
        body: Some("<html>bad gateway</html>".into()),
        retry_after: None,
        retry_after_ms: None,
    });
    let response = post(&sim, CHAT, &chat("m", false)).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "<html>bad gateway</html>");

    // Faults are one-shot.
    assert_eq!(post_json(&sim, CHAT, &chat("m", false)).await.0, 200);
}

#[tokio::test]
async fn faults_queue_in_order_and_by_model() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault_for_model("b", status(503));
    sim.push_fault(status(500));
    sim.push_fault(status(501));
    assert_eq!(post_json(&sim, CHAT, &chat("b", false)).await.0, 503);
    assert_eq!(post_json(&sim, CHAT, &chat("a", false)).await.0, 500);
    assert_eq!(post_json(&sim, CHAT, &chat("b", false)).await.0, 501);
    assert_eq!(post_json(&sim, CHAT, &chat("b", false)).await.0, 200);
    assert_eq!(sim.request_count(), 4);
}

#[tokio::test]
async fn provider_errors_have_real_shapes() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::ContextLengthExceeded);
    let (code, body) = post_json(&sim, CHAT, &chat("m", true)).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    sim.push_fault(Fault::ContextLengthExceeded);
    let (code, body) = post_json(&sim, MESSAGES, &message(false)).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("prompt is too long: "));

    sim.push_fault(Fault::ContentPolicy);
    let (code, body) = post_json(&sim, CHAT, &chat("m", false)).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["code"], "content_policy_violation");

    sim.push_fault(Fault::ContentPolicy);
    let (code, body) = post_json(&sim, MESSAGES, &message(false)).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["error"]["message"],
        "Output blocked by content filtering policy"
    );
}

#[tokio::test]
async fn delay_headers_delays_then_answers() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::DelayHeaders(Duration::from_millis(300)));
    let started = Instant::now();
    let (code, _) = post_json(&sim, CHAT, &chat("m", false)).await;
    assert_eq!(code, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn reset_before_headers_is_a_connection_error() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::ResetBeforeHeaders);
    let err = post(&sim, CHAT, &chat("m", false))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none());
    // SO_LINGER 0 makes the close a TCP reset, which the client sees as ECONNRESET.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut reset = false;
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            reset |= io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        source = e.source();
    }
    assert!(reset, "{err:?}");
    // The server itself carries on.
    assert_eq!(post_json(&sim, CHAT, &chat("m", false)).await.0, 200);
}

#[tokio::test]
async fn never_answer_times_the_client_out() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::NeverAnswer);
    let client = client_with_timeout(Duration::from_millis(300));
    let err = crate::common::post_with(&client, &sim, CHAT, &chat("m", false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_first_token_sends_headers_first() {
    let sim = SimUpstream::start().await.unwrap();
    let delay = Duration::from_millis(800);
    sim.push_fault(Fault::SlowFirstToken(delay));
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_millis(600),
        post(&sim, CHAT, &chat("m", true)).send(),
    )
    .await
    .expect("headers arrive before the first token")
    .unwrap();
    assert_eq!(response.status(), 200);
    let (text, err) = read_until_end(response).await;
    assert!(err.is_none());
    assert!(started.elapsed() >= delay);
    assert_eq!(parse_sse(&text).last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn word_delay_paces_the_stream() {
    let options = SimOptions {
        word_delay: Duration::from_millis(10),
        ..SimOptions::default()
    };
    let sim = SimUpstream::start_with(options).await.unwrap();
    let started = Instant::now();
    let events = post_stream(&sim, CHAT, &chat("m", true)).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert!(
        started.elapsed() >= Duration::from_millis(240),
        "24 words x 10 ms"
    );
}

#[tokio::test]
async fn cut_stream_aborts_before_the_terminator() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::CutStream { after_events: 3 });
    let response = post(&sim, CHAT, &chat("m", true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (text, err) = read_until_end(response).await;
    let err = err.expect("the body must fail, not end cleanly");
    assert!(err.is_body() || err.is_decode(), "{err:?}");
    assert!(!err.is_timeout());
    let events = parse_sse(&text);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.data != "[DONE]"));

    // Anthropic: cut far past the end still never reaches message_stop.
    sim.push_fault(Fault::CutStream { after_events: 1000 });
    let response = post(&sim, MESSAGES, &message(true)).send().await.unwrap();
    let (text, err) = read_until_end(response).await;
    assert!(err.is_some());
    let events = parse_sse(&text);
    assert_eq!(
        events.last().unwrap().name.as_deref(),
        Some("message_delta")
    );

    // Non-stream: half a body, then an abort.
    sim.push_fault(Fault::CutStream { after_events: 0 });
    let response = post(&sim, CHAT, &chat("m", false)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (text, err) = read_until_end(response).await;
    assert!(err.is_some());
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn stall_stream_goes_silent_with_the_connection_open() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::StallStream { after_events: 2 });
    let mut response = post(&sim, CHAT, &chat("m", true)).send().await.unwrap();
    let mut text = String::new();
    while parse_sse(&text).len() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(1), response.chunk())
            .await
            .expect("the first events arrive")
            .unwrap()
            .expect("the body is still open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(parse_sse(&text).len(), 2);
    let next = tokio::time::timeout(Duration::from_millis(300), response.chunk()).await;
    assert!(next.is_err(), "no more data: {next:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_chunk_is_injected_and_the_stream_continues() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::MalformedChunk { after_events: 2 });
    let events = post_stream(&sim, CHAT, &chat("m", true)).await;
    assert_eq!(events[2].data, "{not json");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert!(serde_json::from_str::<Value>(&events[3].data).is_ok());

    sim.push_fault(Fault::MalformedChunk { after_events: 4 });
    let events = post_stream(&sim, MESSAGES, &message(true)).await;
    assert_eq!(events[4].data, "{not json");
    assert_eq!(events[4].name.as_deref(), Some("content_block_delta"));
    assert_eq!(events.last().unwrap().name.as_deref(), Some("message_stop"));
}

#[tokio::test]
async fn no_done_ends_cleanly_without_the_terminator() {
    let sim = SimUpstream::start().await.unwrap();
    sim.push_fault(Fault::NoDone);
    let response = post(&sim, CHAT, &chat("m", true)).send().await.unwrap();
    let (text, err) = read_until_end(response).await;
    assert!(err.is_none(), "clean end");
    let events = parse_sse(&text);
    assert!(events.iter().all(|e| e.data != "[DONE]"));
    assert_eq!(
        events.last().unwrap().json()["choices"][0]["finish_reason"],
        "stop"
    );

    sim.push_fault(Fault::NoDone);
    let events = post_stream(&sim, MESSAGES, &message(true)).await;
    assert_eq!(
        events.last().unwrap().name.as_deref(),
        Some("message_delta")
    );

    sim.push_fault(Fault::NoDone);
    let body = json!({"model": "m", "input": "x", "stream": true});
    let events = post_stream(&sim, "/v1/responses", &body).await;
    assert_eq!(
        events.last().unwrap().name.as_deref(),
        Some("response.output_item.done")
    );
}

#[tokio::test]
async fn http2_clients_are_served_and_cut_too() {
    let sim = SimUpstream::start().await.unwrap();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let response = crate::common::post_with(&client, &sim, CHAT, &chat("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let (text, err) = read_until_end(response).await;
    assert!(err.is_none());
    assert_eq!(parse_sse(&text).last().unwrap().data, "[DONE]");

    sim.push_fault(Fault::CutStream { after_events: 2 });
    let response = crate::common::post_with(&client, &sim, CHAT, &chat("m", true))
        .send()
        .await
        .unwrap();
    let (text, err) = read_until_end(response).await;
    assert!(err.is_some());
    assert_eq!(parse_sse(&text).len(), 2);
}
