//! Whether the audit log can keep records now: shared by the writer task (which knows), the
//! request path (which refuses requests whose record could not be kept) and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The writer's state as the rest of the gateway sees it.
#[derive(Debug)]
pub(crate) struct Health {
    /// `audit.max_backlog`.
    max_records: usize,
    /// `audit.max_backlog_bytes`.
    max_bytes: usize,
    /// Records submitted and not yet committed (queued, in the batch being written, or kept
    /// while appends fail).
    pending: AtomicUsize,
    /// Their weight ([`weight`]).
    pending_bytes: AtomicUsize,
    /// The last append failed and none has succeeded since.
    failing: AtomicBool,
    /// The store refused a re-sealed batch as not following its chain: another writer appends
    /// to the log, so no record can be written until it stops.
    broken: AtomicBool,
    /// Why, for `/readyz` and the refusals.
    reason: Mutex<String>,
}

/// Why the audit log cannot take a request's record now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// `audit.max_backlog` records, or `max_backlog_bytes` of them, wait to be written.
    Backlog {
        /// Records waiting.
        records: usize,
        /// Their weight in bytes.
        bytes: usize,
    },
    /// Appends fail (disk full, read-only store, I/O error...): the store's error.
    Failing(String),
    /// The stored chain moved under the writer and re-sealing onto it did not work.
    Broken(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Backlog { records, bytes } => write!(
                f,
                "{records} audit records ({} KiB) are waiting to be written (audit.max_backlog, max_backlog_bytes)",
                bytes / 1024
            ),
            Unavailable::Failing(e) => write!(f, "audit records cannot be written: {e}"),
            Unavailable::Broken(e) => write!(f, "the audit chain is broken: {e}"),
        }
    }
}

/// What a waiting record weighs against `max_backlog_bytes`: the bodies it keeps, plus 1 KiB
/// for the rest of it.
pub(crate) fn weight(record: &moat_audit::AuditRecord) -> usize {
    let body = |b: &moat_audit::Body| b.as_full().map_or(0, |raw| raw.get().len());
    1024 + body(&record.request_body) + body(&record.response_body)
}

/// Subtracts `n` from `counter` without going below zero; returns the new value.
fn sub(counter: &AtomicUsize, n: usize) -> usize {
    let before = counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
            Some(p.saturating_sub(n))
        })
        .unwrap_or(0);
    before.saturating_sub(n)
}

impl Health {
    /// A writer with nothing pending, refusing past `max_records` records or `max_bytes` of
    /// their weight.
    pub(crate) fn new(max_records: usize, max_bytes: usize) -> Health {
        Health {
            max_records,
            max_bytes,
            pending: AtomicUsize::new(0),
            pending_bytes: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
        }
    }

    /// Records not yet committed.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// `records` more are pending, weighing `bytes`.
    pub(crate) fn add_pending(&self, records: usize, bytes: usize) {
        let now = self
            .pending
            .fetch_add(records, Ordering::AcqRel)
            .saturating_add(records);
        let now_bytes = self
            .pending_bytes
            .fetch_add(bytes, Ordering::AcqRel)
            .saturating_add(bytes);
        metrics::gauge!("moat_audit_backlog").set(now as f64);
        metrics::gauge!("moat_audit_backlog_bytes").set(now_bytes as f64);
    }

    /// `records` weighing `bytes` were committed (or given up).
    pub(crate) fn remove_pending(&self, records: usize, bytes: usize) {
        let now = sub(&self.pending, records);
        let now_bytes = sub(&self.pending_bytes, bytes);
        metrics::gauge!("moat_audit_backlog").set(now as f64);
        metrics::gauge!("moat_audit_backlog_bytes").set(now_bytes as f64);
    }

    /// An append failed with `error`.
    pub(crate) fn failing(&self, error: &str) {
        self.set_reason(error);
        if !self.failing.swap(true, Ordering::AcqRel) {
            metrics::gauge!("moat_audit_writable").set(0.0);
            tracing::error!(
                error,
                "audit records cannot be written: /readyz is red until they can"
            );
        }
    }

    /// The chain could not be re-sealed onto the store's tail.
    pub(crate) fn broken(&self, error: &str) {
        self.set_reason(error);
        self.failing.store(true, Ordering::Release);
        if !self.broken.swap(true, Ordering::AcqRel) {
            metrics::gauge!("moat_audit_writable").set(0.0);
            tracing::error!(error, "audit chain broken: every request is refused until the writer is alone on its store");
        }
    }

    /// An append succeeded.
    pub(crate) fn recovered(&self) {
        let was_failing = self.failing.swap(false, Ordering::AcqRel);
        let was_broken = self.broken.swap(false, Ordering::AcqRel);
        if was_failing || was_broken {
            metrics::gauge!("moat_audit_writable").set(1.0);
            tracing::info!(
                backlog = self.pending(),
                "audit records are written again: /readyz is green"
            );
        }
    }

    fn set_reason(&self, error: &str) {
        if let Ok(mut r) = self.reason.lock() {
            error.clone_into(&mut r);
        }
    }

    fn reason(&self) -> String {
        self.reason.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// `Err` when the backlog is at either limit.
    fn backlog(&self) -> Result<(), Unavailable> {
        let records = self.pending();
        let bytes = self.pending_bytes.load(Ordering::Acquire);
        if records >= self.max_records || bytes >= self.max_bytes {
            return Err(Unavailable::Backlog { records, bytes });
        }
        Ok(())
    }

    /// Whether records can be written now (for `/readyz`).
    pub(crate) fn status(&self) -> Result<(), Unavailable> {
        if self.broken.load(Ordering::Acquire) {
            return Err(Unavailable::Broken(self.reason()));
        }
        if self.failing.load(Ordering::Acquire) {
            return Err(Unavailable::Failing(self.reason()));
        }
        self.backlog()
    }

    /// Whether a new request may be served: its record must be keepable. Refused past the
    /// backlog, while the chain is broken, and, in `sync` durability (where the answer waits for
    /// its commit), while appends fail. In `batch` durability a failing store holds records in
    /// the backlog until it fills.
    pub(crate) fn admit(&self, sync: bool) -> Result<(), Unavailable> {
        match self.status() {
            Err(Unavailable::Failing(_)) if !sync => self.backlog(),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn backlog(records: usize, bytes: usize) -> Result<(), Unavailable> {
        Err(Unavailable::Backlog { records, bytes })
    }

    #[test]
    fn admission_follows_the_backlog_and_the_writer_state() {
        let h = Health::new(2, 1 << 20);
        assert_eq!(h.admit(false), Ok(()));
        h.add_pending(2, 2048);
        assert_eq!(h.admit(false), backlog(2, 2048));
        h.remove_pending(1, 1024);
        assert_eq!(h.admit(true), Ok(()));
        h.failing("disk full");
        // Batch keeps serving into the backlog; sync refuses; readiness is red either way.
        assert_eq!(h.admit(false), Ok(()));
        assert_eq!(h.admit(true), Err(Unavailable::Failing("disk full".into())));
        assert!(h.status().is_err());
        h.recovered();
        assert_eq!(h.status(), Ok(()));
        h.broken("record 9 does not follow the log");
        assert!(matches!(h.admit(false), Err(Unavailable::Broken(_))));
        h.recovered();
        assert_eq!(h.admit(false), Ok(()));
        h.remove_pending(5, 1 << 30);
        assert_eq!(h.pending(), 0);
    }

    #[test]
    fn heavy_records_fill_the_backlog_by_bytes_before_its_count() {
        let h = Health::new(1000, 10_000);
        h.add_pending(1, 9_999);
        assert_eq!(h.admit(false), Ok(()));
        h.add_pending(1, 1);
        assert_eq!(h.admit(false), backlog(2, 10_000));
        h.remove_pending(1, 9_999);
        assert_eq!(h.admit(false), Ok(()));
    }

    #[test]
    fn a_record_weighs_its_kept_bodies() {
        let mut r = moat_audit::AuditRecord::request(1, "r", 200);
        assert_eq!(weight(&r), 1024);
        r.request_body = moat_audit::Body::full(br#"{"a":"0123456789"}"#);
        r.response_body = moat_audit::Body::Sha256("ab".repeat(32));
        assert_eq!(weight(&r), 1024 + 18);
    }
}
