//! Store traits, one per concern, and their backends.
//!
//! The rest of moat sees only `Arc<dyn KeyStore>`, `Arc<dyn SpendStore>`, `Arc<dyn WorkflowStore>`,
//! `Arc<dyn AuditStore>` and `Arc<dyn AdminKeyStore>` (and, as the later planes land, `CounterStore`, `EventSink`); which backend runs is decided once, at
//! start-up. Every backend passes the same [`conformance`] suite.

mod admin_keys;
mod audit;
pub mod conformance;
mod key_cache;
mod memory;
mod migrations;
mod sqlite;

pub use admin_keys::{
    generate_admin_key, parse_admin_key, AdminKeyRecord, AdminKeyStore, AdminRole,
    GeneratedAdminKey, ADMIN_KEY_PREFIX,
};
pub use audit::{
    check_batch, check_checkpoint, without_bodies, AuditBounds, AuditPage, AuditQuery, AuditStore,
    AuditTail, ChainBreak, PageBudget, StoredAudit, StoredCheckpoint,
};
pub use key_cache::KeyCache;
pub use memory::MemoryStore;
pub use sqlite::{ServeLock, SqliteStore, LOOKUP_READERS, QUERY_READERS};

use async_trait::async_trait;
use moat_policy::{KeyHash, KeyRecord};

pub use moat_config::WorkflowSpec;
pub use moat_policy::budget::SpendRow;

/// A store failure. Whose fault it is: always the server's, so it maps to 500/503 for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A database server behind another backend (PostgreSQL, later Redis) failed or could not be
    /// reached. The source is the driver's own error, boxed so this crate depends on no driver.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored row could not be read back (corrupt or hand-edited).
    #[error("corrupt row for {id}: {reason}")]
    Corrupt {
        /// Which row: `key <id>` or `spend <scope> <id>`.
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
    /// An audit write was refused because it would break the hash chain; nothing was written.
    #[error("audit chain: {0}")]
    AuditChain(#[from] ChainBreak),
    /// The blocking worker died (a bug, not an input).
    #[error("store worker failed: {0}")]
    Worker(String),
    /// Another process serves from this store: its serving lock (this path) is held.
    #[error("the store is in use by another moat serve (lock {} is held); stop it first, or give this gateway a store of its own", .0.display())]
    Locked(std::path::PathBuf),
    /// The store cannot be written (a read-only file or file system).
    #[error("the store is read-only: moat serve must be able to write its audit log and keys")]
    ReadOnly,
    /// A file operation around the database failed (its lock file).
    #[error("{0}")]
    Io(String),
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
    /// Gives the key `id` the new secret hash `new_hash`, keeping its current one as
    /// [`PreviousSecret`](moat_policy::PreviousSecret) accepted until `grace_until` (Unix seconds,
    /// exclusive). A previous secret from an earlier rotation is dropped: only the secret just
    /// before the new one keeps working. False if there is no such key or it is revoked.
    async fn rotate_key(
        &self,
        id: &str,
        new_hash: &KeyHash,
        grace_until: i64,
    ) -> Result<bool, StoreError>;
    /// Whether the store can serve (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Where settled budget spend survives a restart: one running total per principal and calendar
/// window, as the in-memory ledger counts it (`moat_policy::budget::Ledger::spent`).
///
/// A row's `spent` is the window's whole settled spend, not an increment, so saving the same rows
/// again changes nothing. One gateway owns the rows it saves: two gateways saving into one store
/// would overwrite each other's totals (a shared counter is `LimitStore`'s job, later).
#[async_trait]
pub trait SpendStore: Send + Sync {
    /// Upserts every row by (scope, id, period, window start): the stored spend becomes the row's.
    /// All rows or none.
    async fn save_spend(&self, rows: &[SpendRow]) -> Result<(), StoreError>;
    /// Every row whose window starts at or after `since_ms` (Unix milliseconds), in no particular
    /// order. The caller passes the start of the oldest window that can still be current.
    async fn load_spend(&self, since_ms: i64) -> Result<Vec<SpendRow>, StoreError>;
    /// Deletes every row whose window starts before `before_ms`; returns how many went.
    async fn prune_spend(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// Workflows registered at run time (`moat workflows add`, `PUT /admin/v1/workflows/{name}`),
/// kept as their JSON spec. Workflows declared in the config file are not stored here.
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// Stores `spec` under its name, replacing any earlier one.
    async fn put_workflow(&self, spec: &WorkflowSpec, at: i64) -> Result<(), StoreError>;
    /// Removes the workflow called `name`; false if there was none.
    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError>;
    /// Every stored workflow, by name.
    async fn list_workflows(&self) -> Result<Vec<WorkflowSpec>, StoreError>;
}
