//! moat's admin plane: managing virtual keys live.
//!
//! [`KeyService`] holds the logic once (create, list, rotate with a grace window, revoke), over
//! an `Arc<dyn KeyStore>`, an injected clock and an on-change hook that lets the gateway's auth
//! cache forget a key at once. [`keys`] holds the admin API's HTTP handlers over it, generic over
//! [`KeyAdminState`]; the gateway registers them behind its role guard, which hands each handler
//! the [`Caller`]. The CLI uses the same service.

mod caller;
mod duration;
pub mod keys;
mod service;
mod view;

pub use caller::Caller;
pub use duration::{parse_duration_value, DurationError};
pub use keys::KeyAdminState;
pub use service::{IssuedKey, KeyError, KeyService, NewKey, DEFAULT_GRACE, MAX_GRACE};
pub use view::{KeyState, KeyView};
