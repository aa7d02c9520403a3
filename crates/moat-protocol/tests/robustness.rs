//! Robustness: every translation, parser and stream translator, fed random and mutated JSON or
//! bytes, returns `Ok` or `Err` and never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

use bytes::Bytes;
use moat_protocol::errors::{
    anthropic_error_to_openai, openai_error_to_anthropic, parse_error_body,
};
use moat_protocol::sse::SseDecoder;
use moat_protocol::translate::{
    anthropic_to_openai_chat_request, anthropic_to_openai_chat_request_with,
    anthropic_to_openai_chat_response, openai_chat_to_anthropic_request,
    openai_chat_to_anthropic_request_with, openai_chat_to_anthropic_response,
    AnthropicRequestOptions, AnthropicToOpenAiStream, MaxTokensField, OpenAiRequestOptions,
    OpenAiToAnthropicStream, ThinkingStyle,
};
use moat_protocol::{SseEvent, StreamKind, Usage, UsageObserver};
use serde_json::{json, Map, Value};

/// A small deterministic xorshift generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "type",
    "role",
    "content",
    "messages",
    "system",
    "text",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "index",
    "delta",
    "choices",
    "usage",
    "error",
    "message",
    "input",
    "partial_json",
    "content_block",
    "tool_use_id",
    "tool_call_id",
    "image_url",
    "url",
    "source",
    "tools",
    "tool_choice",
    "finish_reason",
    "stop_reason",
    "thinking",
    "reasoning_content",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "stream",
    "file",
    "file_data",
    "prompt_tokens",
    "input_tokens",
    "output_tokens",
    "budget_tokens",
    "reasoning_effort",
];

const WORDS: &[&str] = &[
    "text",
    "image",
    "image_url",
    "tool_use",
    "tool_result",
    "thinking",
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "auto",
    "any",
    "none",
    "required",
    "enabled",
    "adaptive",
    "high",
    "low",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "message_delta",
    "message_stop",
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "error",
    "[DONE]",
    "data:image/png;base64,AAAA",
    "https://x.test/a.png",
    "data:",
    "{\"a\":1}",
    "{",
    "",
    "stop",
    "length",
    "tool_calls",
    "end_turn",
    "é✓",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 5 } else { 7 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => match rng.below(4) {
            0 => json!(rng.below(5)),
            1 => json!(-(rng.below(1000) as i64)),
            2 => json!(u64::MAX),
            _ => json!(1.5e300),
        },
        3 | 4 => json!(rng.pick(WORDS)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(6) {
                map.insert(rng.pick(KEYS).to_owned(), random_value(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

/// Replaces one random node of `value` (or removes a key) with a random value.
fn mutate(rng: &mut Rng, value: &mut Value) {
    let descend = rng.below(4) != 0;
    match value {
        Value::Object(map) if descend && !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            if rng.below(8) == 0 {
                map.remove(&key);
            } else {
                mutate(rng, map.get_mut(&key).unwrap());
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let at = rng.below(items.len());
            mutate(rng, &mut items[at]);
        }
        _ => *value = random_value(rng, 3),
    }
}

fn translate_everything(value: &Value) {
    let _ = openai_chat_to_anthropic_request(value, "m");
    let adaptive = AnthropicRequestOptions {
        thinking: ThinkingStyle::Adaptive,
    };
    let _ = openai_chat_to_anthropic_request_with(value, "m", &adaptive);
    let _ = anthropic_to_openai_chat_request(value, "m");
    let completion = OpenAiRequestOptions {
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
    };
    let _ = anthropic_to_openai_chat_request_with(value, "m", &completion);
    let _ = anthropic_to_openai_chat_response(value, "m", 0, true);
    let _ = openai_chat_to_anthropic_response(value, "m");
    for status in [0, 200, 400, 401, 429, 500, 529, 999] {
        let _ = openai_error_to_anthropic(status, value);
        let _ = anthropic_error_to_openai(status, value);
    }
    let _ = Usage::from_openai_chat(value);
    let _ = Usage::from_anthropic(value);
    let _ = Usage::from_openai_responses(value);
    let _ = Usage::from_openai_embeddings(value);
}

fn event(name: Option<&str>, data: String) -> SseEvent {
    SseEvent {
        event: name.map(str::to_owned),
        data,
        raw: Bytes::new(),
    }
}

/// Feeds `events` to both stream translators and all observers.
fn stream_everything(events: &[SseEvent]) {
    let mut a2o = AnthropicToOpenAiStream::new("m", 0, true);
    let mut o2a = OpenAiToAnthropicStream::new("m");
    let mut observers = [
        (StreamKind::OpenAiChat, UsageObserver::new()),
        (StreamKind::OpenAiResponses, UsageObserver::new()),
        (StreamKind::Anthropic, UsageObserver::new()),
    ];
    for event in events {
        let _ = a2o.on_event(event);
        let _ = o2a.on_event(event);
        for (kind, observer) in &mut observers {
            observer.observe(*kind, event);
        }
    }
    let _ = (a2o.finish(), o2a.finish(), a2o.usage(), o2a.usage());
}

fn fixture_values() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut values = Vec::new();
    for dir in std::fs::read_dir(root).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                values.push(serde_json::from_str(&text).unwrap());
            }
        }
    }
    assert!(values.len() > 20);
    values
}

#[test]
fn random_values_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..8_000 {
        translate_everything(&random_value(&mut rng, 4));
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for fixture in fixture_values() {
        for _ in 0..120 {
            let mut value = fixture.clone();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut value);
            }
            translate_everything(&value);
        }
    }
}

#[test]
fn random_stream_events_never_panic() {
    let mut rng = Rng(0xA076_1D64_78BD_642F);
    for _ in 0..3_000 {
        let events: Vec<SseEvent> = (0..rng.below(12))
            .map(|_| {
                let data = match rng.below(6) {
                    0 => rng.pick(WORDS).to_owned(),
                    1 => json!({
                        "type": rng.pick(WORDS),
                        "index": random_value(&mut rng, 1),
                        "delta": random_value(&mut rng, 2),
                        "content_block": random_value(&mut rng, 2),
                        "message": random_value(&mut rng, 2),
                        "usage": random_value(&mut rng, 1),
                    })
                    .to_string(),
                    2 => json!({
                        "id": random_value(&mut rng, 0),
                        "choices": [{"delta": random_value(&mut rng, 3), "finish_reason": random_value(&mut rng, 0)}],
                        "usage": random_value(&mut rng, 2),
                    })
                    .to_string(),
                    3 => json!({"type": rng.pick(WORDS), "response": random_value(&mut rng, 3)}).to_string(),
                    _ => random_value(&mut rng, 3).to_string(),
                };
                let name = (rng.below(2) == 0).then(|| rng.pick(WORDS));
                event(name, data)
            })
            .collect();
        stream_everything(&events);
    }
}

fn fixture_streams() -> Vec<Vec<SseEvent>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut streams = Vec::new();
    for dir in ["stream_a2o", "stream_o2a"] {
        for file in std::fs::read_dir(root.join(dir)).unwrap() {
            let mut decoder = SseDecoder::new();
            decoder.push(&std::fs::read(file.unwrap().path()).unwrap());
            let mut events = Vec::new();
            while let Some(event) = decoder.next_event() {
                events.push(event.unwrap());
            }
            streams.push(events);
        }
    }
    streams
}

#[test]
fn mutated_recorded_streams_never_panic() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for events in fixture_streams() {
        for _ in 0..150 {
            let mut events = events.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(events.len());
                let mut data: Value = serde_json::from_str(&events[at].data).unwrap_or(Value::Null);
                mutate(&mut rng, &mut data);
                events[at].data = data.to_string();
            }
            stream_everything(&events);
        }
    }
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut rng = Rng(0xE703_7ED1_A0B4_28DB);
    let alphabet: &[u8] = b"data: event:\r\n\r\n\n\n::x{}\xFF\xEF\xBB\xBF";
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..rng.below(300))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let _ = parse_error_body(&bytes);
        let mut decoder = SseDecoder::with_max_event_size(1 + rng.below(64));
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(1 + rng.below(rest.len()));
            decoder.push(chunk);
            while decoder.next_event().is_some() {}
            rest = tail;
        }
        while decoder.finish().is_some() {}
    }
}
