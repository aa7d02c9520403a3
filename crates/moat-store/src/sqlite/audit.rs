//! The audit log in SQLite: tables `audit` and `audit_checkpoints` (migration 4).
//!
//! Appends and drops run in `BEGIN IMMEDIATE` transactions, so the tail they check cannot move
//! before they write even when another process (the CLI, a second gateway by mistake) shares the
//! file; and, unless turned off, with `synchronous = FULL`, so the WAL is fsynced before they
//! return.

use super::SqliteStore;
use crate::audit::{check_batch, check_checkpoint};
use crate::{
    AuditBounds, AuditPage, AuditQuery, AuditStore, AuditTail, PageBudget, StoreError, StoredAudit,
    StoredCheckpoint,
};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

pub(super) const COLUMNS: &str =
    "seq, ts_ms, kind, request_id, key_id, account, workflow, status, decisions, prev_hash, hash, json";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, batch: &[StoredAudit]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.to_vec();
        let fsync = self.audit_fsync;
        self.with_conn(move |conn| durably(conn, fsync, |conn| append(conn, &batch)))
            .await
    }

    async fn audit_tail(&self) -> Result<Option<AuditTail>, StoreError> {
        self.with_conn(|conn| tail(conn)).await
    }

    async fn audit_range(
        &self,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredAudit>, StoreError> {
        if from_seq > to_seq || limit == 0 {
            return Ok(Vec::new());
        }
        // Seqs above i64::MAX cannot be stored, so clamping the bounds loses nothing.
        let (from, to) = (sql_seq_clamped(from_seq), sql_seq_clamped(to_seq));
        self.with_reader(super::Read::Query, move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![from, to, sql_limit(limit)], |row| {
                Ok(audit_from_row(row))
            })?;
            rows.map(|r| r.map_err(StoreError::from).and_then(|a| a))
                .collect()
        })
        .await
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredAudit>, StoreError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, values) = query_sql(q);
        self.with_reader(super::Read::Query, move |conn| {
            // Only the filters set appear in the SQL, so each query can use its best index; the
            // statement cache (LRU) keeps the shapes in use.
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(values), |row| Ok(audit_from_row(row)))?;
            rows.map(|r| r.map_err(StoreError::from).and_then(|a| a))
                .collect()
        })
        .await
    }

    async fn audit_page(
        &self,
        q: &AuditQuery,
        budget: PageBudget,
    ) -> Result<AuditPage, StoreError> {
        let q = q.clone();
        self.with_reader(super::Read::Query, move |conn| {
            super::audit_page::page(conn, &q, budget)
        })
        .await
    }

    async fn drop_audit_through(&self, checkpoint: &StoredCheckpoint) -> Result<u64, StoreError> {
        let checkpoint = checkpoint.clone();
        let fsync = self.audit_fsync;
        self.with_conn(move |conn| durably(conn, fsync, |conn| drop_through(conn, &checkpoint)))
            .await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.with_reader(super::Read::Query, |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, hash, ts_ms, json FROM audit_checkpoints ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, hash, ts_ms, json) = row?;
                out.push(StoredCheckpoint {
                    seq: seq_from_sql(seq, "checkpoint")?,
                    hash,
                    ts_ms,
                    json,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn audit_bounds(&self) -> Result<Option<AuditBounds>, StoreError> {
        self.with_reader(super::Read::Query, |conn| {
            // COUNT(*) walks the smallest index: linear in the records kept, which is why
            // verification asks for it once, not per page.
            let (first, last, count): (Option<i64>, Option<i64>, i64) = conn.query_row(
                "SELECT min(seq), max(seq), count(*) FROM audit",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            Ok(Some(AuditBounds {
                first_seq: seq_from_sql(first, "audit")?,
                last_seq: seq_from_sql(last, "audit")?,
                count: count.unsigned_abs(),
            }))
        })
        .await
    }
}

/// Runs `f` with `synchronous = FULL` if `fsync`, restoring the store's `NORMAL` afterwards
/// (also when `f` fails). The pragma is set outside any transaction, where SQLite honours it.
pub(super) fn durably<T>(
    conn: &mut Connection,
    fsync: bool,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !fsync {
        return f(conn);
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    let out = f(conn);
    let restored = conn.pragma_update(None, "synchronous", "NORMAL");
    let out = out?;
    restored?;
    Ok(out)
}

fn append(conn: &mut Connection, batch: &[StoredAudit]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    check_batch(tail(&tx)?.as_ref(), batch)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (seq, ts_ms, kind, request_id, key_id, account, workflow, status,
                                decisions, prev_hash, hash, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for r in batch {
            let decisions = serde_json::Value::from(r.decisions.clone()).to_string();
            stmt.execute(params![
                sql_seq(r.seq)?,
                r.ts_ms,
                r.kind,
                r.request_id,
                r.key_id,
                r.account,
                r.workflow,
                r.status,
                decisions,
                r.prev_hash,
                r.hash,
                r.json,
            ])?;
        }
    }
    // Dropping `tx` on an early return rolls back, so a failed insert leaves nothing.
    tx.commit()?;
    Ok(())
}

fn drop_through(conn: &mut Connection, checkpoint: &StoredCheckpoint) -> Result<u64, StoreError> {
    let seq = sql_seq(checkpoint.seq)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let hash_at = |table: &str| -> Result<Option<String>, StoreError> {
        Ok(tx
            .prepare_cached(&format!("SELECT hash FROM {table} WHERE seq = ?1"))?
            .query_row([seq], |row| row.get(0))
            .optional()?)
    };
    let kept = hash_at("audit")?;
    let existing = hash_at("audit_checkpoints")?;
    if !check_checkpoint(checkpoint, kept.as_deref(), existing.as_deref())? {
        return Ok(0);
    }
    // The checkpoint goes in first: the delete trigger allows only seqs at or below the latest.
    tx.execute(
        "INSERT INTO audit_checkpoints (seq, hash, ts_ms, json) VALUES (?1, ?2, ?3, ?4)",
        params![seq, checkpoint.hash, checkpoint.ts_ms, checkpoint.json],
    )?;
    let dropped = tx.execute("DELETE FROM audit WHERE seq <= ?1", [seq])?;
    tx.commit()?;
    Ok(dropped as u64)
}

/// The last record's seq and hash, or the latest checkpoint's if it is later (every record after
/// it dropped).
fn tail(conn: &Connection) -> Result<Option<AuditTail>, StoreError> {
    let last = |table: &str| -> Result<Option<(i64, String)>, StoreError> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?)
    };
    let Some((seq, hash)) = last("audit")?.max(last("audit_checkpoints")?) else {
        return Ok(None);
    };
    Ok(Some(AuditTail {
        seq: seq_from_sql(seq, "audit")?,
        hash,
    }))
}

/// The SELECT for `q` (whose limit is not 0) with only the filters that are set, and its
/// parameters in order.
fn query_sql(q: &AuditQuery) -> (String, Vec<Value>) {
    query_sql_of(q, COLUMNS)
}

/// As [`query_sql`], selecting `columns`.
pub(super) fn query_sql_of(q: &AuditQuery, columns: &str) -> (String, Vec<Value>) {
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut push = |clause, value| {
        clauses.push(clause);
        values.push(value);
    };
    if let Some(after) = q.after_seq {
        push("seq > ?", Value::Integer(sql_seq_clamped(after)));
    }
    if let Some(from) = q.from_ms {
        push("ts_ms >= ?", Value::Integer(from));
    }
    if let Some(to) = q.to_ms {
        push("ts_ms < ?", Value::Integer(to));
    }
    let text = |s: &Option<String>| s.clone().map(Value::Text);
    for (clause, value) in [
        ("key_id = ?", text(&q.key_id)),
        ("account = ?", text(&q.account)),
        ("workflow = ?", text(&q.workflow)),
        ("kind = ?", text(&q.kind)),
        // json_each decodes the stored list, so the comparison is exact whatever the tag holds
        // (commas, quotes, LIKE wildcards).
        (
            "EXISTS (SELECT 1 FROM json_each(audit.decisions) WHERE json_each.value = ?)",
            text(&q.decision),
        ),
        ("status = ?", q.status.map(|s| Value::Integer(s.into()))),
    ] {
        if let Some(value) = value {
            push(clause, value);
        }
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    values.push(Value::Integer(sql_limit(q.limit)));
    (
        format!("SELECT {columns} FROM audit {filter} ORDER BY seq LIMIT ?"),
        values,
    )
}

fn audit_from_row(row: &rusqlite::Row<'_>) -> Result<StoredAudit, StoreError> {
    let json = row.get(11)?;
    audit_with_json(row, json)
}

/// The record of `row` (the first eleven of [`COLUMNS`]) with `json` as its document.
pub(super) fn audit_with_json(
    row: &rusqlite::Row<'_>,
    json: String,
) -> Result<StoredAudit, StoreError> {
    let seq: i64 = row.get(0)?;
    let corrupt = |reason: &str| StoreError::Corrupt {
        id: format!("audit {seq}"),
        reason: reason.to_string(),
    };
    let status: i64 = row.get(7)?;
    let decisions: String = row.get(8)?;
    Ok(StoredAudit {
        seq: seq_from_sql(seq, "audit")?,
        ts_ms: row.get(1)?,
        kind: row.get(2)?,
        request_id: row.get(3)?,
        key_id: row.get(4)?,
        account: row.get(5)?,
        workflow: row.get(6)?,
        status: u16::try_from(status).map_err(|_| corrupt("status is not an HTTP status"))?,
        decisions: serde_json::from_str(&decisions)
            .map_err(|_| corrupt("decisions is not a JSON list of strings"))?,
        prev_hash: row.get(9)?,
        hash: row.get(10)?,
        json,
    })
}

/// `seq` as SQLite's signed integer; a seq past i64::MAX (2^63 records) cannot be stored.
pub(super) fn sql_seq(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt {
        id: format!("audit {seq}"),
        reason: "seq is beyond SQLite's integer range".into(),
    })
}

pub(super) fn sql_seq_clamped(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn seq_from_sql(seq: i64, table: &str) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        id: format!("{table} {seq}"),
        reason: "seq is negative".into(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::conformance::{audit_chain, GENESIS};
    use crate::migrations::MIGRATIONS;
    use crate::KeyStore;
    use std::time::{Duration, Instant};

    async fn sql<T: Send + 'static>(
        store: &SqliteStore,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> T {
        store.with_conn(move |c| Ok(f(c)?)).await.unwrap()
    }

    #[tokio::test]
    async fn the_log_and_its_tail_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        let records = audit_chain(1, 20, GENESIS);
        let cp = StoredCheckpoint {
            seq: 5,
            hash: records[4].hash.clone(),
            ts_ms: 1,
            json: "{\"signed\":true}".into(),
        };
        {
            let store = SqliteStore::open(&path).unwrap();
            store.append_audit(&records).await.unwrap();
            assert_eq!(store.drop_audit_through(&cp).await.unwrap(), 5);
        }
        let store = SqliteStore::open(&path).unwrap();
        let tail = AuditTail {
            seq: 20,
            hash: records[19].hash.clone(),
        };
        assert_eq!(store.audit_tail().await.unwrap(), Some(tail));
        assert_eq!(store.audit_checkpoints().await.unwrap(), [cp]);
        assert_eq!(
            store.audit_range(0, u64::MAX, 100).await.unwrap(),
            records[5..]
        );
        // The reopened writer continues the chain; a second writer replaying it is refused.
        let more = audit_chain(21, 2, &records[19].hash);
        store.append_audit(&more).await.unwrap();
        let other = SqliteStore::open(&path).unwrap();
        assert!(matches!(
            other.append_audit(&more).await,
            Err(StoreError::AuditChain(crate::ChainBreak::Gap {
                expected: 23,
                found: 21
            }))
        ));
    }

    #[tokio::test]
    async fn a_version_3_file_is_migrated_and_gains_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        {
            let conn = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..3] {
                conn.execute_batch(migration).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute(
                "INSERT INTO keys (id, hash, account, created_at) VALUES ('old', ?1, 'acme', 7)",
                [moat_policy::hash_key("old").to_hex()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = sql(&store, |c| {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
        })
        .await;
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(store.get_key("old").await.unwrap().unwrap().account, "acme");
        crate::conformance::audit_store(&store).await;
    }

    #[tokio::test]
    async fn a_failing_insert_mid_batch_leaves_nothing() {
        let store = SqliteStore::open_in_memory().unwrap();
        sql(&store, |c| {
            c.execute_batch(
                "CREATE TRIGGER fail_at_7 BEFORE INSERT ON audit WHEN NEW.seq = 7
                 BEGIN SELECT RAISE(ABORT, 'disk full, say'); END;",
            )
        })
        .await;
        let records = audit_chain(1, 10, GENESIS);
        assert!(matches!(
            store.append_audit(&records).await,
            Err(StoreError::Database(_))
        ));
        assert_eq!(store.audit_bounds().await.unwrap(), None);
        assert_eq!(store.audit_tail().await.unwrap(), None);
        sql(&store, |c| c.execute_batch("DROP TRIGGER fail_at_7")).await;
        store.append_audit(&records).await.unwrap();
        assert_eq!(store.audit_range(1, 10, 100).await.unwrap(), records);
    }

    #[tokio::test]
    async fn the_schema_refuses_edits_and_uncovered_deletes() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .append_audit(&audit_chain(1, 3, GENESIS))
            .await
            .unwrap();
        for statement in [
            "UPDATE audit SET status = 200 WHERE seq = 2",
            "DELETE FROM audit WHERE seq = 1",
            "INSERT INTO audit_checkpoints VALUES (1, 'h', 0, '{}');
             UPDATE audit_checkpoints SET hash = 'x'",
            "INSERT INTO audit_checkpoints VALUES (1, 'h', 0, '{}');
             DELETE FROM audit_checkpoints",
        ] {
            let result = store
                .with_conn(move |c| {
                    let tx = c.transaction()?;
                    tx.execute_batch(statement)?;
                    tx.commit()?;
                    Ok(())
                })
                .await;
            assert!(
                matches!(result, Err(StoreError::Database(_))),
                "{statement}"
            );
        }
        assert_eq!(store.audit_range(1, 3, 10).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn audit_writes_leave_the_connection_at_synchronous_normal() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("moat.db")).unwrap();
        let synchronous = || {
            sql(&store, |c| {
                c.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
            })
        };
        let records = audit_chain(1, 3, GENESIS);
        store.append_audit(&records).await.unwrap();
        assert_eq!(synchronous().await, 1, "NORMAL after a commit");
        assert!(store.append_audit(&records).await.is_err());
        assert_eq!(synchronous().await, 1, "NORMAL after a refusal");
        let cp = StoredCheckpoint {
            seq: 1,
            hash: records[0].hash.clone(),
            ts_ms: 0,
            json: String::new(),
        };
        store.drop_audit_through(&cp).await.unwrap();
        assert_eq!(synchronous().await, 1, "NORMAL after a drop");
    }

    #[tokio::test]
    async fn a_corrupt_audit_row_is_an_error_not_a_panic() {
        for (column, value) in [("status", "70000"), ("decisions", "'filter:deny'")] {
            let store = SqliteStore::open_in_memory().unwrap();
            sql(&store, move |c| {
                c.execute(
                    "INSERT INTO audit VALUES (1, 0, 'request', 'r', NULL, NULL, NULL, 200,
                     '[]', 'p', 'h', '{}')",
                    [],
                )?;
                // Rewrite the column behind the no-update trigger, as a hand edit would.
                c.execute_batch(&format!(
                    "DROP TRIGGER audit_no_update; UPDATE audit SET {column} = {value};"
                ))
            })
            .await;
            let err = store.audit_range(1, 1, 1).await.unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt { id, .. } if id == "audit 1"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn filtered_queries_use_their_indexes() {
        let store = SqliteStore::open_in_memory().unwrap();
        for (q, index) in [
            (
                AuditQuery {
                    account: Some("acme".into()),
                    ..AuditQuery::new(10)
                },
                "audit_account",
            ),
            (
                AuditQuery {
                    workflow: Some("w".into()),
                    after_seq: Some(100),
                    ..AuditQuery::new(10)
                },
                "audit_workflow",
            ),
            (
                AuditQuery {
                    key_id: Some("k".into()),
                    ..AuditQuery::new(10)
                },
                "audit_key",
            ),
        ] {
            let (sql_text, values) = query_sql(&q);
            let plan: Vec<String> = sql(&store, move |c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql_text}"))?;
                let rows = stmt.query_map(params_from_iter(values), |r| r.get(3))?;
                rows.collect()
            })
            .await;
            assert!(plan.iter().any(|p| p.contains(index)), "{q:?}: {plan:?}");
        }
    }

    /// Prints how long a 1,000-record batch takes to append to a file store, with and without the
    /// fsync. `cargo test -p moat-store --release -- --ignored --nocapture append_timing`
    #[tokio::test]
    #[ignore = "a timing report, not a check"]
    async fn append_timing() {
        for fsync in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(&dir.path().join("moat.db"))
                .unwrap()
                .with_audit_fsync(fsync);
            let body = format!(",\"body\":\"{}\"}}", "x".repeat(900));
            let mut prev = GENESIS.to_string();
            let mut times = Vec::new();
            for round in 0..20u64 {
                let mut batch = audit_chain(round * 1000 + 1, 1000, &prev);
                for r in &mut batch {
                    r.json.pop();
                    r.json.push_str(&body);
                }
                prev = batch[999].hash.clone();
                let start = Instant::now();
                store.append_audit(&batch).await.unwrap();
                times.push(start.elapsed());
            }
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "fsync={fsync}: 1,000 records of ~1 KB: median {:.1} ms, max {:.1} ms (20 batches)",
                ms(times[10]),
                ms(times[19])
            );
        }
    }
}
