//! Connection admission: the global cap and the per-address cap.

use crate::logevery::LogEvery;
use crate::Exempt;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The address a per-address count is kept under: IPv4 as it is (IPv4-mapped IPv6 included),
/// IPv6 by its /64, the block one subscriber usually holds.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

/// Who may open one more connection.
pub(crate) struct Admission {
    global: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    per_address_cap: usize,
    exempt: Exempt,
    refusals: LogEvery,
}

/// An admitted connection's place; given back when it is dropped.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    /// `None` for an exempt peer.
    address: Option<IpAddr>,
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    pub(crate) fn new(global: usize, per_address: usize, exempt: Exempt) -> Self {
        Self {
            global: Arc::new(Semaphore::new(global.min(Semaphore::MAX_PERMITS))),
            per_address: Mutex::new(HashMap::new()),
            per_address_cap: per_address,
            exempt,
            refusals: LogEvery::new(Duration::from_secs(10)),
        }
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A ticket for a connection from `peer`, or `None` (refused: counted and logged).
    pub(crate) fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Ticket> {
        let address = (!(self.exempt)(peer.ip().to_canonical())).then(|| address_key(peer.ip()));
        if let Some(key) = address {
            let mut counts = self.counts();
            let n = counts.entry(key).or_insert(0);
            if *n >= self.per_address_cap {
                drop(counts);
                self.refuse("max_connections_per_address", peer);
                return None;
            }
            *n += 1;
        }
        let Ok(permit) = Arc::clone(&self.global).try_acquire_owned() else {
            if let Some(key) = address {
                self.release(key);
            }
            self.refuse("max_connections", peer);
            return None;
        };
        metrics::gauge!("moat_connections_open").increment(1.0);
        Some(Ticket {
            admission: Arc::clone(self),
            address,
            _permit: permit,
        })
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self.counts();
        if let Some(n) = counts.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&key);
            }
        }
    }

    fn refuse(&self, reason: &'static str, peer: SocketAddr) {
        metrics::counter!("moat_connections_refused_total", "reason" => reason).increment(1);
        if let Some(suppressed) = self.refusals.ready() {
            tracing::warn!(
                reason,
                peer = %peer.ip(),
                suppressed,
                "connection refused: over the connection limit"
            );
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.counts().len()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(key) = self.address {
            self.admission.release(key);
        }
        metrics::gauge!("moat_connections_open").decrement(1.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 1234)
    }

    #[test]
    fn the_per_address_cap_holds_per_address_and_frees_on_drop() {
        let a = Arc::new(Admission::new(10, 2, Arc::new(|_| false)));
        let t1 = a.admit(peer("10.0.0.1")).unwrap();
        let _t2 = a.admit(peer("10.0.0.1")).unwrap();
        assert!(a.admit(peer("10.0.0.1")).is_none());
        let _other = a.admit(peer("10.0.0.2")).unwrap();
        drop(t1);
        let _t3 = a.admit(peer("10.0.0.1")).unwrap();
        assert_eq!(a.tracked(), 2);
    }

    #[test]
    fn the_global_cap_holds_and_a_refusal_keeps_no_per_address_count() {
        let a = Arc::new(Admission::new(2, 5, Arc::new(|_| false)));
        let t1 = a.admit(peer("10.0.0.1")).unwrap();
        let _t2 = a.admit(peer("10.0.0.2")).unwrap();
        assert!(a.admit(peer("10.0.0.3")).is_none());
        assert_eq!(a.tracked(), 2, "the refused address is not kept");
        drop(t1);
        assert_eq!(a.tracked(), 1);
        let _t3 = a.admit(peer("10.0.0.3")).unwrap();
    }

    #[test]
    fn exempt_peers_skip_the_per_address_cap_but_not_the_global_one() {
        let proxy: IpAddr = "10.9.9.9".parse().unwrap();
        let a = Arc::new(Admission::new(3, 1, Arc::new(move |ip| ip == proxy)));
        let _t: Vec<Ticket> = (0..3).map(|_| a.admit(peer("10.9.9.9")).unwrap()).collect();
        assert!(a.admit(peer("10.9.9.9")).is_none());
        assert_eq!(a.tracked(), 0);
    }

    #[test]
    fn ipv6_peers_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a = Arc::new(Admission::new(10, 1, Arc::new(|_| false)));
        let _t = a.admit(peer("2001:db8::1")).unwrap();
        assert!(a.admit(peer("2001:db8::ffff:2")).is_none());
        let _u = a.admit(peer("2001:db8:0:1::1")).unwrap();
        let _v = a.admit(peer("::ffff:10.0.0.7")).unwrap();
        assert!(a.admit(peer("10.0.0.7")).is_none());
    }
}
