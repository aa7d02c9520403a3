//! Read-only connections to the store file, apart from the writer's connection.
//!
//! In WAL mode readers never block the writer and the writer never blocks readers: each read
//! transaction sees the last commit before it began. One connection behind one mutex made every
//! key lookup queue behind audit appends and admin queries (four looping viewer queries took
//! key lookups to a p50 of 0.5 s), so reads take a read-only connection of their own and the
//! writer's connection serves only writes. Reads come in two pools, so that no number of admin
//! queries can hold every connection a key lookup needs: [`LOOKUP_READERS`] connections for
//! key lookups by id (virtual and admin keys, on every request whose key is not cached), and
//! [`QUERY_READERS`] for listings and audit reads (the admin API, `moat audit`).
//!
//! The pool is a fixed set of connections opened with the store (so a file that cannot be read
//! fails at start, not at the first lookup), handed out under a mutex and a condition variable.
//! It needs nothing more: SQLite connections do not go stale, so there is nothing to test,
//! reap or reconnect, and callers are blocking-pool threads (`spawn_blocking`), where waiting
//! for a connection is fine. A caller waits at most [`WAIT`] for one.

use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Read-only connections a file store opens for key lookups.
pub const LOOKUP_READERS: usize = 2;
/// Read-only connections a file store opens for listings and audit reads; more such reads at
/// once wait for one.
pub const QUERY_READERS: usize = 2;

/// Which pool a read takes its connection from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// One key by id: short, on the request path.
    Lookup,
    /// Listings and audit pages: longer, off the request path.
    Query,
}

/// The two pools of a file store.
pub(super) struct Readers {
    lookups: ReadPool,
    queries: ReadPool,
}

impl Readers {
    /// Opens both pools on the database at `path`.
    pub(super) fn open(path: &Path) -> Result<Readers, StoreError> {
        Ok(Readers {
            lookups: ReadPool::open(path, LOOKUP_READERS)?,
            queries: ReadPool::open(path, QUERY_READERS)?,
        })
    }

    /// The pool for `read`.
    pub(super) fn pool(&self, read: Read) -> &ReadPool {
        match read {
            Read::Lookup => &self.lookups,
            Read::Query => &self.queries,
        }
    }
}

/// The longest a read waits for a free connection before it fails.
const WAIT: Duration = Duration::from_secs(10);

/// A fixed set of read-only connections.
pub(super) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl ReadPool {
    /// Opens `size` read-only connections to the database at `path` (which exists, in WAL mode).
    pub(super) fn open(path: &Path, size: usize) -> Result<ReadPool, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size.max(1) {
            let conn = Connection::open_with_flags(path, flags)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            idle.push(conn);
        }
        Ok(ReadPool {
            idle: Mutex::new(idle),
            freed: Condvar::new(),
        })
    }

    /// Runs `f` on a free connection, waiting for one if all are busy. Blocks: call it from a
    /// blocking thread.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = Lease {
            pool: self,
            conn: Some(self.take()?),
        };
        match lease.conn.as_mut() {
            Some(conn) => f(conn),
            None => Err(StoreError::Worker("read connection lost".into())),
        }
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let deadline = Instant::now() + WAIT;
        let poisoned = || StoreError::Worker("sqlite read pool lock poisoned".into());
        let mut idle = self.idle.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(conn);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Worker(format!(
                    "no read connection free within {} s",
                    WAIT.as_secs()
                )));
            }
            idle = self
                .freed
                .wait_timeout(idle, left)
                .map_err(|_| poisoned())?
                .0;
        }
    }
}

/// A connection taken from the pool, put back when dropped (also if the read panics, so the
/// pool never shrinks).
struct Lease<'a> {
    pool: &'a ReadPool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.pool.idle.lock()) {
            idle.push(conn);
            self.pool.freed.notify_one();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::conformance::{audit_chain, sample_key, GENESIS};
    use crate::{AuditStore, KeyStore, SqliteStore, StoreError};
    use std::time::Duration;

    /// While the writer holds a write transaction open, key lookups and audit reads still
    /// answer, and see only what was committed.
    #[tokio::test]
    async fn reads_proceed_while_the_writer_holds_a_write_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("moat.db")).unwrap();
        store.insert_key(&sample_key("k1", 10)).await.unwrap();
        store
            .append_audit(&audit_chain(1, 3, GENESIS))
            .await
            .unwrap();
        let (held_tx, held_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .with_conn(move |conn| {
                        let tx = conn
                            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                        tx.execute(
                            "INSERT INTO keys (id, hash, account, created_at) VALUES ('k2', ?1, 'a', 0)",
                            ["0".repeat(64)],
                        )?;
                        let _ = held_tx.send(());
                        release_rx
                            .recv_timeout(Duration::from_secs(30))
                            .map_err(|e| StoreError::Worker(e.to_string()))?;
                        tx.commit()?;
                        Ok(())
                    })
                    .await
            })
        };
        held_rx.await.unwrap();
        // Bounded so that a read queued behind the writer fails the test instead of hanging it.
        let reads = async {
            let k1 = store.get_key("k1").await.unwrap();
            let k2 = store.get_key("k2").await.unwrap();
            let records = store.audit_range(1, 3, 10).await.unwrap();
            (k1.is_some(), k2.is_none(), records.len())
        };
        let seen = tokio::time::timeout(Duration::from_secs(20), reads).await;
        release_tx.send(()).unwrap();
        assert_eq!(seen.expect("reads wait for the writer"), (true, true, 3));
        writer.await.unwrap().unwrap();
        assert!(store.get_key("k2").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("moat.db")).unwrap();
        let err = store
            .with_reader(super::Read::Query, |conn| {
                conn.execute("DELETE FROM keys", [])?;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }
}
