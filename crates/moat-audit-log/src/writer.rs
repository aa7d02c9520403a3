//! The writer task: collects batches, seals them into the chain, appends them, and keeps going
//! through failures without dropping or duplicating a record.

use super::Health;
use moat_audit::{AuditRecord, Chain, Head};
use moat_store::{AuditStore, StoreError, StoredAudit};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// One record on its way to the writer, with the sender a `sync` request waits on.
pub(super) struct Job {
    /// `None` is a barrier: acknowledged once everything queued before it is committed.
    pub(super) record: Option<AuditRecord>,
    pub(super) ack: Option<oneshot::Sender<()>>,
}

/// How records are grouped into transactions.
pub(super) struct Batching {
    /// The longest a record waits for company (batch mode).
    pub(super) flush: Duration,
    /// Records per transaction at most.
    pub(super) max: usize,
}

/// Collects a batch (the first record, then whatever arrives within `flush` up to `max`),
/// seals and appends it, acknowledges it; until the queue closes and is drained.
pub(super) async fn write_loop(
    mut rx: mpsc::UnboundedReceiver<Job>,
    store: Arc<dyn AuditStore>,
    mut chain: Chain,
    health: Arc<Health>,
    batching: Batching,
    head: tokio::sync::watch::Sender<Option<Head>>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + batching.flush;
        while jobs.len() < batching.max {
            // Sync requests wait on this batch: don't hold them for the whole interval when the
            // queue is empty.
            let waiting_sync = jobs.iter().any(|j| j.ack.is_some());
            let next = if waiting_sync {
                rx.try_recv().ok()
            } else {
                tokio::time::timeout_at(deadline, rx.recv())
                    .await
                    .ok()
                    .flatten()
            };
            match next {
                Some(job) => jobs.push(job),
                None => break,
            }
        }
        let mut acks = Vec::with_capacity(jobs.len());
        let mut records = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(record) = job.record {
                records.push(chain.seal(record));
            }
            acks.extend(job.ack);
        }
        if !records.is_empty() {
            append(store.as_ref(), &mut chain, &mut records, &health).await;
            if let Some(last) = records.last() {
                // The witness signs heads off this path; publishing never waits.
                head.send_replace(Some(Head {
                    seq: last.seq,
                    hash: last.hash.clone(),
                }));
            }
            let bytes = records.iter().map(super::health::weight).sum();
            health.remove_pending(records.len(), bytes);
            metrics::counter!("moat_audit_records_total").increment(records.len() as u64);
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Appends `records` (sealed by `chain`) until it works: a batch is never dropped.
///
/// - Any failure turns `/readyz` red (`Health::failing`) and is retried with backoff (50 ms
///   doubling to 5 s), the batch kept as it is.
/// - A refusal as not following the stored chain (another writer appended, or a retried append
///   that had in fact landed) re-reads the store's tail: if the tail is this batch's last record,
///   the batch is in; otherwise the records are re-sealed onto the tail, `chain` with them, and
///   appended again at once. If the re-sealed batch is refused too, something keeps writing to
///   the log: `Health::broken` refuses every request until an append works again.
async fn append(
    store: &dyn AuditStore,
    chain: &mut Chain,
    records: &mut Vec<AuditRecord>,
    health: &Health,
) {
    let mut batch: Vec<StoredAudit> = records.iter().map(StoredAudit::of).collect();
    let mut wait = Duration::from_millis(50);
    let mut resealed = false;
    loop {
        let error = match store.append_audit(&batch).await {
            Ok(()) => {
                health.recovered();
                return;
            }
            Err(e) => e,
        };
        metrics::counter!("moat_audit_write_errors_total").increment(1);
        let StoreError::AuditChain(chain_break) = &error else {
            tracing::error!(error = %error, records = batch.len(), "audit append failed; retrying");
            health.failing(&error.to_string());
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            continue;
        };
        metrics::counter!("moat_audit_chain_breaks_total").increment(1);
        let tail = match store.audit_tail().await {
            Ok(tail) => tail,
            Err(e) => {
                tracing::error!(error = %e, "audit chain break: the store's tail cannot be read; retrying");
                health.failing(&format!("{chain_break}; reading the tail: {e}"));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let last = batch.last();
        if let (Some(t), Some(l)) = (&tail, last) {
            if t.seq == l.seq && t.hash == l.hash {
                // An earlier attempt did commit (its reply was lost): nothing to do.
                tracing::warn!(
                    seq = t.seq,
                    "audit batch was already written by an earlier attempt"
                );
                health.recovered();
                return;
            }
        }
        // The chain this batch continued ended just before its first record. Another writer
        // can only have moved the tail forward; a tail behind it means records were removed
        // (a truncation, or a forged checkpoint with everything deleted behind it). Re-sealing
        // onto that would make the tampered tail the start of new evidence: refuse instead.
        let expected = batch.first().map_or(0, |b| b.seq.saturating_sub(1));
        let tail_seq = tail.as_ref().map_or(0, |t| t.seq);
        if tail_seq < expected {
            tracing::error!(
                error = %chain_break,
                tail_seq,
                expected,
                "audit chain break: the stored chain went backwards (records were removed); \
                 refusing to continue from it (`moat audit verify`)"
            );
            health.broken(&format!(
                "{chain_break}: the stored log ends at seq {tail_seq}, before seq {expected} \
                 this gateway wrote"
            ));
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            continue;
        }
        if resealed {
            health.broken(&format!(
                "{chain_break}: another process appends to this audit log"
            ));
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        *chain = match &tail {
            Some(t) => Chain::resume(t.seq, t.hash.clone()),
            None => Chain::start(),
        };
        tracing::error!(
            error = %chain_break,
            records = records.len(),
            tail_seq = tail.as_ref().map_or(0, |t| t.seq),
            "audit chain break: the stored chain moved; re-sealing the pending records onto its tail"
        );
        let unsealed = std::mem::take(records);
        *records = unsealed.into_iter().map(|r| chain.seal(r)).collect();
        batch = records.iter().map(StoredAudit::of).collect();
        resealed = true;
    }
}
