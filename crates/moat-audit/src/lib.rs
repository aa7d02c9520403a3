//! moat's audit evidence (issue 5): the record format, the hash chain, its verification, signed
//! checkpoints for retention and witnessed heads, and redaction of personal data and secrets. Pure: no I/O, time
//! injected (every timestamp is an argument).
//!
//! - [`record`]: [`AuditRecord`], one per request answered (allowed or refused), per read of
//!   audit bodies and per incident (breaker transitions, objective violations); [`Body`] keeps a body in full, as a digest, or not at all.
//! - [`chain`]: how a record's hash is computed; [`Chain`] seals records in order.
//! - [`verify()`]: streams a log and names the first record edited, deleted, inserted or moved.
//! - [`checkpoint`]: [`Checkpoint`], signed, stands in for the records retention dropped;
//!   [`SignedHead`], the chain's head as a witness outside the store keeps it.
//! - [`keys`]: [`AuditKeys`], the store's Ed25519 audit key and the digest and pseudonym keys
//!   derived from it.
//! - [`export`]: the JSON Lines export, a superset of the detector's trace format.
//! - [`raw`]: a stored record's fields as raw JSON text, and how deeply a value nests.
//! - [`redact`](mod@redact): e-mail addresses, phone numbers, card numbers, secrets and IP addresses out of
//!   text and JSON bodies, for the `auditor` role.

mod body;
pub mod chain;
pub mod checkpoint;
pub mod clip;
pub mod export;
mod hex;
pub mod keys;
pub mod raw;
pub mod record;
pub mod redact;
pub mod verify;

pub use body::Body;
pub use chain::{Chain, GENESIS};
pub use checkpoint::{Checkpoint, SignedHead};
pub use clip::{clip, clip_owned, MAX_CLIENT_STRING};
pub use export::Export;
pub use keys::{parse_public_key, AuditKeys, KeyError, VerifyingKey};
pub use record::{
    AuditRecord, Circuit, Decision, Incident, ReadInfo, RecordKind, Route, SeqRange, Timings, Usage,
};
pub use redact::{redact, redact_json, redact_json_text, redact_sse, Finding, Kind};
pub use verify::{
    verify, verify_fallible, verify_witnessed, Anchor, Broken, BrokenReason, Head, Report,
};
