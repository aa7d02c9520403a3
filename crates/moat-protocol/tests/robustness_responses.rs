//! Robustness of the Responses API translation: hostile requests, answers and stream events
//! (wrong types in every field, deep nesting, random mutations of the fixtures) give `Ok` or an
//! error, never a panic; a refused request always names its field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use bytes::Bytes;
use moat_protocol::sse::SseDecoder;
use moat_protocol::translate::{
    anthropic_to_responses_response, responses_to_anthropic_request_with, AnthropicRequestOptions,
    AnthropicToResponsesStream, ResponsesEcho, ThinkingStyle,
};
use moat_protocol::SseEvent;
use serde_json::{json, Value};
use support::{fixtures, read_json, recorded_events};

/// SplitMix64, so that failures reproduce.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % sides as u64) as usize
    }
}

/// Values of every JSON type, including the shapes the translation looks for.
fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(1.5e300),
        json!(""),
        json!("moat.v1."),
        json!("moat.v1.eyJ0eXBlIjoidGhpbmtpbmcifQ"),
        json!("data:image/png;base64,AAAA"),
        json!("data:"),
        json!("{\"a\":"),
        json!("reasoning.encrypted_content"),
        json!([]),
        json!([null]),
        json!({}),
        json!({"type": null}),
        json!({"type": "function", "name": 3}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_image"}]}),
        json!({"type": "reasoning", "encrypted_content": 5}),
        json!({"type": "function_call_output", "call_id": "c", "output": {"x": 1}}),
        json!([{"type": "input_text"}, {"type": "output_text", "text": 1}]),
    ]
}

/// A request using every feature, the base of the wrong-type substitutions.
fn full_request() -> Value {
    json!({
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "d"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": "https://x.test/a.png"},
                {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
            ]},
            {"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "moat.v1.eyJ0eXBlIjoicmVkYWN0ZWRfdGhpbmtpbmciLCJkYXRhIjoieCJ9"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "r"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}, {"type": "refusal", "refusal": "no"}]},
        ],
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": false,
        "max_output_tokens": 5000,
        "temperature": 0.5,
        "top_p": 0.9,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "include": ["reasoning.encrypted_content"],
        "user": "u",
        "safety_identifier": "s",
        "metadata": {"k": "v"},
        "store": false,
        "stream": true,
        "top_logprobs": 0,
    })
}

fn translate(request: &Value) {
    for thinking in [ThinkingStyle::Budget, ThinkingStyle::Adaptive] {
        let options = AnthropicRequestOptions { thinking };
        if let Err(error) = responses_to_anthropic_request_with(request, "claude", &options) {
            assert_eq!(error.status(), 400, "{request}");
            assert!(
                error.param().is_some() || !request.is_object(),
                "{error}: {request}"
            );
        }
    }
    let _ = ResponsesEcho::from_request(request);
}

fn answer(body: &Value, echo: &ResponsesEcho) {
    if let Err(error) = anthropic_to_responses_response(body, echo, "gpt-5", 0) {
        assert_eq!(error.status(), 502);
    }
}

/// Every JSON pointer of `value`, the root included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(
                    child,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

#[test]
fn wrong_types_in_every_field_are_errors_not_panics() {
    let base = full_request();
    translate(&base);
    let mut all = Vec::new();
    pointers(&base, String::new(), &mut all);
    for pointer in all.iter().filter(|p| !p.is_empty()) {
        for odd in odd_values() {
            let mut request = base.clone();
            *request.pointer_mut(pointer).unwrap() = odd;
            translate(&request);
        }
    }
    for odd in odd_values() {
        translate(&odd);
    }
}

#[test]
fn deep_nesting_is_an_error_or_passes_through_without_panic() {
    // Nearly as deep as serde_json parses (128 levels), in each place a value is read: deeper
    // than the 64 levels a schema may have.
    let deep: Value = serde_json::from_str(
        &(0..120).fold("{}".to_owned(), |inner, _| format!("{{\"items\":{inner}}}")),
    )
    .unwrap();
    let mut nested_list = json!("x");
    for _ in 0..120 {
        nested_list = json!([nested_list]);
    }
    for pointer in [
        "/input",
        "/input/1/content",
        "/input/4/output",
        "/tools/0/parameters",
        "/text/format/schema",
        "/reasoning",
        "/instructions",
        "/metadata",
    ] {
        for value in [&deep, &nested_list] {
            let mut request = full_request();
            *request.pointer_mut(pointer).unwrap() = value.clone();
            translate(&request);
        }
    }
    let answer_body = json!({"id": "msg", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": deep}],
        "stop_reason": nested_list, "usage": nested_list});
    answer(&answer_body, &ResponsesEcho::from_request(&full_request()));
}

fn fixture_values() -> Vec<Value> {
    let dirs = ["request_r2a", "request_r2a_invalid", "response_a2r"];
    let values: Vec<Value> = dirs
        .iter()
        .flat_map(|dir| fixtures(dir))
        .map(|(_, path)| read_json(&path))
        .collect();
    assert!(values.len() > 30);
    values
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut dice = Dice(0x5EED_0001);
    let odd = odd_values();
    for fixture in fixture_values() {
        let mut all = Vec::new();
        pointers(&fixture, String::new(), &mut all);
        for _ in 0..150 {
            let mut value = fixture.clone();
            for _ in 0..1 + dice.roll(3) {
                let pointer = &all[dice.roll(all.len())];
                if let Some(slot) = value.pointer_mut(pointer) {
                    *slot = odd[dice.roll(odd.len())].clone();
                }
            }
            translate(&value);
            let echo = ResponsesEcho::from_request(&value["request"]);
            answer(&value["answer"], &echo);
            answer(&value, &echo);
        }
    }
}

fn recorded_streams() -> Vec<Vec<SseEvent>> {
    fixtures("stream_a2r")
        .iter()
        .map(|(_, path)| recorded_events(path))
        .collect()
}

fn replay(events: &[SseEvent], echo: &ResponsesEcho) {
    let mut stream = AnthropicToResponsesStream::new(echo.clone(), "gpt-5", 0);
    let mut frames = Vec::new();
    for event in events {
        if let Ok(more) = stream.on_event(event) {
            frames.extend(more);
        }
    }
    frames.extend(stream.finish());
    // Whatever happened, the client's stream is valid SSE that ends in a terminal event.
    let mut decoder = SseDecoder::new();
    decoder.push(&frames.concat());
    let mut last = None;
    while let Some(event) = decoder.next_event() {
        last = event.unwrap().event;
    }
    let last = last.unwrap_or_default();
    assert!(
        matches!(
            last.as_str(),
            "response.completed" | "response.incomplete" | "response.failed"
        ),
        "{last}"
    );
}

#[test]
fn mutated_and_shuffled_streams_never_panic_and_always_end() {
    let mut dice = Dice(0x5EED_0002);
    let odd = odd_values();
    let echoes = [
        ResponsesEcho::from_request(&json!({})),
        ResponsesEcho::from_request(&full_request()),
    ];
    for events in recorded_streams() {
        for round in 0..200 {
            let mut events = events.clone();
            for _ in 0..1 + dice.roll(3) {
                let at = dice.roll(events.len());
                match dice.roll(4) {
                    0 => {
                        let other = dice.roll(events.len());
                        events.swap(at, other);
                    }
                    1 => {
                        events.remove(at);
                        if events.is_empty() {
                            break;
                        }
                    }
                    _ => {
                        let mut data: Value =
                            serde_json::from_str(&events[at].data).unwrap_or(Value::Null);
                        let mut all = Vec::new();
                        pointers(&data, String::new(), &mut all);
                        let pointer = &all[dice.roll(all.len())];
                        if let Some(slot) = data.pointer_mut(pointer) {
                            *slot = odd[dice.roll(odd.len())].clone();
                        }
                        events[at] = SseEvent {
                            event: events[at].event.clone(),
                            data: data.to_string(),
                            raw: Bytes::new(),
                        };
                    }
                }
            }
            replay(&events, &echoes[round % 2]);
        }
    }
}

#[test]
fn random_event_payloads_never_panic() {
    let mut dice = Dice(0x5EED_0003);
    let odd = odd_values();
    let kinds = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "error",
        "ping",
    ];
    let blocks = [
        "text",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "server_tool_use",
    ];
    let deltas = [
        "text_delta",
        "thinking_delta",
        "signature_delta",
        "input_json_delta",
    ];
    for _ in 0..3_000 {
        let count = dice.roll(14);
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            let mut pick = || odd[dice.roll(odd.len())].clone();
            let (id, usage, input, text, data) = (pick(), pick(), pick(), pick(), pick());
            let (partial, signature, stop, error, odd_index) =
                (pick(), pick(), pick(), pick(), pick());
            let index = vec![json!(0), json!(1), odd_index].swap_remove(dice.roll(3));
            let payload = json!({
                "type": kinds[dice.roll(kinds.len())],
                "index": index,
                "message": {"id": id, "usage": usage},
                "content_block": {"type": blocks[dice.roll(blocks.len())], "id": "toolu_1", "name": "f", "input": input, "text": text, "data": data},
                "delta": {"type": deltas[dice.roll(deltas.len())], "text": "a", "thinking": "b", "partial_json": partial, "signature": signature, "stop_reason": stop},
                "usage": {"output_tokens": 3},
                "error": error,
            });
            events.push(SseEvent {
                event: None,
                data: if dice.roll(10) == 0 {
                    "not json".into()
                } else {
                    payload.to_string()
                },
                raw: Bytes::new(),
            });
        }
        replay(&events, &ResponsesEcho::from_request(&full_request()));
    }
}
