//! A per-address limiter of failed attempts (authentication failures), bounded in memory.
//!
//! A GCRA per address: `n` strikes a minute, all of them at once at most. Written here rather
//! than taken from `governor` because the admin API needs to ask whether an address is over its
//! limit *without* spending a strike (so a throttled address is refused before its credential is
//! checked, and throttling leaves no oracle), and because the table needs a hard bound on the
//! addresses it keeps. An address whose strikes have all been earned back is dropped first.

use crate::admit::address_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Addresses kept at most (about 40 bytes each): past it, addresses back under their limit are
/// forgotten and, should all still be over it, the table starts over.
const MAX_ADDRESSES: usize = 100_000;

/// Strikes per address per minute; see the module doc.
#[derive(Debug)]
pub struct AddressThrottle {
    /// Time to earn back one strike.
    interval: Duration,
    /// How far ahead of now an address's theoretical arrival time may run: `interval * (n - 1)`.
    tolerance: Duration,
    max_addresses: usize,
    /// Each address's theoretical arrival time.
    table: Mutex<HashMap<IpAddr, Instant>>,
}

impl AddressThrottle {
    /// `n` strikes a minute per address; `None` when `n` is 0 (no limit).
    pub fn per_minute(n: u32) -> Option<Self> {
        Self::with_capacity(n, MAX_ADDRESSES)
    }

    fn with_capacity(n: u32, max_addresses: usize) -> Option<Self> {
        let interval = Duration::from_secs(60).checked_div(n)?;
        Some(Self {
            interval,
            tolerance: interval.saturating_mul(n.saturating_sub(1)),
            max_addresses,
            table: Mutex::new(HashMap::new()),
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long until `ip` may strike again, when it is over its limit now. Spends nothing.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        self.blocked_at(ip, Instant::now())
    }

    /// Records a strike of `ip`: `Err(how long until the next is allowed)` when over the limit.
    pub fn strike(&self, ip: IpAddr) -> Result<(), Duration> {
        self.strike_at(ip, Instant::now())
    }

    fn blocked_at(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let tat = *self.table().get(&address_key(ip))?;
        let wait = tat
            .checked_duration_since(now)?
            .checked_sub(self.tolerance)?;
        (!wait.is_zero()).then_some(wait)
    }

    fn strike_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = address_key(ip);
        let mut table = self.table();
        let tat = table.get(&key).copied().map_or(now, |t| t.max(now));
        if let Some(wait) = (tat - now).checked_sub(self.tolerance) {
            if !wait.is_zero() {
                return Err(wait);
            }
        }
        if table.len() >= self.max_addresses && !table.contains_key(&key) {
            table.retain(|_, t| *t > now);
            if table.len() >= self.max_addresses {
                tracing::warn!(
                    addresses = table.len(),
                    "too many addresses over their failure limit: forgetting them all"
                );
                table.clear();
            }
        }
        table.insert(key, tat + self.interval);
        Ok(())
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn n_strikes_at_once_then_one_per_interval() {
        let t = AddressThrottle::per_minute(6).unwrap();
        let now = Instant::now();
        let a = ip("10.0.0.1");
        for _ in 0..6 {
            assert_eq!(t.blocked_at(a, now), None);
            t.strike_at(a, now).unwrap();
        }
        let wait = t.blocked_at(a, now).unwrap();
        assert_eq!(wait, Duration::from_secs(10));
        assert_eq!(t.strike_at(a, now), Err(wait));
        assert_eq!(
            t.blocked_at(a, now + Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        // A refused strike costs nothing: the interval earns one back.
        let later = now + Duration::from_secs(10);
        assert_eq!(t.blocked_at(a, later), None);
        t.strike_at(a, later).unwrap();
        assert!(t.strike_at(a, later).is_err());
        // Other addresses have their own allowance.
        t.strike_at(ip("10.0.0.2"), now).unwrap();
    }

    #[test]
    fn zero_is_no_limit() {
        assert!(AddressThrottle::per_minute(0).is_none());
    }

    #[test]
    fn the_table_is_bounded_forgetting_addresses_back_under_their_limit_first() {
        let t = AddressThrottle::with_capacity(2, 3).unwrap();
        let now = Instant::now();
        for i in 0..3 {
            t.strike_at(ip(&format!("10.0.0.{i}")), now).unwrap();
        }
        assert_eq!(t.len(), 3);
        // A minute on, every one has earned its strike back: they go, the newcomer stays.
        let later = now + Duration::from_secs(60);
        t.strike_at(ip("10.0.1.1"), later).unwrap();
        assert_eq!(t.len(), 1);
        // All over their limit at once: the table starts over rather than grow.
        for i in 0..3 {
            let a = ip(&format!("10.0.2.{i}"));
            t.strike_at(a, later).unwrap();
        }
        assert!(t.len() <= 3);
        for i in 0..1000 {
            let _ = t.strike_at(ip(&format!("10.1.{}.{}", i / 250, i % 250)), later);
            assert!(t.len() <= 3);
        }
    }
}
