//! Retention: the oldest records dropped behind a signed checkpoint, after checking the chain
//! of what is dropped, so `moat audit verify` still holds for what remains. Run by the gateway
//! every [`RETENTION_INTERVAL`] when `audit.retention` is set, and by `moat audit prune`.

use moat_audit::{Anchor, AuditKeys, AuditRecord, Checkpoint, Report};
use moat_store::{AuditStore, StoreError, StoredCheckpoint};
use std::time::Duration;

/// How often a running gateway applies `audit.retention`.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Records read per page.
const PAGE: usize = 1_000;

/// Which records to drop: the oldest run of them.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// Those made before this time (Unix ms); the newest record is always kept, so the chain
    /// has a head to continue from.
    Before(i64),
    /// Those up to and including this seq (never the newest record).
    ThroughSeq(u64),
}

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pruned {
    /// Nothing was old enough (or the log is empty).
    Nothing,
    /// `count` records through seq `through` dropped behind `checkpoint` (its JSON), after
    /// `checked` records verified.
    Dropped {
        /// Records dropped.
        count: u64,
        /// The last dropped seq.
        through: u64,
        /// Records whose chain was checked.
        checked: u64,
        /// The signed checkpoint, as stored.
        checkpoint: String,
    },
}

/// Why a prune did nothing.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A record or checkpoint in the store cannot be read.
    #[error("{0}")]
    Unreadable(String),
    /// The records to drop do not verify: a checkpoint must never vouch for a broken chain.
    #[error("the records to prune do not verify ({0}); nothing pruned")]
    Broken(String),
    /// The cut would drop the newest record.
    #[error("pruning through seq {0} would drop every record, head included; keep at least the last one")]
    WouldDropHead(u64),
}

/// Drops the records `cut` names behind a checkpoint signed with `keys` at `now_ms`, after
/// checking the latest stored checkpoint's signature and the chain of what is dropped.
pub async fn prune(
    store: &dyn AuditStore,
    keys: &AuditKeys,
    cut: Cut,
    now_ms: i64,
) -> Result<Pruned, PruneError> {
    let Some(bounds) = store.audit_bounds().await? else {
        return Ok(Pruned::Nothing);
    };
    if let Cut::ThroughSeq(seq) = cut {
        if seq >= bounds.last_seq {
            return Err(PruneError::WouldDropHead(seq));
        }
    }
    let anchor = match store.audit_checkpoints().await?.last() {
        Some(c) => Some(serde_json::from_str::<Checkpoint>(&c.json).map_err(|e| {
            PruneError::Unreadable(format!("checkpoint at seq {} is unreadable: {e}", c.seq))
        })?),
        None => None,
    };
    let mut report = moat_audit::verify(std::iter::empty(), None);
    let mut pending: Vec<AuditRecord> = Vec::new();
    let mut last: Option<AuditRecord> = None;
    let mut from = bounds.first_seq;
    'pages: while from < bounds.last_seq {
        // The newest record is never read for dropping.
        let page = store.audit_range(from, bounds.last_seq - 1, PAGE).await?;
        let Some(page_last) = page.last().map(|r| r.seq) else {
            break;
        };
        for row in page {
            let record: AuditRecord = serde_json::from_str(&row.json).map_err(|e| {
                PruneError::Unreadable(format!("record {} is unreadable: {e}", row.seq))
            })?;
            let drop = match cut {
                Cut::Before(t) => record.ts_ms < t,
                Cut::ThroughSeq(s) => record.seq <= s,
            };
            if !drop {
                break 'pages;
            }
            pending.push(record.clone());
            last = Some(record);
            if pending.len() >= PAGE {
                report = check(&pending, anchor.as_ref(), keys, report)?;
                pending.clear();
            }
        }
        from = page_last + 1;
    }
    report = check(&pending, anchor.as_ref(), keys, report)?;
    let Some(last) = last else {
        return Ok(Pruned::Nothing);
    };
    let checkpoint = Checkpoint::covering(&last, now_ms, keys);
    let json = serde_json::to_string(&checkpoint)
        .map_err(|e| PruneError::Unreadable(format!("checkpoint cannot be written: {e}")))?;
    let stored = StoredCheckpoint {
        seq: checkpoint.seq,
        hash: checkpoint.hash.clone(),
        ts_ms: checkpoint.ts_ms,
        json: json.clone(),
    };
    let count = store.drop_audit_through(&stored).await?;
    Ok(Pruned::Dropped {
        count,
        through: last.seq,
        checked: report.checked,
        checkpoint: json,
    })
}

/// Verifies `records`, continuing the chain checked so far (its head as the anchor).
fn check(
    records: &[AuditRecord],
    anchor: Option<&Checkpoint>,
    keys: &AuditKeys,
    so_far: Report,
) -> Result<Report, PruneError> {
    if records.is_empty() {
        return Ok(so_far);
    }
    // The chain checked so far continues from its head, signed here only to serve as the anchor.
    let resume = so_far
        .head
        .as_ref()
        .map(|head| Checkpoint::new(head.seq, head.hash.clone(), 0, keys));
    let public = keys.verifying_key();
    let from = resume.as_ref().or(anchor).map(|c| Anchor {
        checkpoint: c,
        key: &public,
    });
    let report = moat_audit::verify(records.iter().cloned(), from);
    if let Some(bad) = &report.first_bad {
        return Err(PruneError::Broken(bad.to_string()));
    }
    Ok(Report {
        checked: so_far.checked + report.checked,
        ..report
    })
}

/// Applies `retention` every [`RETENTION_INTERVAL`] (and once at start) until `done`.
pub(crate) fn spawn(
    store: std::sync::Arc<dyn AuditStore>,
    keys: std::sync::Arc<AuditKeys>,
    retention: Duration,
    clock: std::sync::Arc<dyn moat_core::Clock>,
    done: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let keep = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                _ = done.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = clock.now_ms();
            match prune(
                store.as_ref(),
                &keys,
                Cut::Before(now.saturating_sub(keep)),
                now,
            )
            .await
            {
                Ok(Pruned::Nothing) => {}
                Ok(Pruned::Dropped { count, through, .. }) => {
                    metrics::counter!("moat_audit_pruned_total").increment(count);
                    tracing::info!(
                        records = count,
                        through_seq = through,
                        "audit retention: dropped records behind a signed checkpoint"
                    );
                }
                Err(e) => {
                    metrics::counter!("moat_audit_retention_errors_total").increment(1);
                    tracing::error!(error = %e, "audit retention failed");
                }
            }
        }
    })
}
