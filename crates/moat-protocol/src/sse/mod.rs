//! Server-Sent Events: an incremental, bounded decoder and the encoders moat writes frames with.

mod decoder;
mod encode;

pub use decoder::{SseDecoder, DEFAULT_MAX_EVENT_SIZE};
pub use encode::{encode_data, encode_event, DONE, KEEP_ALIVE};

use bytes::Bytes;

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event had a non-empty one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The exact bytes of the event as received, including its terminating blank line (empty
    /// when the stream ended without one).
    pub raw: Bytes,
}

impl SseEvent {
    /// Whether this is OpenAI's end-of-stream marker `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.trim() == "[DONE]"
    }

    /// Whether the data is JSON (or `[DONE]`, or empty), as every event of both protocols'
    /// streams is: a relay forwarding events raw checks this, without building a tree, so a broken
    /// event never reaches a client whose SDK would fail to parse it.
    pub fn is_json_or_done(&self) -> bool {
        self.is_done()
            || self.data.is_empty()
            || serde_json::from_str::<serde::de::IgnoredAny>(&self.data).is_ok()
    }
}

/// Why the decoder could not produce an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event grew beyond the configured limit; its bytes were discarded up to the next blank
    /// line and decoding continues after it.
    #[error("SSE event exceeds the limit of {limit} bytes")]
    EventTooLarge {
        /// The configured maximum event size in bytes.
        limit: usize,
    },
}
