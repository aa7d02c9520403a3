//! moat's distillation detector.
//!
//! Pure: no I/O, no clock (time comes from the events), the same code online in the gateway and
//! offline over a recorded trace. Three layers:
//! - [`features`]: per-request features from a parsed request, in microseconds;
//! - [`Detector`]: per-account and per-end-user state in bounded memory (counters, top-k
//!   sketches, rings), scored as a CUSUM of per-request evidence, plus cross-account links
//!   (shared templates, networks, sign-up bursts) that join flagged accounts into clusters;
//! - [`Verdict`]: score, first-flag time and request count, reasons in words, evidence.

pub mod account;
pub mod board;
mod config;
mod detector;
pub mod end_users;
pub mod features;
pub mod lexicon;
pub mod links;
mod reason;
pub mod text;
pub mod trace;
mod verdict;

pub use config::{DetectorConfig, Weights};
pub use detector::{network, Detector, Event, Observed};
pub use end_users::{end_user_id, Capacity};
pub use features::{Category, Extractor, RequestFeatures};
pub use reason::Reason;
pub use verdict::{Counts, Evidence, Verdict};
