//! The per-key budget of request body bytes in flight: what one key's bodies may hold in memory
//! at once while they are read and served.
//!
//! A body is reserved before it is read: its `Content-Length` up front, a chunked body frame by
//! frame as it arrives. A key with nothing in flight may always start one body (up to
//! `server.max_body_bytes`), so a budget below the body limit slows a key down but never locks
//! it out; past that, a reservation that does not fit is refused (429) without reading further.
//! One key's bodies therefore hold at most `budget + server.max_body_bytes` bytes.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Bytes in flight per key, under one budget.
#[derive(Debug)]
pub struct BodyBudget {
    limit: u64,
    held: Arc<Mutex<HashMap<Arc<str>, u64>>>,
}

/// Bytes one request's body holds against its key's budget; given back when dropped.
#[derive(Debug)]
pub struct BodyHold {
    key: Arc<str>,
    bytes: u64,
    limit: u64,
    held: Arc<Mutex<HashMap<Arc<str>, u64>>>,
}

impl BodyBudget {
    /// A budget of `limit` bytes per key.
    pub fn new(limit: u64) -> Self {
        BodyBudget {
            limit,
            held: Arc::default(),
        }
    }

    /// The per-key limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// An empty hold for `key`, to grow as the body arrives.
    pub fn hold(&self, key: &str) -> BodyHold {
        BodyHold {
            key: Arc::from(key),
            bytes: 0,
            limit: self.limit,
            held: Arc::clone(&self.held),
        }
    }

    /// Keys with bytes in flight (for tests and gauges).
    pub fn keys_in_flight(&self) -> usize {
        self.held.lock().len()
    }
}

impl BodyHold {
    /// Grows the hold to `total` bytes, or refuses (holding what it held) when the key's other
    /// bodies leave no room for it.
    pub fn cover(&mut self, total: u64) -> bool {
        if total <= self.bytes {
            return true;
        }
        let extra = total - self.bytes;
        let mut held = self.held.lock();
        let in_flight = held.get(&*self.key).copied().unwrap_or(0);
        let others = in_flight - self.bytes.min(in_flight);
        // A body alone may always proceed (the body limit bounds it); beside others, it must fit.
        if others > 0 && in_flight.saturating_add(extra) > self.limit {
            return false;
        }
        *held.entry(Arc::clone(&self.key)).or_insert(0) += extra;
        self.bytes = total;
        true
    }

    /// The key it holds for.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The key's budget.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl Drop for BodyHold {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut held = self.held.lock();
        if let Some(n) = held.get_mut(&*self.key) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                held.remove(&*self.key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_budget_beside_one_body_and_gets_it_back() {
        let budget = BodyBudget::new(100);
        let mut a = budget.hold("k");
        assert!(a.cover(150), "a body alone may exceed the budget");
        let mut b = budget.hold("k");
        assert!(!b.cover(1), "nothing fits beside it");
        let mut other = budget.hold("other");
        assert!(other.cover(90), "keys are counted apart");
        drop(a);
        assert!(b.cover(60));
        let mut c = budget.hold("k");
        assert!(c.cover(40));
        assert!(!c.cover(41), "60 + 41 > 100");
        assert_eq!(c.bytes(), 40, "a refused growth keeps what it held");
        drop((b, c, other));
        assert_eq!(budget.keys_in_flight(), 0);
    }
}
