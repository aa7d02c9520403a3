//! The audit log's runtime, over an `AuditStore`: the writer task, its health and admission, the
//! witness, resume checks and retention.
//!
//! Every finished request becomes an `AuditRecord` handed to one writer
//! task; the task seals records into the hash chain (it is the chain's only writer) and appends
//! them in batches, one transaction each.
//!
//! - `batch`: a record is written within `audit.flush_interval` (or sooner when `batch_max`
//!   records wait).
//! - `sync`: the request's response does not complete until its record is committed (the
//!   request path awaits the writer's acknowledgement, at most `audit.commit_timeout`; past it
//!   the request is answered 503).
//!
//! The writer never wedges and never hides a failure (`health.rs`, `writer.rs`): records not yet
//! committed are counted, and at `audit.max_backlog` new requests are refused with 503 before
//! anything goes upstream ([`AuditLog::admit`]), so memory stays bounded and no answer is made
//! whose record cannot be kept. A failed append is retried with backoff, the batch kept, while
//! `/readyz` is red; a batch refused as not following the stored chain is re-sealed onto the
//! store's tail, and if that is refused too the gateway refuses every request until it works.
//! Shutdown flushes for at most `server.shutdown_grace` and logs what was not written.

mod health;
mod resume;
pub mod retention;
pub mod witness;
mod writer;

pub use witness::HeadPoster;

use health::Health;
use moat_audit::{AuditKeys, AuditRecord, Chain};
use moat_config::AuditConfig;
use moat_store::{AuditStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use writer::Job;

/// Why the audit log cannot take a request now (the gateway answers it 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// Records cannot be kept now: the backlog is full, appends fail, the chain is broken, a
    /// `sync` record was not committed in time, or the writer has stopped.
    #[error("{0}")]
    Unavailable(String),
}

/// The gateway's handle on its audit log.
pub struct AuditLog {
    /// Unbounded, because what bounds it is admission: a request is refused at
    /// `max_backlog` records (or bytes) pending, and each admitted request sends a record or a
    /// few.
    tx: mpsc::UnboundedSender<Job>,
    health: Arc<Health>,
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
    /// `poster` sends the witness's heads to `[audit.witness] url` (without one, each head due
    /// there is counted and logged as a failed witness write).
    ///
    /// Refuses (`StoreError::Corrupt`) a store whose checkpoints `keys` did not sign, or that no
    /// longer holds the witness's last head (`resume.rs`).
    pub async fn start(
        store: Arc<dyn AuditStore>,
        config: AuditConfig,
        clock: Arc<dyn moat_core::Clock>,
        keys: Arc<AuditKeys>,
        poster: Option<Arc<dyn HeadPoster>>,
    ) -> Result<(Arc<AuditLog>, JoinHandle<()>), StoreError> {
        resume::check(store.as_ref(), &keys, config.witness.as_ref()).await?;
        let chain = match store.audit_tail().await? {
            Some(tail) => Chain::resume(tail.seq, tail.hash),
            None => Chain::start(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let health = Arc::new(Health::new(config.max_backlog, config.max_backlog_bytes));
        metrics::gauge!("moat_audit_writable").set(1.0);
        metrics::gauge!("moat_audit_backlog").set(0.0);
        metrics::gauge!("moat_audit_backlog_bytes").set(0.0);
        let stop = tokio_util::sync::CancellationToken::new();
        if let Some(keep) = config.retention {
            let (store, keys, clock) = (Arc::clone(&store), Arc::clone(&keys), Arc::clone(&clock));
            retention::spawn(store, keys, keep, clock, stop.clone());
        }
        let (head, heads) = tokio::sync::watch::channel(None);
        if let Some(w) = &config.witness {
            witness::spawn(w.clone(), Arc::clone(&keys), clock, heads, poster);
        }
        let task = tokio::spawn(writer::write_loop(
            rx,
            store,
            chain,
            Arc::clone(&health),
            writer::Batching {
                flush: config.flush_interval,
                max: config.batch_max,
            },
            head,
        ));
        let log = AuditLog {
            tx,
            health,
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

    /// Queues `record`; in `sync` mode returns what to await before the response completes
    /// (see [`AuditLog::committed`]). Never waits: admission ([`AuditLog::admit`]) is what keeps
    /// the backlog bounded.
    pub fn submit(&self, record: AuditRecord) -> Option<oneshot::Receiver<()>> {
        let (ack, done) = match self.config.durability {
            moat_config::Durability::Sync => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            moat_config::Durability::Batch => (None, None),
        };
        let weight = health::weight(&record);
        self.health.add_pending(1, weight);
        let job = Job {
            record: Some(record),
            ack,
        };
        if self.tx.send(job).is_err() {
            self.health.remove_pending(1, weight);
            metrics::counter!("moat_audit_lost_total").increment(1);
            tracing::error!("audit writer has stopped: a record could not be queued");
        }
        done
    }

    /// Whether a new request may be served now: `Err` (a 503 in the client's protocol) past
    /// `audit.max_backlog` records (or `max_backlog_bytes` of kept bodies) pending, while the chain is broken, and in `sync` durability
    /// while appends fail. Called before anything goes upstream; a refused request is counted
    /// (`moat_audit_refused_total`) but not recorded, since its record could not be kept.
    pub fn admit(&self) -> Result<(), AuditError> {
        let sync = self.config.durability == moat_config::Durability::Sync;
        self.health.admit(sync).map_err(|why| {
            metrics::counter!("moat_audit_refused_total").increment(1);
            AuditError::Unavailable(why.to_string())
        })
    }

    /// Why records cannot be written now, if they cannot (`/readyz`): appends failing, the
    /// chain broken, or the backlog full.
    pub fn unavailable(&self) -> Option<String> {
        self.health.status().err().map(|why| why.to_string())
    }

    /// Records submitted and not yet committed.
    pub fn backlog(&self) -> usize {
        self.health.pending()
    }

    /// Waits for a `sync` record's commit, at most `audit.commit_timeout`; `Err` (a 503 in the
    /// client's protocol) if it did not commit in time or the writer is gone.
    pub async fn committed(&self, ack: oneshot::Receiver<()>) -> Result<(), AuditError> {
        let timeout = self.config.commit_timeout;
        match tokio::time::timeout(timeout, ack).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(AuditError::Unavailable(
                "the audit writer has stopped".into(),
            )),
            Err(_) => {
                metrics::counter!("moat_audit_commit_timeouts_total").increment(1);
                let why = match self.health.status() {
                    Err(e) => format!(": {e}"),
                    Ok(()) => String::new(),
                };
                Err(AuditError::Unavailable(format!(
                    "the audit record was not committed within audit.commit_timeout ({} ms){why}",
                    timeout.as_millis()
                )))
            }
        }
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
        if self.tx.send(barrier).is_ok() {
            let _ = rx.await;
        }
    }

    /// [`AuditLog::flush`] for at most `limit`; returns how many records were still not
    /// committed when it gave up (0 if the flush completed), counted in `moat_audit_lost_total`
    /// and logged as an error, since the process is about to end without them.
    pub async fn flush_within(&self, limit: Duration) -> usize {
        if tokio::time::timeout(limit, self.flush()).await.is_ok() {
            return 0;
        }
        let lost = self.health.pending();
        metrics::counter!("moat_audit_lost_total").increment(lost as u64);
        tracing::error!(
            records_lost = lost,
            grace_ms = limit.as_millis() as u64,
            reason = self.unavailable().unwrap_or_default(),
            "audit flush did not finish within the shutdown grace: these records are lost"
        );
        lost
    }
}
