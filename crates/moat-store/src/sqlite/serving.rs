//! What a serving gateway needs of its SQLite file beyond reads and writes: to be its only
//! audit writer (an exclusive lock held for the process's life) and to know at start that the
//! file can be written at all (a probe write).

use super::SqliteStore;
use crate::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The exclusive serving lock on a store file, released when dropped (or when the process ends,
/// however it ends: the OS drops the lock with the descriptor).
///
/// It is an advisory lock (`flock`) on a sidecar file, `<store>.lock`, not on the database
/// itself: SQLite's own locks are POSIX record locks on the database file, and on network file
/// systems `flock` is emulated with those, so locking the database file could block SQLite. Only
/// `moat serve` takes it, so CLI readers and writers (`moat audit verify`, `moat keys create`)
/// still open the store while a gateway serves. The sidecar file is left in place: deleting a
/// lock file races with the next process taking it.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
    path: PathBuf,
}

impl ServeLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SqliteStore {
    /// Takes the serving lock of the store at `db`: fails with [`StoreError::Locked`] at once if
    /// another process holds it (a second `moat serve` on the same file, or an overlapping
    /// restart), so only one gateway ever continues the audit chain.
    pub fn lock_for_serving(db: &Path) -> Result<ServeLock, StoreError> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                StoreError::Io(format!("cannot open the lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked(path)),
            Err(TryLockError::Error(e)) => Err(StoreError::Io(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    /// Proves the store can be written now: commits one write transaction that rewrites the
    /// schema version with its own value (no row changes, but a real page write and WAL commit,
    /// fsynced like an audit append). A read-only file, a read-only file system or a full disk
    /// fail here, before the gateway answers anything.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            if conn.is_readonly(rusqlite::DatabaseName::Main)? {
                return Err(StoreError::ReadOnly);
            }
            super::audit::durably(conn, true, |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
                tx.pragma_update(None, "user_version", version)?;
                tx.commit()?;
                Ok(())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_store_is_refused_until_the_first_goes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("moat.db");
        let first = SqliteStore::lock_for_serving(&db).unwrap();
        assert!(first.path().ends_with("moat.db.lock"));
        match SqliteStore::lock_for_serving(&db) {
            Err(StoreError::Locked(p)) => assert_eq!(p, first.path()),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        SqliteStore::lock_for_serving(&db).unwrap();
    }

    #[tokio::test]
    async fn a_writable_store_passes_the_probe_and_keeps_its_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("moat.db");
        let store = SqliteStore::open(&db).unwrap();
        store.check_writable().await.unwrap();
        let version: i64 = store
            .with_conn(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, crate::migrations::MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn a_store_opened_read_only_fails_the_probe() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("moat.db");
        drop(SqliteStore::open(&db).unwrap());
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let store = SqliteStore {
            conn: std::sync::Arc::new(std::sync::Mutex::new(conn)),
            audit_fsync: true,
            readers: None,
        };
        assert!(matches!(
            store.check_writable().await,
            Err(StoreError::ReadOnly)
        ));
    }
}
