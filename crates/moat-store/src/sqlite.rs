//! The embedded default store: one SQLite file in WAL mode.

use crate::migrations::MIGRATIONS;
use crate::{KeyStore, SpendRow, SpendStore, StoreError, WorkflowSpec, WorkflowStore};
use async_trait::async_trait;
use moat_core::Money;
use moat_policy::budget::Period;
use moat_policy::limits::Scope;
use moat_policy::{KeyHash, KeyRecord, PreviousSecret};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

mod admin_keys;
mod audit;
mod audit_page;
mod readers;
mod serving;

pub use serving::ServeLock;

use readers::Read;
pub use readers::{LOOKUP_READERS, QUERY_READERS};

/// A SQLite database file. Calls run on tokio's blocking pool. Writes go through one connection,
/// one at a time; a file store also opens read-only connections, which serve key
/// lookups ([`LOOKUP_READERS`]) and listings and audit reads ([`QUERY_READERS`]) side by side
/// with the writer (WAL mode lets a read proceed
/// while a write transaction is open). An in-memory store has only its one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections of a file store; `None` for an in-memory one (reads use `conn`).
    readers: Option<Arc<readers::Readers>>,
    /// Whether audit writes fsync the WAL before returning (`synchronous = FULL` for their
    /// transaction); see [`crate::AuditStore`] on durability.
    audit_fsync: bool,
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
        let mut store = Self::init(conn)?;
        // Opened after the migrations, so readers see the current schema.
        store.readers = Some(Arc::new(readers::Readers::open(path)?));
        Ok(store)
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
            readers: None,
            audit_fsync: true,
        })
    }

    /// Whether audit appends and drops fsync the WAL before they return (the default) or run with
    /// the store's `synchronous = NORMAL`, surviving a process crash but not an OS crash. Keys,
    /// spend and workflows are unaffected either way.
    pub fn with_audit_fsync(mut self, fsync: bool) -> Self {
        self.audit_fsync = fsync;
        self
    }

    /// This store with every read on the writer's connection, as before the read pools: for
    /// benchmarks that compare the two (`moat-bench --bin store-reads`).
    pub fn without_read_pools(mut self) -> Self {
        self.readers = None;
        self
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

    /// Runs a read on a read-only connection of `read`'s pool (the writer's connection for an
    /// in-memory store), on tokio's blocking pool.
    async fn with_reader<T, F>(&self, read: Read, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(pool) = self.readers.clone() else {
            return self.with_conn(f).await;
        };
        tokio::task::spawn_blocking(move || pool.pool(read).with(f))
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

const KEY_COLUMNS: &str = "id, hash, account, workflow, models, cidrs, created_at, expires_at, \
     revoked_at, previous_hash, previous_valid_until";

/// The row `sql` (with `?1` = `id`) selects, read by `from_row`.
fn one_row<T>(
    conn: &Connection,
    sql: &str,
    id: &str,
    from_row: fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let row = stmt.query_row([id], |row| Ok(from_row(row))).optional()?;
    row.transpose()
}

/// Every row `sql` selects, read by `from_row`.
fn all_rows<T>(
    conn: &Connection,
    sql: &str,
    from_row: fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |row| Ok(from_row(row)))?;
    rows.map(|r| r.map_err(StoreError::from).and_then(|k| k))
        .collect()
}

/// Marks the key `id` of `table` (`keys` or `admin_keys`) revoked at `at`, keeping an earlier
/// revocation; false if there is no such key.
fn revoke(conn: &Connection, table: &'static str, id: &str, at: i64) -> Result<bool, StoreError> {
    let sql = format!("UPDATE {table} SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1");
    Ok(conn.execute(&sql, params![id, at])? > 0)
}

fn key_from_row(row: &rusqlite::Row<'_>) -> Result<KeyRecord, StoreError> {
    let id: String = row.get(0)?;
    let corrupt = |reason: &str| StoreError::Corrupt {
        id: format!("key {id}"),
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
    let previous_hash: Option<String> = row.get(9)?;
    let previous_valid_until: Option<i64> = row.get(10)?;
    let previous = match (previous_hash, previous_valid_until) {
        (None, None) => None,
        (Some(hex), Some(valid_until)) => Some(PreviousSecret {
            hash: KeyHash::from_hex(&hex)
                .ok_or_else(|| corrupt("previous_hash is not 64 hex digits"))?,
            valid_until,
        }),
        _ => {
            return Err(corrupt(
                "previous_hash and previous_valid_until differ in presence",
            ))
        }
    };
    Ok(KeyRecord {
        hash,
        account: row.get(2)?,
        workflow: row.get(3)?,
        models,
        cidrs,
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        revoked_at: row.get(8)?,
        previous,
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
                "INSERT INTO keys (id, hash, account, workflow, models, cidrs, created_at, expires_at,
                                   revoked_at, previous_hash, previous_valid_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT(id) DO NOTHING",
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
                    key.previous.map(|p| p.hash.to_hex()),
                    key.previous.map(|p| p.valid_until),
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
        self.with_reader(Read::Lookup, move |conn| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = ?1");
            one_row(conn, &sql, &id, key_from_row)
        })
        .await
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.with_reader(Read::Query, |conn| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at, id");
            all_rows(conn, &sql, key_from_row)
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn| revoke(conn, "keys", &id, at))
            .await
    }

    async fn rotate_key(
        &self,
        id: &str,
        new_hash: &KeyHash,
        grace_until: i64,
    ) -> Result<bool, StoreError> {
        let (id, new_hash) = (id.to_string(), new_hash.to_hex());
        // One statement, so two rotations racing cannot both keep the same old secret.
        self.with_conn(move |conn| {
            let changed = conn.execute(
                "UPDATE keys SET previous_hash = hash, previous_valid_until = ?3, hash = ?2
                 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, new_hash, grace_until],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }
}

#[async_trait]
impl SpendStore for SqliteStore {
    async fn save_spend(&self, rows: &[SpendRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        self.with_conn(move |conn| {
            // One transaction: every row or none, and one fsync for the lot.
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO spend (scope, id, period, window_start_ms, spent_micros)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(scope, id, period, window_start_ms)
                     DO UPDATE SET spent_micros = excluded.spent_micros",
                )?;
                for row in &rows {
                    stmt.execute(params![
                        row.scope.as_str(),
                        &*row.id,
                        row.period.as_str(),
                        row.window_start_ms,
                        row.spent.0,
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn load_spend(&self, since_ms: i64) -> Result<Vec<SpendRow>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT scope, id, period, window_start_ms, spent_micros FROM spend
                 WHERE window_start_ms >= ?1",
            )?;
            let rows = stmt.query_map([since_ms], |row| Ok(spend_from_row(row)))?;
            rows.map(|r| r.map_err(StoreError::from).and_then(|s| s))
                .collect()
        })
        .await
    }

    async fn prune_spend(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.with_conn(move |conn| {
            let deleted =
                conn.execute("DELETE FROM spend WHERE window_start_ms < ?1", [before_ms])?;
            Ok(deleted as u64)
        })
        .await
    }
}

fn spend_from_row(row: &rusqlite::Row<'_>) -> Result<SpendRow, StoreError> {
    let scope: String = row.get(0)?;
    let id: String = row.get(1)?;
    let period: String = row.get(2)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: format!("spend {scope} {id}"),
        reason,
    };
    // The names are the ones `as_str` writes, so reading back cannot drift from writing.
    let parsed_scope = [Scope::Key, Scope::Workflow, Scope::Account]
        .into_iter()
        .find(|s| s.as_str() == scope)
        .ok_or_else(|| corrupt(format!("unknown scope {scope:?}")))?;
    let parsed_period = [Period::Day, Period::Week, Period::Month]
        .into_iter()
        .find(|p| p.as_str() == period)
        .ok_or_else(|| corrupt(format!("unknown period {period:?}")))?;
    Ok(SpendRow {
        scope: parsed_scope,
        id: id.into(),
        period: parsed_period,
        window_start_ms: row.get(3)?,
        spent: Money(row.get(4)?),
    })
}

#[async_trait]
impl WorkflowStore for SqliteStore {
    async fn put_workflow(&self, spec: &WorkflowSpec, at: i64) -> Result<(), StoreError> {
        let json = serde_json::to_string(spec).map_err(|e| StoreError::Corrupt {
            id: format!("workflow {}", spec.name),
            reason: e.to_string(),
        })?;
        let name = spec.name.clone();
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT INTO workflows (name, spec, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
                rusqlite::params![name, json, at],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with_conn(move |conn| {
            Ok(conn.execute("DELETE FROM workflows WHERE name = ?1", [name])? > 0)
        })
        .await
    }

    async fn list_workflows(&self) -> Result<Vec<WorkflowSpec>, StoreError> {
        self.with_reader(Read::Query, |conn| {
            let mut stmt = conn.prepare("SELECT name, spec FROM workflows ORDER BY name")?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, json) = row?;
                let spec = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                    id: format!("workflow {name}"),
                    reason: format!("spec is not a workflow: {e}"),
                })?;
                out.push(spec);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_store_passes_the_conformance_suite() {
        let store = SqliteStore::open_in_memory().unwrap();
        crate::conformance::key_store(&store).await;
        crate::conformance::spend_store(&store).await;
        crate::conformance::workflow_store(&store).await;
        crate::conformance::audit_store(&store).await;
        crate::conformance::admin_key_store(&store).await;
    }

    #[tokio::test]
    async fn spend_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        let rows = crate::conformance::sample_spend();
        SqliteStore::open(&path)
            .unwrap()
            .save_spend(&rows)
            .await
            .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            crate::conformance::sorted(store.load_spend(i64::MIN).await.unwrap()),
            crate::conformance::sorted(rows)
        );
    }

    #[tokio::test]
    async fn a_version_1_file_is_migrated_and_keeps_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let key = crate::conformance::sample_key("old1", 10);
        {
            // Insert through the version-1 schema only (no spend table, no rotation columns).
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO keys (id, hash, account, workflow, models, cidrs, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.id,
                    key.hash.to_hex(),
                    key.account,
                    key.workflow,
                    serde_json::Value::from(key.models.clone()).to_string(),
                    serde_json::json!(["10.0.0.0/8", "2001:db8::/32"]).to_string(),
                    key.created_at,
                    key.expires_at,
                ],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store
            .with_conn(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(store.get_key("old1").await.unwrap(), Some(key));
        crate::conformance::spend_store(&store).await;
    }

    #[tokio::test]
    async fn a_corrupt_spend_row_is_an_error_not_a_panic() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .with_conn(|c| {
                c.execute("INSERT INTO spend VALUES ('galaxy', 'w', 'day', 0, 5)", [])?;
                Ok(())
            })
            .await
            .unwrap();
        let err = store.load_spend(0).await.unwrap_err();
        assert!(
            err.to_string().contains("spend galaxy w: unknown scope"),
            "{err}"
        );
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
