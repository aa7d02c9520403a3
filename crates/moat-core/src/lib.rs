//! Shared vocabulary of moat: the wire protocols, an injected clock, money in micro-units and secrets.
//!
//! Every other crate depends on this one; it depends on nothing.

mod clock;
mod money;
mod secret;

pub use clock::{Clock, ManualClock, SystemClock};
pub use money::Money;
pub use secret::Secret;

/// The wire protocol a client speaks to moat, or a provider speaks to moat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions, Responses, Embeddings and Models, and every OpenAI-compatible server.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl Protocol {
    /// The lower-case name used in config, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
