//! Building blocks for failing over between targets: how long to back off before a retry
//! ([`Backoff`], [`retry_after_ms`]), whether a retry may happen at all ([`RetryBudget`]) and
//! whether a target should get requests ([`Breaker`]).
//!
//! All are pure and cheap enough for every request: no I/O, no clock (callers pass `now_ms`, Unix
//! milliseconds), randomness through a caller's `Rng`, no allocation per call, and the shared
//! ones are `Send + Sync`.

mod backoff;
mod breaker;
mod budget;

pub use backoff::{retry_after_ms, Backoff};
pub use breaker::{Breaker, BreakerConfig, BreakerState, Open, Permit, Transition};
pub use budget::RetryBudget;
