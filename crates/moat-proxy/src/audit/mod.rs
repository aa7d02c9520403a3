//! The audit log's writer: every finished request becomes an `AuditRecord` handed to one writer
//! task over a bounded queue; the task seals records into the hash chain (it is the chain's only
//! writer) and appends them in batches, one transaction each.
//!
//! - `batch`: a record is written within `audit.flush_interval` (or sooner when `batch_max`
//!   records wait).
//! - `sync`: the request's response does not complete until its record is committed (the
//!   request path awaits the writer's acknowledgement).
//!
//! A full queue is counted (`moat_audit_queue_full_total`) and warned about, and the record still
//! goes: it waits for room in a task of its own. A failed append is retried with backoff, the
//! batch kept; nothing is dropped.

mod record;
mod resume;
pub mod retention;
pub mod witness;

pub(crate) use record::{build, keeps_bodies, AuditInput};
pub use record::{Capture, CAPTURE_MAX};

use moat_audit::{AuditKeys, AuditRecord, Chain, Head};
use moat_config::AuditConfig;
use moat_store::{AuditStore, StoreError, StoredAudit};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One record on its way to the writer, with the sender a `sync` request waits on.
struct Job {
    /// `None` is a barrier: acknowledged once everything queued before it is committed.
    record: Option<AuditRecord>,
    ack: Option<oneshot::Sender<()>>,
}

/// The gateway's handle on its audit log.
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    config: AuditConfig,
    /// The audit key: signs checkpoints and heads, keys body digests and pseudonyms.
    keys: Arc<AuditKeys>,
    /// Stops the retention task when the log goes.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl AuditLog {
    /// Continues the chain where `store` ends and starts the writer task (and, with
    /// `audit.retention`, the retention task; with `[audit.witness]`, the witness task). The
    /// writer ends when every `AuditLog` handle is dropped and the queue is drained.
    ///
    /// Refuses (`StoreError::Corrupt`) a store whose checkpoints `keys` did not sign, or that no
    /// longer holds the witness's last head (`resume.rs`).
    pub async fn start(
        store: Arc<dyn AuditStore>,
        config: AuditConfig,
        clock: Arc<dyn moat_core::Clock>,
        keys: Arc<AuditKeys>,
    ) -> Result<(Arc<AuditLog>, JoinHandle<()>), StoreError> {
        resume::check(store.as_ref(), &keys, config.witness.as_ref()).await?;
        let chain = match store.audit_tail().await? {
            Some(tail) => Chain::resume(tail.seq, tail.hash),
            None => Chain::start(),
        };
        let (tx, rx) = mpsc::channel(config.queue);
        let stop = tokio_util::sync::CancellationToken::new();
        if let Some(keep) = config.retention {
            let (store, keys, clock) = (Arc::clone(&store), Arc::clone(&keys), Arc::clone(&clock));
            retention::spawn(store, keys, keep, clock, stop.clone());
        }
        let (head, heads) = tokio::sync::watch::channel(None);
        if let Some(w) = &config.witness {
            witness::spawn(w.clone(), Arc::clone(&keys), clock, heads);
        }
        let task = tokio::spawn(write_loop(
            rx,
            store,
            chain,
            config.flush_interval,
            config.batch_max,
            head,
        ));
        let log = AuditLog {
            tx,
            config,
            keys,
            stop,
        };
        Ok((Arc::new(log), task))
    }

    /// The audit key (for keyed digests and pseudonyms).
    pub fn keys(&self) -> &AuditKeys {
        &self.keys
    }

    /// The audit settings.
    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// Queues `record`; in `sync` mode returns what to await before the response completes.
    pub fn submit(&self, record: AuditRecord) -> Option<oneshot::Receiver<()>> {
        let (ack, done) = match self.config.durability {
            moat_config::Durability::Sync => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            moat_config::Durability::Batch => (None, None),
        };
        match self.tx.try_send(Job {
            record: Some(record),
            ack,
        }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                metrics::counter!("moat_audit_queue_full_total").increment(1);
                tracing::warn!("audit queue full: the record waits for room (raise audit.queue or check the store)");
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if tx.send(job).await.is_err() {
                        tracing::error!("audit writer stopped before a queued record was written");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::counter!("moat_audit_lost_total").increment(1);
                tracing::error!("audit writer has stopped: a record could not be queued");
            }
        }
        done
    }
}

impl AuditLog {
    /// Waits until every record queued so far is committed (graceful shutdown, tests).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        let barrier = Job {
            record: None,
            ack: Some(tx),
        };
        if self.tx.send(barrier).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Collects a batch (the first record, then whatever arrives within `flush` up to `max`),
/// seals and appends it, acknowledges it; until the queue closes and is drained.
async fn write_loop(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn AuditStore>,
    mut chain: Chain,
    flush: Duration,
    max: usize,
    head: tokio::sync::watch::Sender<Option<Head>>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + flush;
        while jobs.len() < max {
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
        let mut batch = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(record) = job.record {
                let sealed = chain.seal(record);
                batch.push(StoredAudit::of(&sealed));
            }
            acks.extend(job.ack);
        }
        if let Some(last) = batch.last() {
            append(store.as_ref(), &batch).await;
            // The witness signs heads off this path; publishing never waits.
            head.send_replace(Some(Head {
                seq: last.seq,
                hash: last.hash.clone(),
            }));
        }
        metrics::counter!("moat_audit_records_total").increment(batch.len() as u64);
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Appends until it works: a batch is never dropped (its records are sealed into the chain).
async fn append(store: &dyn AuditStore, batch: &[StoredAudit]) {
    let mut wait = Duration::from_millis(50);
    loop {
        match store.append_audit(batch).await {
            Ok(()) => return,
            Err(e) => {
                metrics::counter!("moat_audit_write_errors_total").increment(1);
                tracing::error!(error = %e, records = batch.len(), "audit append failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
