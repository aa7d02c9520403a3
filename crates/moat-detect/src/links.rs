//! Links across accounts: shared templates, shared networks, sign-up bursts, and the clusters
//! they join flagged accounts into.

use std::collections::HashMap;

/// Usage of one shared thing (a template fingerprint or a network) across accounts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shared {
    /// Accounts that used it.
    pub accounts: u32,
    /// Of those, accounts flagged.
    pub flagged: u32,
    /// The first flagged account that used it (cluster anchor).
    pub anchor: Option<u32>,
}

impl Shared {
    /// Used by several flagged accounts and few others: a farm's template or network.
    pub fn tainted(&self) -> bool {
        self.flagged >= 3 && self.flagged * 2 >= self.accounts
    }
}

/// Index from a shared key to its usage, with a size cap.
#[derive(Debug, Default)]
pub struct SharedIndex {
    map: HashMap<u64, Shared>,
    cap: usize,
}

impl SharedIndex {
    /// An index holding at most `cap` keys (single-account keys are dropped first).
    pub fn new(cap: usize) -> Self {
        SharedIndex {
            map: HashMap::new(),
            cap,
        }
    }

    /// An account starts using `key`.
    pub fn join(&mut self, key: u64) {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.map.retain(|_, s| s.accounts > 1 || s.flagged > 0);
            if self.map.len() >= self.cap {
                return;
            }
        }
        self.map.entry(key).or_default().accounts += 1;
    }

    /// An account that used `key` is flagged; returns the anchor to join it with.
    pub fn flag(&mut self, key: u64, account: u32) -> Option<u32> {
        let s = self.map.get_mut(&key)?;
        s.flagged += 1;
        match s.anchor {
            Some(a) => Some(a),
            None => {
                s.anchor = Some(account);
                None
            }
        }
    }

    /// Accounts that used `key`.
    pub fn accounts(&self, key: u64) -> u32 {
        self.map.get(&key).map_or(0, |s| s.accounts)
    }

    /// Whether `key` is tainted.
    pub fn tainted(&self, key: u64) -> bool {
        self.map.get(&key).is_some_and(Shared::tainted)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Sign-ups per hour of account creation, against the running average.
#[derive(Debug, Default)]
pub struct Signups {
    per_hour: HashMap<i64, u32>,
    total: u64,
    first_hour: Option<i64>,
    last_hour: Option<i64>,
}

impl Signups {
    /// Counts an account created at `created_ms`; returns how many accounts share its hour.
    pub fn add(&mut self, created_ms: i64) -> u32 {
        let hour = created_ms.div_euclid(3_600_000);
        self.total += 1;
        self.first_hour = Some(self.first_hour.map_or(hour, |h| h.min(hour)));
        self.last_hour = Some(self.last_hour.map_or(hour, |h| h.max(hour)));
        let c = self.per_hour.entry(hour).or_default();
        *c += 1;
        *c
    }

    /// Whether the hour of `created_ms` holds at least `min` sign-ups and eight times the average.
    pub fn burst(&self, created_ms: i64, min: u32) -> bool {
        let hour = created_ms.div_euclid(3_600_000);
        let count = self.per_hour.get(&hour).copied().unwrap_or(0);
        let span = match (self.first_hour, self.last_hour) {
            (Some(a), Some(b)) => (b - a + 1).max(1) as f64,
            _ => 1.0,
        };
        let average = self.total as f64 / span;
        count >= min && f64::from(count) >= 8.0 * average
    }
}

/// Union-find over account indices, for clusters.
#[derive(Debug, Default)]
pub struct Clusters {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Clusters {
    /// Makes room for account `i`.
    pub fn ensure(&mut self, i: u32) {
        while self.parent.len() <= i as usize {
            let n = self.parent.len() as u32;
            self.parent.push(n);
            self.size.push(1);
        }
    }

    /// The representative of `i`'s cluster.
    pub fn find(&mut self, mut i: u32) -> u32 {
        self.ensure(i);
        while self.parent[i as usize] != i {
            let p = self.parent[i as usize];
            self.parent[i as usize] = self.parent[p as usize];
            i = p;
        }
        i
    }

    /// Joins the clusters of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
    }

    /// Accounts in `i`'s cluster.
    pub fn size_of(&mut self, i: u32) -> u32 {
        let r = self.find(i);
        self.size[r as usize]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn taint_needs_several_flagged_and_few_others() {
        let mut idx = SharedIndex::new(100);
        for _ in 0..4 {
            idx.join(1);
        }
        assert!(!idx.tainted(1));
        assert_eq!(idx.flag(1, 10), None);
        assert!(!idx.tainted(1));
        assert_eq!(idx.flag(1, 11), Some(10));
        assert!(!idx.tainted(1), "two flagged, two others");
        idx.flag(1, 12);
        assert!(idx.tainted(1), "three flagged, one other");
        for _ in 0..10 {
            idx.join(1);
        }
        assert!(!idx.tainted(1), "widely used by unflagged accounts");
    }

    #[test]
    fn clusters_union_and_count() {
        let mut c = Clusters::default();
        c.union(1, 2);
        c.union(3, 2);
        assert_eq!(c.find(1), c.find(3));
        assert_eq!(c.size_of(3), 3);
        assert_ne!(c.find(0), c.find(1));
    }

    #[test]
    fn signup_bursts_stand_out_from_the_average() {
        let mut s = Signups::default();
        let h = 3_600_000;
        for i in 0..100 {
            s.add(i * h);
        }
        for _ in 0..9 {
            s.add(50 * h + 10);
        }
        assert!(s.burst(50 * h, 5));
        assert!(!s.burst(51 * h, 5));
    }
}
