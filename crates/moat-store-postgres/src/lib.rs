//! PostgreSQL behind moat's store traits: [`PostgresStore`] implements `KeyStore`, `SpendStore`,
//! `WorkflowStore`, `AdminKeyStore` and `AuditStore` and passes the same
//! `moat_store::conformance` suite as the SQLite and memory backends. Audit writers take turns
//! under a table lock and check the chain under it, so two of them cannot fork the log.
//!
//! Everything lives in one schema (default `moat`, see [`Schema`]), created and migrated at open
//! ([`PostgresStore::open`]), so several stores (or tests) can share a database.
//!
//! # Why `tokio-postgres` with `deadpool-postgres`
//! - **Pool**: deadpool is a small, widely used async pool with wait, create and recycle
//!   timeouts, so a call while the server is away fails within [`PostgresOptions`]'s
//!   `connect_timeout` instead of hanging.
//! - **Reconnection**: a connection whose socket closed (server restart, terminated backend)
//!   is dropped when it returns to the pool and a fresh one is opened on demand; the call that
//!   met the closed connection gets an error, the next one succeeds. Nothing panics.
//! - **Prepared statements**: deadpool's per-connection statement cache (`prepare_cached`)
//!   parses each statement once per connection, without compile-time checks that would need a
//!   live database to build (sqlx's macros).
//! - **TLS later**: the pool is generic over tokio-postgres's `MakeTlsConnect`; adding
//!   `tokio-postgres-rustls` is a change in [`PostgresStore::open`] only. Today: `NoTls`.
//! - **Weight**: neither it nor its dependencies were in the lock file, and it adds far less than
//!   sqlx (no query macros, no other databases' drivers) to a 2-core build.

mod admin_keys;
mod audit;
mod error;
mod keys;
mod migrations;
mod rows;
mod schema;
mod spend;
mod store;
mod workflows;

pub use error::PostgresError;
pub use schema::Schema;
pub use store::{PostgresOptions, PostgresStore};
