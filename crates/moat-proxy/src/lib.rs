//! moat's data plane: the HTTP server, the request pipeline, the upstream client and the stream relay.
//!
//! `pipeline.rs` holds the request path in order; everything else is a stage it calls or the
//! plumbing around it.

mod admin;
pub mod audit;
mod auth;
mod body;
mod detection;
mod error;
mod failover;
mod filter;
mod forward;
mod forwarded;
pub mod governance;
mod models;
pub mod objectives;
mod pipeline;
mod relay;
mod routing;
mod server;
mod spend;
mod state;
mod telemetry;
mod upstream;
mod workflows;

pub use detection::{detector_config, Action, Detection, QueryError, Row};
pub use error::GatewayError;
pub use pipeline::Endpoint;
pub use server::{router, serve, Gateway};
pub use spend::SPEND_SAVE_INTERVAL;
pub use state::{AppState, StateError};
pub use telemetry::{init_logging, prometheus, LogGuard};
pub use workflows::WORKFLOW_REFRESH_INTERVAL;
