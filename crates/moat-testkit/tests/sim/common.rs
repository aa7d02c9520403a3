//! Helpers shared by the integration tests: an HTTP client, request shortcuts and an SSE parser.

use std::time::Duration;

use moat_testkit::SimUpstream;
use serde_json::Value;

/// Upper bound for any single request in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A client without connection reuse, so one test's faults never leak into its next request.
pub fn client() -> reqwest::Client {
    client_with_timeout(TIMEOUT)
}

pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// A POST of `body` to `path`, with `anthropic-version` on Anthropic paths.
pub fn post(sim: &SimUpstream, path: &str, body: &Value) -> reqwest::RequestBuilder {
    post_with(&client(), sim, path, body)
}

pub fn post_with(
    client: &reqwest::Client,
    sim: &SimUpstream,
    path: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    let request = client
        .post(format!("http://{}{path}", sim.addr()))
        .json(body);
    if path.starts_with("/v1/messages") {
        request.header("anthropic-version", "2023-06-01")
    } else {
        request
    }
}

/// POSTs and returns (status, JSON body).
pub async fn post_json(sim: &SimUpstream, path: &str, body: &Value) -> (u16, Value) {
    let response = post(sim, path, body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// POSTs a streaming request and returns the parsed events, checking the content type.
/// `body` sent with `stream: true`; the data of each event as JSON.
pub async fn stream_json(sim: &SimUpstream, path: &str, body: &Value) -> Vec<Value> {
    let mut body = body.clone();
    body["stream"] = serde_json::json!(true);
    post_stream(sim, path, &body)
        .await
        .iter()
        .map(|e| e.json())
        .collect()
}

pub async fn post_stream(sim: &SimUpstream, path: &str, body: &Value) -> Vec<Event> {
    let response = post(sim, path, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    parse_sse(&response.text().await.unwrap())
}

/// One server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// A small SSE parser: `event:` and `data:` fields, comments skipped, a blank line dispatches.
/// Panics on a trailing event without its blank line, which only a broken stream has.
pub fn parse_sse(text: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut name = None;
    let mut data: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(data) = data.take() {
                events.push(Event {
                    name: name.take(),
                    data,
                });
            }
            name = None;
        } else if line.starts_with(':') {
            continue;
        } else {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "event" => name = Some(value),
                "data" => {
                    data = Some(match data.take() {
                        Some(previous) => format!("{previous}\n{value}"),
                        None => value,
                    })
                }
                _ => {}
            }
        }
    }
    assert!(data.is_none(), "stream ended inside an event: {text:?}");
    events
}

/// Number of whitespace-separated words.
pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[test]
fn sse_parser_handles_names_comments_and_multiline_data() {
    let events = parse_sse(": keep-alive\n\nevent: a\ndata: 1\n\ndata: x\ndata: y\n\n");
    assert_eq!(
        events,
        vec![
            Event {
                name: Some("a".into()),
                data: "1".into()
            },
            Event {
                name: None,
                data: "x\ny".into()
            },
        ]
    );
}
