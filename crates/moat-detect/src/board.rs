//! The board: the current action of every account and end user the detector has actioned,
//! written by the gateway's detector worker and read by every request (`moat-proxy`'s
//! `detection` module).
//!
//! # Why an `RwLock<HashMap>` of `Arc` entries
//! - Only principals with an action other than `allow` are on the board, and verdict scores
//!   never fall (they are the peak of the evidence sum), so an entry changes at most three times
//!   (throttle, degrade, block) in its life. Writes are therefore rare and short: one insert
//!   under the write lock, or an atomic store into an existing entry under the read lock.
//! - The request path takes the read lock for two hash lookups and leaves with `Arc` clones; it
//!   skips the lock entirely while the board is empty, which is the normal state.
//! - A throttled entry carries its own rate limiter (one atomic), which every request of that
//!   principal updates. An immutable snapshot (`arc-swap`) would need that interior mutability
//!   anyway, and would copy the whole map on each change: in a wave of thousands of sybil
//!   accounts being flagged, that is quadratic work on the worker. `dashmap`'s sharding answers
//!   write contention, which a single rare writer does not have.

use std::collections::HashMap;

use crate::Capacity;
use hashlink::LinkedHashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// What the gateway does with a principal's requests; each action includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Action {
    /// Nothing.
    Allow = 0,
    /// At most `throttle_rpm` requests per minute.
    Throttle = 1,
    /// Throttled, and no `n > 1`, log probabilities or reasoning; output capped.
    Degrade = 2,
    /// Every request refused.
    Block = 3,
}

impl Action {
    /// `allow`, `throttle`, `degrade` or `block`, as in logs, metrics and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Throttle => "throttle",
            Action::Degrade => "degrade",
            Action::Block => "block",
        }
    }

    /// What monitor mode records instead: `would_allow`, `would_throttle`, ...
    pub fn would(self) -> &'static str {
        match self {
            Action::Allow => "would_allow",
            Action::Throttle => "would_throttle",
            Action::Degrade => "would_degrade",
            Action::Block => "would_block",
        }
    }

    fn from_u8(n: u8) -> Action {
        match n {
            0 => Action::Allow,
            1 => Action::Throttle,
            2 => Action::Degrade,
            _ => Action::Block,
        }
    }
}

/// One actioned account or end user.
#[derive(Debug)]
pub struct Entry {
    action: AtomicU8,
    /// The account is on `detection.allowlist`: scored and reported, never actioned.
    pub allowlisted: bool,
    limiter: Limiter,
}

impl Entry {
    fn new(action: Action, allowlisted: bool) -> Self {
        Entry {
            action: AtomicU8::new(action as u8),
            allowlisted,
            limiter: Limiter::default(),
        }
    }

    /// The current action.
    pub fn action(&self) -> Action {
        Action::from_u8(self.action.load(Ordering::Acquire))
    }

    /// Admits one request at `now_ms` under a limit of `rpm` requests per minute, or says in how
    /// many milliseconds the next one would be admitted.
    pub fn admit(&self, now_ms: i64, rpm: u32) -> Result<(), u64> {
        self.limiter.admit(now_ms, rpm)
    }
}

/// A GCRA rate limiter (the "virtual scheduling" form of the generic cell rate algorithm): one
/// theoretical arrival time, updated with a compare-and-swap, so admitting a request takes no
/// lock. Up to `rpm` requests may come at once; after that one every `60 s / rpm`.
#[derive(Debug, Default)]
struct Limiter {
    /// Theoretical arrival time of the next request, ms; 0 before the first.
    tat_ms: AtomicI64,
}

const MINUTE_MS: i64 = 60_000;

impl Limiter {
    fn admit(&self, now_ms: i64, rpm: u32) -> Result<(), u64> {
        let interval = MINUTE_MS / i64::from(rpm.max(1));
        let mut current = self.tat_ms.load(Ordering::Acquire);
        loop {
            let next = current.max(now_ms) + interval;
            // Admitted while the backlog (next - now) fits in one minute.
            let excess = next - now_ms - MINUTE_MS;
            if excess > 0 {
                return Err(excess as u64);
            }
            match self.tat_ms.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }
}

/// The entries of one request's principals: its account and, when it names one, its end user.
#[derive(Debug, Default)]
pub struct Standing {
    /// The account's entry, if actioned.
    pub account: Option<Arc<Entry>>,
    /// The end user's entry, if actioned.
    pub end_user: Option<Arc<Entry>>,
}

#[derive(Debug, Default)]
struct Principals {
    accounts: HashMap<Box<str>, Arc<Entry>>,
    /// By account, then end user (oldest entry first): looked up with two `&str` without
    /// building a key.
    end_users: HashMap<Box<str>, LinkedHashMap<Box<str>, Arc<Entry>>>,
    /// End-user entries over all accounts.
    end_user_entries: usize,
}

/// Actioned accounts and end users. See the module docs for why this shape.
///
/// End users are chosen by the client, so their entries are bounded like the detector's end
/// users ([`Capacity`]): past an account's share, or the board's total, the account's oldest
/// end-user entry makes room (counted in `moat_detect_board_evictions_total`). Accounts come from
/// keys the operator created and are not bounded here.
#[derive(Debug, Default)]
pub struct Board {
    inner: RwLock<Principals>,
    /// Whether anything is on the board; the request path skips the lock while nothing is.
    any: AtomicBool,
    capacity: Capacity,
}

impl Board {
    /// An empty board keeping at most `capacity` end-user entries.
    pub fn new(capacity: Capacity) -> Self {
        Board {
            capacity,
            ..Board::default()
        }
    }

    /// The entries of `account` and of its `end_user`.
    pub fn lookup(&self, account: &str, end_user: Option<&str>) -> Standing {
        if !self.any.load(Ordering::Acquire) {
            return Standing::default();
        }
        let Ok(p) = self.inner.read() else {
            return Standing::default();
        };
        Standing {
            account: p.accounts.get(account).cloned(),
            end_user: end_user.and_then(|u| p.end_users.get(account)?.get(u).cloned()),
        }
    }

    /// The current action of `account` (or of its `end_user`), `Allow` when not on the board.
    pub fn action(&self, account: &str, end_user: Option<&str>) -> Action {
        let s = self.lookup(account, end_user);
        let entry = if end_user.is_some() {
            s.end_user
        } else {
            s.account
        };
        entry.map_or(Action::Allow, |e| e.action())
    }

    /// Raises the action of `account` (or of its `end_user`) to `action`; never lowers it.
    /// Returns the previous action when it changed.
    pub fn raise(
        &self,
        account: &str,
        end_user: Option<&str>,
        action: Action,
        allowlisted: bool,
    ) -> Option<Action> {
        if action == Action::Allow {
            return None;
        }
        let existing = {
            let s = self.lookup(account, end_user);
            if end_user.is_some() {
                s.end_user
            } else {
                s.account
            }
        };
        if let Some(entry) = existing {
            let before = Action::from_u8(entry.action.fetch_max(action as u8, Ordering::AcqRel));
            return (before < action).then_some(before);
        }
        let Ok(mut p) = self.inner.write() else {
            return None;
        };
        let entry = match end_user {
            Some(u) => self.end_user_slot(&mut p, account, u, allowlisted)?,
            None => Arc::clone(
                p.accounts
                    .entry(account.into())
                    .or_insert_with(|| Arc::new(Entry::new(Action::Allow, allowlisted))),
            ),
        };
        let before = Action::from_u8(entry.action.fetch_max(action as u8, Ordering::AcqRel));
        self.any.store(true, Ordering::Release);
        (before < action).then_some(before)
    }

    /// End-user entries on the board.
    pub fn end_user_entries(&self) -> usize {
        self.inner.read().map_or(0, |p| p.end_user_entries)
    }

    /// The entry of `user` behind `account`, made (evicting within the capacity) if absent.
    fn end_user_slot(
        &self,
        p: &mut Principals,
        account: &str,
        user: &str,
        allowlisted: bool,
    ) -> Option<Arc<Entry>> {
        let total_full = p.end_user_entries >= self.capacity.total.max(1);
        let users = p.end_users.entry(account.into()).or_default();
        if let Some(e) = users.get(user) {
            return Some(Arc::clone(e));
        }
        if users.len() >= self.capacity.per_account.max(1) || total_full {
            // The account's oldest entry makes room: a client flagging many ids of its own
            // evicts its own, never another account's.
            if users.pop_front().is_none() {
                metrics::counter!("moat_detect_board_full_total").increment(1);
                return None;
            }
            p.end_user_entries -= 1;
            metrics::counter!("moat_detect_board_evictions_total").increment(1);
        }
        let users = p.end_users.entry(account.into()).or_default();
        let entry = Arc::new(Entry::new(Action::Allow, allowlisted));
        users.insert(user.into(), Arc::clone(&entry));
        p.end_user_entries += 1;
        Some(entry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn actions_only_rise_and_are_found_by_principal() {
        let b = Board::default();
        assert_eq!(b.action("a", None), Action::Allow);
        assert_eq!(b.raise("a", None, Action::Allow, false), None);
        assert_eq!(
            b.raise("a", None, Action::Degrade, false),
            Some(Action::Allow)
        );
        assert_eq!(b.raise("a", None, Action::Throttle, false), None);
        assert_eq!(b.action("a", None), Action::Degrade);
        assert_eq!(
            b.raise("a", Some("u"), Action::Block, true),
            Some(Action::Allow)
        );
        let s = b.lookup("a", Some("u"));
        assert_eq!(s.account.unwrap().action(), Action::Degrade);
        let user = s.end_user.unwrap();
        assert_eq!(user.action(), Action::Block);
        assert!(user.allowlisted);
        assert!(b.lookup("a", Some("v")).end_user.is_none());
        assert!(b.lookup("b", Some("u")).account.is_none());
    }

    #[test]
    fn end_user_entries_are_bounded_per_account_and_in_total() {
        let b = Board::new(Capacity {
            total: 3,
            per_account: 2,
        });
        b.raise("a", Some("u1"), Action::Block, false);
        b.raise("a", Some("u2"), Action::Block, false);
        b.raise("a", Some("u3"), Action::Block, false);
        assert_eq!(b.end_user_entries(), 2);
        assert_eq!(
            b.action("a", Some("u1")),
            Action::Allow,
            "the oldest made room"
        );
        assert_eq!(b.action("a", Some("u3")), Action::Block);
        b.raise("b", Some("v1"), Action::Throttle, false);
        assert_eq!(b.end_user_entries(), 3);
        // The board is full: b's own oldest makes room; a's entries stay.
        b.raise("b", Some("v2"), Action::Throttle, false);
        assert_eq!(b.end_user_entries(), 3);
        assert_eq!(b.action("a", Some("u2")), Action::Block);
        assert_eq!(b.action("b", Some("v2")), Action::Throttle);
        assert_eq!(b.action("b", Some("v1")), Action::Allow);
        // A full board with nothing of c's to evict refuses c's end user, but not c itself.
        assert_eq!(b.raise("c", Some("w"), Action::Block, false), None);
        assert_eq!(
            b.raise("c", None, Action::Block, false),
            Some(Action::Allow)
        );
        for i in 0..1000 {
            b.raise("a", Some(&format!("x{i}")), Action::Block, false);
        }
        assert_eq!(b.end_user_entries(), 3);
    }

    #[test]
    fn the_limiter_allows_a_minute_of_burst_then_one_per_interval() {
        let l = Limiter::default();
        let t0 = 1_000_000;
        for _ in 0..6 {
            assert_eq!(l.admit(t0, 6), Ok(()));
        }
        assert_eq!(l.admit(t0, 6), Err(10_000), "the 7th waits one interval");
        assert_eq!(l.admit(t0 + 9_999, 6), Err(1));
        assert_eq!(l.admit(t0 + 10_000, 6), Ok(()));
        assert_eq!(l.admit(t0 + 10_000, 6), Err(10_000));
        // A quiet minute refills the whole burst.
        for _ in 0..6 {
            assert_eq!(l.admit(t0 + 130_000, 6), Ok(()));
        }
        assert!(l.admit(t0 + 130_000, 6).is_err());
    }
}
