//! Policy decisions that need no I/O: who a virtual key is and what it may do.
//!
//! Later planes (limits, budgets, routing rules) land here as modules of their own; the proxy calls them
//! in pipeline order and turns their errors into protocol-shaped responses.

pub mod keys;
pub mod scope;

pub use keys::{generate_key, hash_key, parse_key, GeneratedKey, KeyHash, KeyRecord, KEY_PREFIX};
pub use scope::{authorize, may_use_model, ScopeError};
