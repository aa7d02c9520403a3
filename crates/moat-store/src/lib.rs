//! Store traits, one per concern, and their backends.
//!
//! The rest of moat sees only `Arc<dyn KeyStore>` (and, as the later planes land, `AuditSink`,
//! `CounterStore`, `EventSink`); which backend runs is decided once, at start-up. Every backend passes
//! the same [`conformance`] suite.

pub mod conformance;
mod memory;
mod migrations;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use moat_policy::KeyRecord;

/// A store failure. Whose fault it is: always the server's, so it maps to 500/503 for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A stored row could not be read back (corrupt or hand-edited).
    #[error("corrupt row for key {id}: {reason}")]
    Corrupt {
        /// Key id of the row.
        id: String,
        /// What was wrong.
        reason: String,
    },
    /// A key with this id exists already.
    #[error("key id {0} already exists")]
    Duplicate(String),
    /// The database schema is newer than this binary.
    #[error("database schema version {found} is newer than this moat supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this binary knows.
        supported: i64,
    },
    /// The blocking worker died (a bug, not an input).
    #[error("store worker failed: {0}")]
    Worker(String),
}

/// Where virtual keys live. Keys are stored only as hashes.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key; fails with [`StoreError::Duplicate`] if the id exists.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// The key with this public id.
    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Every key, oldest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Marks a key revoked at `at` (Unix seconds). False if there is no such key; revoking twice keeps
    /// the first time.
    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool, StoreError>;
    /// Whether the store can serve (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}
