//! Policy decisions that need no I/O: who a virtual key is and what it may do, how much it may
//! call and spend, where its requests go and how failures are retried.
//!
//! The proxy calls these in pipeline order and turns their errors into protocol-shaped responses;
//! time always comes in as an argument (Unix milliseconds from the injected clock).

pub mod budget;
pub mod inflight;
pub mod keys;
pub mod limits;
pub mod price;
pub mod resilience;
pub mod routing;
pub mod scope;

pub use keys::{
    generate_key, generate_secret_for, hash_key, parse_key, GeneratedKey, KeyHash, KeyRecord,
    PreviousSecret, SecretMatch, KEY_PREFIX,
};
pub use scope::{authorize, may_use_model, ScopeError};
