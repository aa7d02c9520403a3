//! The audit log: tables `audit` and `audit_checkpoints` (migration 6).
//!
//! Appends and drops run in one transaction that first takes `LOCK TABLE audit IN EXCLUSIVE
//! MODE`: writers (this store's, another replica's, a hand-run `INSERT`) take turns while readers
//! go on, and the tail a writer checks cannot move before it commits. Under `READ COMMITTED`
//! every statement after the lock sees every write committed before it, so a second writer checks
//! against the first one's records and is refused ([`StoreError::AuditChain`]) instead of forking
//! the chain. The primary key on `seq` is the backstop: a duplicate seq cannot be stored at all.
//!
//! **Durability.** `Ok` from `append_audit` means the transaction committed; how durable that is
//! is the server's `synchronous_commit` (default `on`: the WAL is flushed, and with synchronous
//! standbys configured, replicated, before the commit returns). This store does not override it,
//! so an operator who turned it off for the database has turned it off for the audit log too.

use crate::error::Db;
use crate::PostgresStore;
use async_trait::async_trait;
use moat_store::{
    check_batch, check_checkpoint, AuditBounds, AuditPage, AuditQuery, AuditStore, AuditTail,
    PageBudget, StoreError, StoredAudit, StoredCheckpoint,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{IsolationLevel, Row};

const COLUMNS: &str =
    "seq, ts_ms, kind, request_id, key_id, account, workflow, status, decisions, prev_hash, hash, json";

/// The column types of `audit`, in [`COLUMNS`] order, for `COPY ... (FORMAT binary)`.
const COPY_TYPES: [Type; 12] = [
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
    Type::INT4,
    Type::BYTEA_ARRAY,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
];

/// The writers' lock: conflicts with itself and with every `INSERT`, `UPDATE` and `DELETE` on
/// `audit`, not with `SELECT`. Released at commit or rollback.
const WRITE_LOCK: &str = "LOCK TABLE audit IN EXCLUSIVE MODE";

/// The last record's seq and hash, or the latest checkpoint's if it is later (every record after
/// it dropped).
const TAIL: &str = "SELECT seq, hash FROM (
        (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1)
        UNION ALL
        (SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1)
    ) last ORDER BY seq DESC LIMIT 1";

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, batch: &[StoredAudit]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let seqs = batch
            .iter()
            .map(|r| sql_seq(r.seq))
            .collect::<Result<Vec<_>, _>>()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        tx.batch_execute(WRITE_LOCK).await.db()?;
        let stmt = tx.prepare_cached(TAIL).await.db()?;
        let tail = tx.query_opt(&stmt, &[]).await.db()?;
        check_batch(tail.as_ref().map(tail_of).transpose()?.as_ref(), batch)?;
        // COPY streams the whole batch in one statement: no round trip per record.
        let sink = tx
            .copy_in(
                "COPY audit (seq, ts_ms, kind, request_id, key_id, account, workflow, status,
                             decisions, prev_hash, hash, json) FROM STDIN (FORMAT binary)",
            )
            .await
            .db()?;
        let writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
        let mut writer = std::pin::pin!(writer);
        for (r, seq) in batch.iter().zip(seqs) {
            let (key_id, account, workflow) = (
                opt_bytes(&r.key_id),
                opt_bytes(&r.account),
                opt_bytes(&r.workflow),
            );
            let decisions: Vec<&[u8]> = r.decisions.iter().map(|d| d.as_bytes()).collect();
            let status = i32::from(r.status);
            let row: [&(dyn ToSql + Sync); 12] = [
                &seq,
                &r.ts_ms,
                &r.kind,
                &r.request_id.as_bytes(),
                &key_id,
                &account,
                &workflow,
                &status,
                &decisions,
                &r.prev_hash,
                &r.hash,
                &r.json.as_bytes(),
            ];
            writer.as_mut().write(&row).await.db()?;
        }
        writer.as_mut().finish().await.db()?;
        // An early return drops `tx`, which rolls back: a refused or failed batch leaves nothing.
        tx.commit().await.db()
    }

    async fn audit_tail(&self) -> Result<Option<AuditTail>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(TAIL).await.db()?;
        let row = client.query_opt(&stmt, &[]).await.db()?;
        row.as_ref().map(tail_of).transpose()
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
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit WHERE seq BETWEEN $1 AND $2 ORDER BY seq LIMIT $3"
            ))
            .await
            .db()?;
        let rows = client
            .query(&stmt, &[&from, &to, &sql_limit(limit)])
            .await
            .db()?;
        rows.iter().map(|row| audit_from_row(row, None)).collect()
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredAudit>, StoreError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, values) = query_sql(q, COLUMNS);
        let client = self.client().await?;
        // Only the filters set appear in the SQL, so each shape gets its own plan (and index);
        // the per-connection cache keeps the shapes in use.
        let stmt = client.prepare_cached(&sql).await.db()?;
        let rows = client.query(&stmt, &params(&values)).await.db()?;
        rows.iter().map(|row| audit_from_row(row, None)).collect()
    }

    /// Reads no body it does not return: first the matching records' columns and each one's
    /// stored size (`octet_length`, which PostgreSQL answers without fetching a TOASTed value),
    /// then the documents of only the records the page keeps, both in one snapshot.
    async fn audit_page(
        &self,
        q: &AuditQuery,
        budget: PageBudget,
    ) -> Result<AuditPage, StoreError> {
        let Some(one_more) = AuditPage::probe(q) else {
            return Ok(AuditPage::default());
        };
        let (sql, values) = query_sql(
            &one_more,
            &COLUMNS.replace(", json", ", octet_length(json)"),
        );
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .db()?;
        let stmt = tx.prepare_cached(&sql).await.db()?;
        let rows = tx.query(&stmt, &params(&values)).await.db()?;
        let sized = rows
            .iter()
            .map(|row| {
                let size: i32 = row.try_get(11).db()?;
                let record = audit_from_row(row, Some(String::new()))?;
                Ok((record, usize::try_from(size).unwrap_or(usize::MAX)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut page = AuditPage::fill(sized, q.limit, budget, Ok::<_, StoreError>)?;
        let seqs = page
            .rows
            .iter()
            .map(|r| sql_seq(r.seq))
            .collect::<Result<Vec<_>, _>>()?;
        let stmt = tx
            .prepare_cached("SELECT seq, json FROM audit WHERE seq = ANY($1) ORDER BY seq")
            .await
            .db()?;
        let docs = tx.query(&stmt, &[&seqs]).await.db()?;
        tx.commit().await.db()?;
        if docs.len() != page.rows.len() {
            return Err(StoreError::Corrupt {
                id: "audit page".into(),
                reason: "a record vanished between the page's two reads".into(),
            });
        }
        for (record, doc) in page.rows.iter_mut().zip(&docs) {
            let seq: i64 = doc.try_get(0).db()?;
            let corrupt = |reason: String| StoreError::Corrupt {
                id: format!("audit {seq}"),
                reason,
            };
            if seq_from_sql(seq, "audit")? != record.seq {
                return Err(corrupt("the page's two reads disagree".into()));
            }
            let json: &[u8] = doc.try_get(1).db()?;
            let json =
                std::str::from_utf8(json).map_err(|_| corrupt("json is not UTF-8".into()))?;
            record.json = AuditPage::document(record.seq, json, budget.bodies)?;
        }
        Ok(page)
    }

    async fn drop_audit_through(&self, checkpoint: &StoredCheckpoint) -> Result<u64, StoreError> {
        let seq = sql_seq(checkpoint.seq)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        tx.batch_execute(WRITE_LOCK).await.db()?;
        let mut hashes = Vec::with_capacity(2);
        for table in ["audit", "audit_checkpoints"] {
            let stmt = tx
                .prepare_cached(&format!("SELECT hash FROM {table} WHERE seq = $1"))
                .await
                .db()?;
            let row = tx.query_opt(&stmt, &[&seq]).await.db()?;
            hashes.push(row.map(|r| r.try_get::<_, String>(0)).transpose().db()?);
        }
        let (kept, existing) = (hashes[0].as_deref(), hashes[1].as_deref());
        if !check_checkpoint(checkpoint, kept, existing)? {
            return Ok(0);
        }
        // The checkpoint goes in first: the delete trigger allows only seqs at or below the latest.
        let stmt = tx
            .prepare_cached(
                "INSERT INTO audit_checkpoints (seq, hash, ts_ms, json) VALUES ($1, $2, $3, $4)",
            )
            .await
            .db()?;
        tx.execute(
            &stmt,
            &[
                &seq,
                &checkpoint.hash,
                &checkpoint.ts_ms,
                &checkpoint.json.as_bytes(),
            ],
        )
        .await
        .db()?;
        let stmt = tx
            .prepare_cached("DELETE FROM audit WHERE seq <= $1")
            .await
            .db()?;
        let dropped = tx.execute(&stmt, &[&seq]).await.db()?;
        tx.commit().await.db()?;
        Ok(dropped)
    }

    async fn audit_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.all_rows(
            "SELECT seq, hash, ts_ms, json FROM audit_checkpoints ORDER BY seq",
            |row| {
                let seq = seq_from_sql(row.try_get(0).db()?, "checkpoint")?;
                Ok(StoredCheckpoint {
                    seq,
                    hash: row.try_get(1).db()?,
                    ts_ms: row.try_get(2).db()?,
                    json: utf8(row.try_get(3).db()?, &format!("checkpoint {seq}"), "json")?,
                })
            },
        )
        .await
    }

    async fn audit_bounds(&self) -> Result<Option<AuditBounds>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT min(seq), max(seq), count(*) FROM audit")
            .await
            .db()?;
        let row = client.query_one(&stmt, &[]).await.db()?;
        let (first, last, count): (Option<i64>, Option<i64>, i64) = (
            row.try_get(0).db()?,
            row.try_get(1).db()?,
            row.try_get(2).db()?,
        );
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        Ok(Some(AuditBounds {
            first_seq: seq_from_sql(first, "audit")?,
            last_seq: seq_from_sql(last, "audit")?,
            count: count.unsigned_abs(),
        }))
    }
}

/// A query parameter, owned so a built query can outlive the [`AuditQuery`] it came from.
enum Value {
    /// A BIGINT (seqs, times, the limit).
    Int(i64),
    /// An INTEGER (the status).
    Int4(i32),
    Text(String),
    Bytes(Vec<u8>),
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| match v {
            Value::Int(i) => i as &(dyn ToSql + Sync),
            Value::Int4(i) => i as &(dyn ToSql + Sync),
            Value::Text(t) => t as &(dyn ToSql + Sync),
            Value::Bytes(b) => b as &(dyn ToSql + Sync),
        })
        .collect()
}

/// The SELECT of `columns` for `q` (whose limit is not 0) with only the filters that are set,
/// and its parameters in order.
fn query_sql(q: &AuditQuery, columns: &str) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut push = |clause: &str, value| {
        values.push(value);
        // `$n` stands for the value just pushed.
        clauses.push(clause.replace('?', &format!("${}", values.len())));
    };
    if let Some(after) = q.after_seq {
        push("seq > ?", Value::Int(sql_seq_clamped(after)));
    }
    if let Some(from) = q.from_ms {
        push("ts_ms >= ?", Value::Int(from));
    }
    if let Some(to) = q.to_ms {
        push("ts_ms < ?", Value::Int(to));
    }
    let bytes = |s: &Option<String>| s.as_ref().map(|s| Value::Bytes(s.clone().into_bytes()));
    for (clause, value) in [
        ("key_id = ?", bytes(&q.key_id)),
        ("account = ?", bytes(&q.account)),
        ("workflow = ?", bytes(&q.workflow)),
        ("kind = ?", q.kind.clone().map(Value::Text)),
        // Bytes compared exactly: no prefix, case folding or pattern.
        ("? = ANY(decisions)", bytes(&q.decision)),
        ("status = ?", q.status.map(|s| Value::Int4(s.into()))),
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
    values.push(Value::Int(sql_limit(q.limit)));
    let sql = format!(
        "SELECT {columns} FROM audit {filter} ORDER BY seq LIMIT ${}",
        values.len()
    );
    (sql, values)
}

/// The record of `row` (the columns of [`COLUMNS`]); its document is `json` if given, else the
/// row's twelfth column.
fn audit_from_row(row: &Row, json: Option<String>) -> Result<StoredAudit, StoreError> {
    let seq: i64 = row.try_get(0).db()?;
    let id = format!("audit {seq}");
    let corrupt = |reason: &str| StoreError::Corrupt {
        id: id.clone(),
        reason: reason.to_string(),
    };
    let text = |i: usize, name: &str| -> Result<Option<String>, StoreError> {
        let raw: Option<Vec<u8>> = row.try_get(i).db()?;
        raw.map(|b| utf8(b, &id, name)).transpose()
    };
    let status: i32 = row.try_get(7).db()?;
    let decisions: Vec<Vec<u8>> = row.try_get(8).db()?;
    let json = match json {
        Some(json) => json,
        None => utf8(row.try_get(11).db()?, &id, "json")?,
    };
    Ok(StoredAudit {
        seq: seq_from_sql(seq, "audit")?,
        ts_ms: row.try_get(1).db()?,
        kind: row.try_get(2).db()?,
        request_id: utf8(row.try_get(3).db()?, &id, "request_id")?,
        key_id: text(4, "key_id")?,
        account: text(5, "account")?,
        workflow: text(6, "workflow")?,
        status: u16::try_from(status).map_err(|_| corrupt("status is not an HTTP status"))?,
        decisions: decisions
            .into_iter()
            .map(|d| utf8(d, &id, "decisions"))
            .collect::<Result<_, _>>()?,
        prev_hash: row.try_get(9).db()?,
        hash: row.try_get(10).db()?,
        json,
    })
}

fn opt_bytes(s: &Option<String>) -> Option<&[u8]> {
    s.as_deref().map(str::as_bytes)
}

/// `bytes` as a string, or a corrupt-row error naming `id` and `column`.
fn utf8(bytes: Vec<u8>, id: &str, column: &str) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt {
        id: id.to_string(),
        reason: format!("{column} is not UTF-8"),
    })
}

fn tail_of(row: &Row) -> Result<AuditTail, StoreError> {
    Ok(AuditTail {
        seq: seq_from_sql(row.try_get(0).db()?, "audit")?,
        hash: row.try_get(1).db()?,
    })
}

/// `seq` as PostgreSQL's BIGINT; a seq past i64::MAX (2^63 records) cannot be stored.
fn sql_seq(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt {
        id: format!("audit {seq}"),
        reason: "seq is beyond PostgreSQL's BIGINT range".into(),
    })
}

fn sql_seq_clamped(seq: u64) -> i64 {
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
