//! The witness: signed heads of the chain appended to a file outside the store
//! (`[audit.witness]`), so a later truncation or rewrite of the log shows
//! (`moat audit verify --witness FILE`).
//!
//! The writer publishes the head after each commit on a `watch` channel (it never waits on the
//! witness); this task signs and appends a head when `every_records` records have been written
//! since the last one, or `every` has passed with records written, and once more when the
//! writer stops. A failed write is logged and counted (`moat_audit_witness_errors_total`) and
//! retried with the next head; requests never wait on it.

use moat_audit::{AuditKeys, Head, SignedHead};
use moat_config::WitnessConfig;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// Starts the witness task; it ends when the writer drops the head's sender.
pub(crate) fn spawn(
    config: WitnessConfig,
    keys: Arc<AuditKeys>,
    clock: Arc<dyn moat_core::Clock>,
    mut heads: watch::Receiver<Option<Head>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written: Option<u64> = None;
        loop {
            let wake = tokio::select! {
                changed = heads.changed() => if changed.is_ok() { Wake::Head } else { Wake::Closed },
                _ = tick.tick() => Wake::Tick,
            };
            let closed = matches!(wake, Wake::Closed);
            let head = heads.borrow_and_update().clone();
            let Some(head) = head else {
                if closed {
                    return;
                }
                continue;
            };
            let since = head.seq.saturating_sub(written.unwrap_or(0));
            let due = match wake {
                Wake::Head => since >= config.every_records,
                Wake::Tick | Wake::Closed => since > 0,
            };
            if due && written != Some(head.seq) {
                let line = SignedHead::new(head.seq, head.hash, clock.now_ms(), &keys);
                match append(config.file.clone(), line).await {
                    Ok(()) => {
                        metrics::counter!("moat_audit_witness_heads_total").increment(1);
                        written = Some(head.seq);
                    }
                    Err(e) => {
                        metrics::counter!("moat_audit_witness_errors_total").increment(1);
                        tracing::error!(
                            error = %e,
                            file = %config.file.display(),
                            "audit witness: cannot append the signed head"
                        );
                    }
                }
            }
            if closed {
                return;
            }
        }
    })
}

/// What woke the witness.
enum Wake {
    /// The writer committed records.
    Head,
    /// `every` passed.
    Tick,
    /// The writer stopped.
    Closed,
}

/// Appends `head` as one JSON line and syncs it to disk, off the async workers.
async fn append(file: PathBuf, head: SignedHead) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut line = serde_json::to_vec(&head).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)?;
        f.write_all(&line)?;
        f.sync_data()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The last head in a witness file, read from its end: `Ok(None)` if the file does not exist or
/// holds no head yet.
pub fn last_head(file: &Path) -> std::io::Result<Option<SignedHead>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    // A head line is about 250 bytes; 8 KiB holds the last one whole.
    f.seek(SeekFrom::Start(len.saturating_sub(8192)))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    let Some(line) = text.lines().rev().map(str::trim).find(|l| !l.is_empty()) else {
        return Ok(None);
    };
    serde_json::from_str(line)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
