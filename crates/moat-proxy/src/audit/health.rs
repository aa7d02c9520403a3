//! Whether the audit log can keep records now: shared by the writer task (which knows), the
//! request path (which refuses requests whose record could not be kept) and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The writer's state as the rest of the gateway sees it.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Records submitted and not yet committed (queued, in the batch being written, or kept
    /// while appends fail).
    pending: AtomicUsize,
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
    /// `audit.max_backlog` records wait to be written.
    Backlog(usize),
    /// Appends fail (disk full, read-only store, I/O error...): the store's error.
    Failing(String),
    /// The stored chain moved under the writer and re-sealing onto it did not work.
    Broken(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Backlog(n) => write!(
                f,
                "{n} audit records are waiting to be written (audit.max_backlog)"
            ),
            Unavailable::Failing(e) => write!(f, "audit records cannot be written: {e}"),
            Unavailable::Broken(e) => write!(f, "the audit chain is broken: {e}"),
        }
    }
}

impl Health {
    /// Records not yet committed.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    pub(crate) fn add_pending(&self, n: usize) {
        let now = self
            .pending
            .fetch_add(n, Ordering::AcqRel)
            .saturating_add(n);
        metrics::gauge!("moat_audit_backlog").set(now as f64);
    }

    pub(crate) fn remove_pending(&self, n: usize) {
        let before = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(n))
            })
            .unwrap_or(0);
        metrics::gauge!("moat_audit_backlog").set(before.saturating_sub(n) as f64);
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

    /// Whether records can be written now (for `/readyz`).
    pub(crate) fn status(&self, max_backlog: usize) -> Result<(), Unavailable> {
        if self.broken.load(Ordering::Acquire) {
            return Err(Unavailable::Broken(self.reason()));
        }
        if self.failing.load(Ordering::Acquire) {
            return Err(Unavailable::Failing(self.reason()));
        }
        let pending = self.pending();
        if pending >= max_backlog {
            return Err(Unavailable::Backlog(pending));
        }
        Ok(())
    }

    /// Whether a new request may be served: its record must be keepable. Refused past the
    /// backlog, while the chain is broken, and, in `sync` durability (where the answer waits for
    /// its commit), while appends fail. In `batch` durability a failing store holds records in
    /// the backlog until it fills.
    pub(crate) fn admit(&self, max_backlog: usize, sync: bool) -> Result<(), Unavailable> {
        match self.status(max_backlog) {
            Err(Unavailable::Failing(_)) if !sync => {
                let pending = self.pending();
                if pending >= max_backlog {
                    Err(Unavailable::Backlog(pending))
                } else {
                    Ok(())
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn admission_follows_the_backlog_and_the_writer_state() {
        let h = Health::default();
        assert_eq!(h.admit(2, false), Ok(()));
        h.add_pending(2);
        assert_eq!(h.admit(2, false), Err(Unavailable::Backlog(2)));
        h.remove_pending(1);
        assert_eq!(h.admit(2, true), Ok(()));
        h.failing("disk full");
        // Batch keeps serving into the backlog; sync refuses; readiness is red either way.
        assert_eq!(h.admit(2, false), Ok(()));
        assert_eq!(
            h.admit(2, true),
            Err(Unavailable::Failing("disk full".into()))
        );
        assert!(h.status(2).is_err());
        h.recovered();
        assert_eq!(h.status(2), Ok(()));
        h.broken("record 9 does not follow the log");
        assert!(matches!(h.admit(2, false), Err(Unavailable::Broken(_))));
        h.recovered();
        assert_eq!(h.admit(2, false), Ok(()));
        h.remove_pending(5);
        assert_eq!(h.pending(), 0);
    }
}
