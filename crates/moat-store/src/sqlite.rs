//! The embedded default store: one SQLite file in WAL mode.

use crate::migrations::MIGRATIONS;
use crate::{KeyStore, StoreError};
use async_trait::async_trait;
use moat_policy::{KeyHash, KeyRecord};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A SQLite database file. Calls run on tokio's blocking pool, one at a time per store; the proxy
/// caches keys, so this is off the hot path.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        // WAL lets the CLI (`moat keys ...`) write while a running gateway reads; the busy timeout
        // makes the two wait for each other instead of failing.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Worker("sqlite lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

/// Applies every migration past the file's `user_version`, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

const KEY_COLUMNS: &str =
    "id, hash, account, workflow, models, cidrs, created_at, expires_at, revoked_at";

fn key_from_row(row: &rusqlite::Row<'_>) -> Result<KeyRecord, StoreError> {
    let id: String = row.get(0)?;
    let corrupt = |reason: &str| StoreError::Corrupt {
        id: id.clone(),
        reason: reason.to_string(),
    };
    let hash_hex: String = row.get(1)?;
    let hash = KeyHash::from_hex(&hash_hex).ok_or_else(|| corrupt("hash is not 64 hex digits"))?;
    let models: String = row.get(4)?;
    let models: Vec<String> =
        serde_json::from_str(&models).map_err(|_| corrupt("models is not a JSON list"))?;
    let cidrs: String = row.get(5)?;
    let cidrs: Vec<String> =
        serde_json::from_str(&cidrs).map_err(|_| corrupt("cidrs is not a JSON list"))?;
    let cidrs = cidrs
        .iter()
        .map(|c| c.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| corrupt("cidrs holds an invalid network"))?;
    Ok(KeyRecord {
        hash,
        account: row.get(2)?,
        workflow: row.get(3)?,
        models,
        cidrs,
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        revoked_at: row.get(8)?,
        id,
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.with_conn(move |conn| {
            let cidrs: Vec<String> = key.cidrs.iter().map(ToString::to_string).collect();
            let inserted = conn.execute(
                "INSERT INTO keys (id, hash, account, workflow, models, cidrs, created_at, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(id) DO NOTHING",
                params![
                    key.id,
                    key.hash.to_hex(),
                    key.account,
                    key.workflow,
                    serde_json::Value::from(key.models.clone()).to_string(),
                    serde_json::Value::from(cidrs).to_string(),
                    key.created_at,
                    key.expires_at,
                    key.revoked_at,
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Duplicate(key.id));
            }
            Ok(())
        })
        .await
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = ?1"))?;
            let row = stmt
                .query_row([&id], |row| Ok(key_from_row(row)))
                .optional()?;
            row.transpose()
        })
        .await
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([], |row| Ok(key_from_row(row)))?;
            rows.map(|r| r.map_err(StoreError::from).and_then(|k| k))
                .collect()
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn| {
            let found = conn.execute(
                "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            )?;
            Ok(found > 0)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_store_passes_the_conformance_suite() {
        crate::conformance::key_store(&SqliteStore::open_in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn file_store_survives_reopen_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        let key = crate::conformance::sample_key("reopen1", 10);
        SqliteStore::open(&path)
            .unwrap()
            .insert_key(&key)
            .await
            .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get_key("reopen1").await.unwrap(), Some(key));
        let mode: String = store
            .with_conn(|c| Ok(c.pragma_query_value(None, "journal_mode", |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[tokio::test]
    async fn a_corrupt_row_is_an_error_not_a_panic() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .with_conn(|c| {
                c.execute("INSERT INTO keys (id, hash, account, created_at) VALUES ('bad', 'nothex', 'a', 0)", [])?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(matches!(
            store.get_key("bad").await,
            Err(StoreError::Corrupt { .. })
        ));
    }
}
