//! Integration tests of the simulated provider over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod anthropic;
mod auth;
mod chat;
mod common;
mod embeddings;
mod faults;
mod outage;
mod responses;
mod structured_anthropic;
mod structured_chat;
mod structured_responses;
mod validate;
