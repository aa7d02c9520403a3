//! Stream translation (Anthropic -> chat and Responses, chat -> Anthropic) over arbitrary upstream bytes, decoded as the relay decodes
//! them: never panics, and every frame sent to the client is whole SSE whose data is JSON (or
//! OpenAI's `[DONE]`).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moat_protocol::translate::{
    AnthropicToOpenAiStream, AnthropicToResponsesStream, OpenAiToAnthropicStream, ResponsesEcho,
};
use moat_protocol::SseDecoder;

fn check_frames(frames: &[Bytes]) {
    let mut decoder = SseDecoder::new();
    for frame in frames {
        assert!(
            frame.ends_with(b"\n\n"),
            "frame without its blank line: {frame:?}"
        );
        decoder.push(frame);
        while let Some(event) = decoder.next_event() {
            let event = event.unwrap_or_else(|e| panic!("{e}"));
            if event.data != "[DONE]" {
                let parsed = serde_json::from_str::<serde_json::Value>(&event.data);
                assert!(parsed.is_ok(), "data is not JSON: {:?}", event.data);
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let mut decoder = SseDecoder::with_max_event_size(1 << 16);
    decoder.push(input);
    let mut events = Vec::new();
    while let Some(event) = decoder.next_event() {
        if let Ok(event) = event {
            events.push(event);
        }
    }
    events.extend(std::iter::from_fn(|| decoder.finish()));

    let structured = input.first().is_some_and(|b| b % 2 == 1);
    let mut a2o =
        AnthropicToOpenAiStream::new("client-model", 0, true).structured_output(structured);
    let mut o2a = OpenAiToAnthropicStream::new("client-model");
    let echo = ResponsesEcho::from_request(&serde_json::json!({
        "text": {"format": {"type": if structured { "json_object" } else { "text" }}},
        "include": ["reasoning.encrypted_content"],
    }));
    let mut a2r = AnthropicToResponsesStream::new(echo, "client-model", 0);
    for event in &events {
        if let Ok(frames) = a2o.on_event(event) {
            check_frames(&frames);
        }
        if let Ok(frames) = o2a.on_event(event) {
            check_frames(&frames);
        }
        if let Ok(frames) = a2r.on_event(event) {
            check_frames(&frames);
        }
    }
    check_frames(&a2o.finish());
    check_frames(&o2a.finish());
    check_frames(&a2r.finish());
    check_frames(&a2o.fail("upstream broke"));
    check_frames(&o2a.fail("upstream broke"));
    check_frames(&a2r.fail("upstream broke"));
});
