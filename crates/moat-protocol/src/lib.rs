//! OpenAI and Anthropic wire formats for moat: SSE codec, error bodies, usage accounting and
//! translation between OpenAI Chat Completions and Anthropic Messages, and a read-only view of a
//! chat request (`view`) for filters and the detector.
//!
//! The crate is pure: no I/O, no async, no clock. Bodies are `serde_json::Value` objects so that
//! fields moat does not know survive wherever both sides speak the same protocol.

pub mod embeddings;
pub mod errors;
pub mod json_error;
pub mod sse;
pub mod translate;
pub mod usage;
pub mod view;

pub use sse::{SseDecoder, SseError, SseEvent};
pub use translate::TranslateError;
pub use usage::{AnswerKind, StreamKind, Usage, UsageObserver};
pub use view::{Params, RequestView, Role, Turn, ViewApi, ViewError};
