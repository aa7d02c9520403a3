//! The witness: signed heads of the chain appended to a file outside the store and/or POSTed to
//! an HTTP endpoint (`[audit.witness]`), so a later truncation or rewrite of the log shows
//! (`moat audit verify --witness FILE`).
//!
//! The writer publishes the head after each commit on a `watch` channel (it never waits on the
//! witness); this task signs and writes a head when `every_records` records have been written
//! since the last one, or `every` has passed with records written, and once more when the
//! writer stops. A failed write is logged and counted (`moat_audit_witness_errors_total`) and
//! retried with the next head; requests never wait on it.

use moat_audit::{AuditKeys, Head, SignedHead};
use moat_config::WitnessConfig;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a POST of a head may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`HeadPoster`] returns: `Ok` once the endpoint accepted the head, `Err` saying why
/// not.
pub type PostFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Sends a signed head to an HTTP witness (`[audit.witness] url`): the gateway gives the log its
/// own HTTP client, so this crate speaks no HTTP itself.
pub trait HeadPoster: Send + Sync {
    /// POSTs `body` (the signed head as JSON) to `url` with `Content-Type: application/json`,
    /// following no redirect and through no proxy; `Ok` on any 2xx answer, else `Err` naming the
    /// failure or the status it answered. The witness bounds it by a 10 s timeout.
    fn post<'a>(&'a self, url: &'a str, body: Vec<u8>) -> PostFuture<'a>;
}

/// Starts the witness task; it ends when the writer drops the head's sender.
pub(crate) fn spawn(
    config: WitnessConfig,
    keys: Arc<AuditKeys>,
    clock: Arc<dyn moat_core::Clock>,
    mut heads: watch::Receiver<Option<Head>>,
    poster: Option<Arc<dyn HeadPoster>>,
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
                let mut ok = true;
                if let Some(file) = &config.file {
                    if let Err(e) = append(file.clone(), line.clone()).await {
                        ok = false;
                        failed("file", &file.display().to_string(), &e.to_string());
                    }
                }
                if let Some(url) = &config.url {
                    if let Err(e) = post(poster.as_deref(), url, &line).await {
                        ok = false;
                        failed("url", url, &e);
                    }
                }
                if ok {
                    metrics::counter!("moat_audit_witness_heads_total").increment(1);
                    written = Some(head.seq);
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

fn failed(kind: &'static str, witness: &str, error: &str) {
    metrics::counter!("moat_audit_witness_errors_total", "witness" => kind).increment(1);
    tracing::error!(
        error,
        witness,
        "audit witness: cannot write the signed head"
    );
}

/// POSTs `head` as JSON to `url` through `poster`; any 2xx within [`POST_TIMEOUT`] is success.
/// Redirects are not followed and no proxy is used, as for providers.
async fn post(poster: Option<&dyn HeadPoster>, url: &str, head: &SignedHead) -> Result<(), String> {
    let Some(poster) = poster else {
        return Err("no HTTP client was given to the audit log to POST heads with".into());
    };
    let body = serde_json::to_vec(head).map_err(|e| e.to_string())?;
    match tokio::time::timeout(POST_TIMEOUT, poster.post(url, body)).await {
        Err(_) => Err(format!("no answer within {POST_TIMEOUT:?}")),
        Ok(result) => result,
    }
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
/// holds no complete head yet.
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
    // A last line without its newline is a write cut short (a crash mid-append): not a head.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let Some(line) = whole.lines().rev().map(str::trim).find(|l| !l.is_empty()) else {
        return Ok(None);
    };
    serde_json::from_str(line)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_head_is_read_and_a_torn_one_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("heads.jsonl");
        assert_eq!(last_head(&file).unwrap(), None);
        let keys = AuditKeys::from_seed([2; 32]);
        let mut text = String::new();
        for seq in 1..=100 {
            let head = SignedHead::new(seq, format!("{seq:064x}"), 0, &keys);
            text.push_str(&serde_json::to_string(&head).unwrap());
            text.push('\n');
        }
        std::fs::write(&file, &text).unwrap();
        assert_eq!(last_head(&file).unwrap().unwrap().seq, 100);
        text.push_str("{\"seq\":101,\"ha");
        std::fs::write(&file, &text).unwrap();
        assert_eq!(last_head(&file).unwrap().unwrap().seq, 100);
        std::fs::write(&file, "not json\n").unwrap();
        assert!(last_head(&file).is_err());
    }
}
