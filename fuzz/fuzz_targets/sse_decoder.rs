//! The SSE decoder over arbitrary bytes: never panics, and the events do not depend on how the
//! bytes were split into chunks (the network splits them anywhere).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_protocol::{SseDecoder, SseError, SseEvent};

/// Decodes `data` fed in chunks of `chunk` bytes; a small event limit exercises the skip path.
fn decode(data: &[u8], chunk: usize) -> Vec<Result<SseEvent, SseError>> {
    let mut decoder = SseDecoder::with_max_event_size(64);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        decoder.push(piece);
        while let Some(event) = decoder.next_event() {
            out.push(event);
        }
    }
    while let Some(event) = decoder.finish() {
        out.push(Ok(event));
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&split, data)) = input.split_first() else {
        return;
    };
    let whole = decode(data, data.len());
    let pieces = decode(data, usize::from(split % 16) + 1);
    assert_eq!(whole, pieces, "events depend on chunk boundaries");
    for event in whole.iter().flatten() {
        // An event's raw bytes are a piece of the input.
        assert!(event.raw.len() <= data.len());
    }
});
