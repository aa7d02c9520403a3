//! The audit log's store: append-only, hash-chained records kept opaque beside the columns that
//! find them, and the signed checkpoints retention leaves behind.
//!
//! The store never computes a hash (that is `moat-audit`'s job); it only checks that each batch
//! continues the stored chain by seq and by `prev_hash`, so two writers cannot fork the log and a
//! writer with a stale tail cannot overwrite or skip records.

use crate::StoreError;
use async_trait::async_trait;

/// One audit record as stored: the sealed JSON document, byte for byte, plus the fields that are
/// indexed or filtered on (copies of what the document says; the hash covers only `json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAudit {
    /// Position in the log: 1-based, gapless, assigned by the writer.
    pub seq: u64,
    /// When the record was made, Unix milliseconds.
    pub ts_ms: i64,
    /// `request`, `read` (a read of the log is itself recorded) or `incident`.
    pub kind: String,
    /// The request's id.
    pub request_id: String,
    /// The virtual key's public id, if the request authenticated.
    pub key_id: Option<String>,
    /// The account, if known.
    pub account: Option<String>,
    /// The workflow, if known.
    pub workflow: Option<String>,
    /// The HTTP status returned.
    pub status: u16,
    /// `stage:outcome` tags such as `filter:deny`, `limits:deny`, `detection:throttle`.
    pub decisions: Vec<String>,
    /// The previous record's hash, hex.
    pub prev_hash: String,
    /// This record's hash, hex.
    pub hash: String,
    /// The whole record as written; stored and returned byte for byte.
    pub json: String,
}

impl StoredAudit {
    /// The row of a sealed record: the document as serialized (the hash covers exactly these
    /// bytes) plus its indexed fields.
    pub fn of(record: &moat_audit::AuditRecord) -> StoredAudit {
        StoredAudit {
            seq: record.seq,
            ts_ms: record.ts_ms,
            kind: record.kind.as_str().to_string(),
            request_id: record.request_id.clone(),
            key_id: record.key_id.clone(),
            account: record.account.clone(),
            workflow: record.workflow.clone(),
            status: record.status,
            decisions: record
                .decisions
                .iter()
                .map(|d| format!("{}:{}", d.stage, d.outcome))
                .collect(),
            prev_hash: record.prev_hash.clone(),
            hash: record.hash.clone(),
            // Serializing a record cannot fail: every map key is a string.
            json: serde_json::to_string(record).unwrap_or_default(),
        }
    }
}

/// Which records [`AuditStore::query_audit`] returns: every filter that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Records made at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Records made before this time (Unix ms, exclusive).
    pub to_ms: Option<i64>,
    /// Records of this key.
    pub key_id: Option<String>,
    /// Records of this account.
    pub account: Option<String>,
    /// Records of this workflow.
    pub workflow: Option<String>,
    /// Records with this HTTP status.
    pub status: Option<u16>,
    /// Records carrying this decision tag, compared exactly (`filter:deny` does not match
    /// `filter:deny-all` or `Filter:deny`).
    pub decision: Option<String>,
    /// Records of this kind.
    pub kind: Option<String>,
    /// The cursor: only records with a seq above this (the last seq of the previous page).
    pub after_seq: Option<u64>,
    /// At most this many records; 0 returns none.
    pub limit: usize,
}

impl AuditQuery {
    /// A query with no filters returning at most `limit` records.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Whether `record` passes every filter set (the cursor included, the limit not): the
    /// semantics every backend implements, and the memory backend's implementation.
    pub fn matches(&self, record: &StoredAudit) -> bool {
        let same = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        self.from_ms.is_none_or(|f| record.ts_ms >= f)
            && self.to_ms.is_none_or(|t| record.ts_ms < t)
            && same(&self.key_id, &record.key_id)
            && same(&self.account, &record.account)
            && same(&self.workflow, &record.workflow)
            && self.status.is_none_or(|s| record.status == s)
            && self
                .decision
                .as_ref()
                .is_none_or(|d| record.decisions.contains(d))
            && self.kind.as_ref().is_none_or(|k| &record.kind == k)
            && self.after_seq.is_none_or(|a| record.seq > a)
    }
}

/// How much one page of [`AuditStore::audit_page`] may read, and whether it keeps bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBudget {
    /// The page ends before the record that would take the stored size of its records (their
    /// JSON as stored, bodies included) past this many bytes; its first record is returned
    /// whatever its size. Bounds the memory and time one page takes, whoever reads it.
    pub max_bytes: usize,
    /// Whether records keep `request_body` and `response_body`. Without, both fields are removed
    /// from each record's JSON as it is read (so no body is ever copied out of the store), and
    /// the record no longer verifies against its hash.
    pub bodies: bool,
}

/// One page of [`AuditStore::audit_page`]; the default is the empty last page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// The records, in seq order.
    pub rows: Vec<StoredAudit>,
    /// When more records match (past the query's limit or the page's byte budget): the seq to
    /// pass as the next query's `after_seq`. `None` when this page holds the last.
    pub next_after_seq: Option<u64>,
}

impl AuditPage {
    /// The query a backend runs for a page of `q`: one record more than its limit, so the page
    /// knows whether more match. `None` when the limit is 0: the page is empty
    /// ([`AuditPage::default`]) without reading anything.
    pub fn probe(q: &AuditQuery) -> Option<AuditQuery> {
        (q.limit > 0).then(|| {
            let mut one_more = q.clone();
            one_more.limit = q.limit.saturating_add(1);
            one_more
        })
    }

    /// What a page shows of stored record `seq` whose JSON is `json`: all of it, or without
    /// bodies; a record whose JSON cannot be read that way is `Corrupt`.
    pub fn document(seq: u64, json: &str, bodies: bool) -> Result<String, StoreError> {
        if bodies {
            return Ok(json.to_owned());
        }
        without_bodies(json).map_err(|e| StoreError::Corrupt {
            id: format!("audit {seq}"),
            reason: e.to_string(),
        })
    }

    /// Fills a page from `rows` (at most `limit + 1` matching records in seq order, each with
    /// its stored size) within `limit` and `budget`; `json_of` gives a record's JSON, whole or
    /// without bodies, and is called only for records the page keeps. For backends.
    pub fn fill<R, E>(
        rows: impl IntoIterator<Item = (R, usize)>,
        limit: usize,
        budget: PageBudget,
        mut json_of: impl FnMut(R) -> Result<StoredAudit, E>,
    ) -> Result<AuditPage, E> {
        let mut page = AuditPage {
            rows: Vec::new(),
            next_after_seq: None,
        };
        let mut used = 0usize;
        for (row, size) in rows {
            let full = page.rows.len() >= limit
                || (!page.rows.is_empty() && used.saturating_add(size) > budget.max_bytes);
            if full {
                page.next_after_seq = page.rows.last().map(|r| r.seq);
                break;
            }
            used = used.saturating_add(size);
            page.rows.push(json_of(row)?);
        }
        Ok(page)
    }
}

/// `json` (a stored record) without its `request_body` and `response_body` fields: read
/// field by field, never as a tree, so a body of any size or depth costs one scan.
pub fn without_bodies(json: &str) -> Result<String, serde_json::Error> {
    let mut record = moat_audit::raw::RawObject::parse(json)?;
    record.remove("request_body");
    record.remove("response_body");
    serde_json::to_string(&record)
}

/// A retention checkpoint: the last dropped record's seq and hash, signed by the caller, so
/// verification of what remains starts from a trusted link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The last dropped record's seq.
    pub seq: u64,
    /// The last dropped record's hash, hex.
    pub hash: String,
    /// When the checkpoint was made, Unix milliseconds.
    pub ts_ms: i64,
    /// The signed checkpoint document as written; stored byte for byte.
    pub json: String,
}

/// Where a writer continues the chain: the next record has seq `seq + 1` and `prev_hash` `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTail {
    /// The last seq written (kept or dropped behind a checkpoint).
    pub seq: u64,
    /// Its hash, hex.
    pub hash: String,
}

/// The records currently kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditBounds {
    /// The lowest kept seq.
    pub first_seq: u64,
    /// The highest kept seq.
    pub last_seq: u64,
    /// How many records are kept: `last_seq - first_seq + 1` unless rows were removed behind the
    /// store's back, which verification reports.
    pub count: u64,
}

/// Why an audit write was refused. The store is unchanged; the caller's idea of the chain
/// disagrees with the store's (another writer appended, or a retried write already landed), so it
/// must re-read [`AuditStore::audit_tail`] rather than retry blindly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// A record's seq is not the one after its predecessor's (the tail's, or the previous record's
    /// in the batch): a gap, a replay or a fork.
    #[error("record {found} does not follow the log: expected seq {expected}")]
    Gap {
        /// The seq the store expected.
        expected: u64,
        /// The seq the batch had there.
        found: u64,
    },
    /// A record's `prev_hash` is not its predecessor's hash.
    #[error("record {seq} does not link to its predecessor's hash")]
    Link {
        /// The record whose `prev_hash` is wrong.
        seq: u64,
    },
    /// A checkpoint names a seq the log does not keep (never written, or already dropped behind
    /// an earlier checkpoint).
    #[error("checkpoint at seq {seq} names no kept record")]
    UnknownCheckpoint {
        /// The checkpoint's seq.
        seq: u64,
    },
    /// A checkpoint's hash is not the hash of the record it names.
    #[error("checkpoint at seq {seq} does not match the record's hash")]
    CheckpointMismatch {
        /// The checkpoint's seq.
        seq: u64,
    },
}

/// The append-only, hash-chained audit log (issue 5).
///
/// One writer task appends in batches; readers page through by seq. Every backend runs
/// [`crate::conformance::audit_store`].
///
/// **Durability.** What "returned `Ok`" guarantees differs by backend, and the gateway's
/// `audit.durability = "sync"` promises a record is durable before its response completes:
/// - `MemoryStore`: nothing survives the process.
/// - `SqliteStore`: the batch is committed to the WAL. By default audit writes run with
///   `synchronous = FULL`, so the WAL is fsynced before `append_audit` returns and the batch
///   survives a process crash (`kill -9`) *and* an OS crash or power loss. With
///   [`crate::SqliteStore::with_audit_fsync`]`(false)` they run with the store's
///   `synchronous = NORMAL`: a commit still survives a process crash (it is in the OS page cache)
///   but an OS crash can roll back every transaction since the last WAL checkpoint (the database
///   stays consistent; the newest records vanish, which a restarted writer sees as a shorter tail).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `batch` atomically (every record or none), in seq order.
    ///
    /// The first record must have seq `tail.seq + 1` (1 on an empty log) and `prev_hash`
    /// `tail.hash` (not checked for seq 1, whose predecessor is the writer's genesis value); each
    /// later record must follow the one before it the same way. Otherwise fails with
    /// [`StoreError::AuditChain`] and stores nothing. An empty batch is a no-op.
    async fn append_audit(&self, batch: &[StoredAudit]) -> Result<(), StoreError>;

    /// Where a restarted writer continues the chain: the last record's seq and hash, or, if every
    /// record has been dropped, the latest checkpoint's; `None` for a log never written.
    async fn audit_tail(&self) -> Result<Option<AuditTail>, StoreError>;

    /// Records with `from_seq <= seq <= to_seq`, in seq order, at most `limit` (verification
    /// streams the log in pages of these).
    async fn audit_range(
        &self,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredAudit>, StoreError>;

    /// Records matching `q` (see [`AuditQuery::matches`]), in seq order, at most `q.limit`. To
    /// page, pass the last returned seq as the next query's `after_seq`.
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredAudit>, StoreError>;

    /// A page of the records matching `q`, in seq order: at most `q.limit`, and within
    /// `budget` (see [`PageBudget`]), with the cursor of the next page when more match. The
    /// admin API's reads; the SQLite store reads no body it does not return.
    async fn audit_page(
        &self,
        q: &AuditQuery,
        budget: PageBudget,
    ) -> Result<AuditPage, StoreError> {
        let Some(one_more) = AuditPage::probe(q) else {
            return Ok(AuditPage::default());
        };
        let rows = self.query_audit(&one_more).await?;
        let sized = rows.into_iter().map(|r| {
            let size = r.json.len();
            (r, size)
        });
        AuditPage::fill(sized, q.limit, budget, |mut row| {
            if !budget.bodies {
                row.json = AuditPage::document(row.seq, &row.json, false)?;
            }
            Ok(row)
        })
    }

    /// Retention: atomically stores `checkpoint` and deletes every record with
    /// `seq <= checkpoint.seq`; returns how many went.
    ///
    /// The checkpoint must name a kept record and carry its hash, else
    /// [`ChainBreak::UnknownCheckpoint`] or [`ChainBreak::CheckpointMismatch`] and nothing
    /// changes. Repeating a checkpoint already stored (same seq and hash) returns 0, so a retry
    /// after a lost reply is harmless.
    async fn drop_audit_through(&self, checkpoint: &StoredCheckpoint) -> Result<u64, StoreError>;

    /// Every checkpoint, oldest first; the latest anchors verification of what remains.
    async fn audit_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError>;

    /// The first and last seq kept and how many records that is; `None` if none is kept.
    async fn audit_bounds(&self) -> Result<Option<AuditBounds>, StoreError>;
}

/// Checks that `batch` continues the chain after `tail` (see [`AuditStore::append_audit`]); every
/// backend calls it, under its write lock, before writing anything.
pub fn check_batch(tail: Option<&AuditTail>, batch: &[StoredAudit]) -> Result<(), ChainBreak> {
    let mut expected_seq = tail.map_or(1, |t| t.seq.saturating_add(1));
    let mut expected_prev = tail.map(|t| t.hash.as_str());
    for record in batch {
        if record.seq != expected_seq {
            return Err(ChainBreak::Gap {
                expected: expected_seq,
                found: record.seq,
            });
        }
        if expected_prev.is_some_and(|prev| prev != record.prev_hash) {
            return Err(ChainBreak::Link { seq: record.seq });
        }
        expected_seq = record.seq.saturating_add(1);
        expected_prev = Some(&record.hash);
    }
    Ok(())
}

/// Checks that `checkpoint` may drop records: `kept_hash` is the hash of the record kept at its
/// seq (if any), `existing_hash` that of the checkpoint already stored at its seq (if any).
/// `Ok(false)` means it is a repeat of a stored checkpoint, so there is nothing to do.
pub fn check_checkpoint(
    checkpoint: &StoredCheckpoint,
    kept_hash: Option<&str>,
    existing_hash: Option<&str>,
) -> Result<bool, ChainBreak> {
    let seq = checkpoint.seq;
    match (kept_hash, existing_hash) {
        (Some(hash), _) if hash == checkpoint.hash => Ok(true),
        (Some(_), _) => Err(ChainBreak::CheckpointMismatch { seq }),
        (None, Some(hash)) if hash == checkpoint.hash => Ok(false),
        (None, Some(_)) => Err(ChainBreak::CheckpointMismatch { seq }),
        (None, None) => Err(ChainBreak::UnknownCheckpoint { seq }),
    }
}
