//! Helpers the golden and robustness tests share: fixture files, SSE transcripts.
#![allow(dead_code)] // Each test binary uses a part.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use moat_protocol::sse::SseDecoder;
use moat_protocol::{SseEvent, Usage};
use serde_json::{json, Value};

/// `(name, path)` of every file in `tests/fixtures/<dir>`, sorted by name; the name is the file
/// stem with `.` replaced by `_`.
pub fn fixtures(dir: &str) -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {dir}");
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .replace('.', "_");
            (name, path)
        })
        .collect()
}

/// A JSON fixture.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// SSE bytes, fed in awkward 7-byte chunks, decoded into events.
pub fn decode(bytes: &[u8]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in bytes.chunks(7) {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            events.push(event.unwrap());
        }
    }
    while let Some(event) = decoder.finish() {
        events.push(event);
    }
    events
}

/// The events of a recorded transcript.
pub fn recorded_events(path: &Path) -> Vec<SseEvent> {
    decode(&std::fs::read(path).unwrap())
}

/// Client frames as text, followed by the usage the translator saw.
pub fn transcript(frames: &[Bytes], usage: Option<Usage>) -> String {
    let mut text: String = frames
        .iter()
        .map(|frame| std::str::from_utf8(frame).unwrap())
        .collect();
    text.push_str(&format!("--- usage seen: {}\n", json!(usage)));
    text
}
