//! Per-account (and per end-user) state over time, in bounded memory.

use crate::reason::REASONS;
use crate::text::{near, Fingerprint};

/// Recent prompts kept for near-duplicate checks.
const RECENT: usize = 64;
/// System prompts and networks remembered per account (beyond this they are counted, not kept).
const MAX_SYSTEMS: usize = 16;
const MAX_NETS: usize = 32;
/// Affix templates tracked per account (Space-Saving top-k).
const MAX_AFFIXES: usize = 12;
/// Request ids kept as evidence.
pub const MAX_EVIDENCE: usize = 6;
/// Length of the gateway's request ids (`req_` and 24 hex digits), kept as evidence.
const REQUEST_ID_LEN: usize = 28;

/// A counted item in a bounded top-k (Space-Saving, Metwally et al. 2005).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted {
    /// The item.
    pub key: u64,
    /// Its (over-)estimated count.
    pub count: u32,
}

/// Space-Saving top-k: counts of the most frequent keys in bounded memory.
#[derive(Debug, Clone, Default)]
pub struct TopK {
    items: Vec<Counted>,
}

impl TopK {
    /// Counts `key`, returning its count after this one.
    pub fn add(&mut self, key: u64, cap: usize) -> u32 {
        if let Some(c) = self.items.iter_mut().find(|c| c.key == key) {
            c.count += 1;
            return c.count;
        }
        if self.items.len() < cap {
            self.items.push(Counted { key, count: 1 });
            return 1;
        }
        // Replace the least counted, inheriting its count (the Space-Saving bound).
        if let Some(min) = self.items.iter_mut().min_by_key(|c| c.count) {
            min.key = key;
            min.count += 1;
            return min.count;
        }
        1
    }

    /// The count of the most frequent key.
    pub fn top(&self) -> Option<Counted> {
        self.items.iter().copied().max_by_key(|c| c.count)
    }

    /// Keys counted at least `min` times.
    pub fn recurring(&self, min: u32) -> usize {
        self.items.iter().filter(|c| c.count >= min).count()
    }

    /// The count of `key`, if tracked.
    pub fn count(&self, key: u64) -> u32 {
        self.items
            .iter()
            .find(|c| c.key == key)
            .map_or(0, |c| c.count)
    }
}

/// The state kept for one account (or one end user behind a key).
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// Requests seen.
    pub requests: u32,
    /// CUSUM of evidence.
    pub cusum: f32,
    /// Highest CUSUM reached.
    pub peak: f32,
    /// Evidence contributed by each reason (positive parts only).
    pub contributions: [f32; REASONS],
    /// When it first crossed the threshold: (ts ms, request count).
    pub first_flag: Option<(i64, u32)>,
    /// Request ids of the strongest evidence before the flag, then the flagging request.
    pub evidence: Vec<Box<str>>,
    /// Timestamp of the previous request, ms.
    pub last_ts: Option<i64>,
    /// Near-duplicate ring of recent prompt SimHashes.
    recent: Vec<u64>,
    recent_pos: usize,
    /// Counters.
    pub single_turn: u32,
    /// Requests with a reasoning cue.
    pub elicit: u32,
    /// Near-duplicate re-sends.
    pub repeats: u32,
    /// Logit probes.
    pub logit_probes: u32,
    /// System-prompt probes.
    pub probes: u32,
    /// Requests with a system prompt.
    pub with_system: u32,
    /// Output and input tokens.
    pub output_tokens: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Distinct system prompts (first `MAX_SYSTEMS` kept).
    pub systems: Vec<(Fingerprint, u32)>,
    /// Distinct system prompts beyond the kept ones.
    pub systems_overflow: u32,
    /// Affix templates (prefix and suffix fingerprints).
    pub affixes: TopK,
    /// Distinct /24 (IPv4) or /48 (IPv6) networks, first `MAX_NETS` kept.
    pub nets: Vec<u64>,
    /// Distinct networks beyond the kept ones.
    pub nets_overflow: u32,
    /// Requests per hour for the last 24 hours: (hour index, count).
    pub hourly: [(i64, u32); 24],
    /// Capability categories seen (bit set).
    pub categories: u8,
    /// Single-turn requests that declare tools.
    pub tool_opens: u32,
    /// Requests that carry tool results.
    pub tool_closes: u32,
    /// End users behind this key flagged for harvesting.
    pub flagged_end_users: u32,
    /// Requests that came less than two seconds after the previous one.
    pub bursts: u32,
    /// This end user already counted against its key's account.
    pub counted_against_account: bool,
}

impl Track {
    /// Whether `sim` is a near-duplicate of a recent prompt; remembers it.
    pub fn seen_recently(&mut self, sim: u64, tokens: u32) -> bool {
        let hit = tokens >= 4 && self.recent.iter().any(|&r| near(r, sim, 6));
        if self.recent.len() < RECENT {
            self.recent.push(sim);
        } else {
            self.recent[self.recent_pos] = sim;
            self.recent_pos = (self.recent_pos + 1) % RECENT;
        }
        hit
    }

    /// Counts a system prompt; returns (distinct systems, this one's count).
    pub fn add_system(&mut self, fp: Fingerprint) -> (u32, u32, bool) {
        self.with_system += 1;
        if let Some(s) = self.systems.iter_mut().find(|s| s.0 == fp) {
            s.1 += 1;
            let count = s.1;
            return (self.distinct_systems(), count, false);
        }
        if self.systems.len() < MAX_SYSTEMS {
            self.systems.push((fp, 1));
        } else {
            self.systems_overflow += 1;
        }
        (self.distinct_systems(), 1, true)
    }

    /// Distinct system prompts seen.
    pub fn distinct_systems(&self) -> u32 {
        self.systems.len() as u32 + self.systems_overflow
    }

    /// Counts a network; returns whether it is new to the account.
    pub fn add_net(&mut self, net: u64) -> bool {
        if self.nets.contains(&net) {
            return false;
        }
        if self.nets.len() < MAX_NETS {
            self.nets.push(net);
        } else {
            self.nets_overflow += 1;
        }
        true
    }

    /// Distinct networks seen.
    pub fn distinct_nets(&self) -> u32 {
        self.nets.len() as u32 + self.nets_overflow
    }

    /// Counts a request in the hourly ring; returns requests in the last 24 hours.
    pub fn add_hourly(&mut self, ts_ms: i64) -> u32 {
        let hour = ts_ms.div_euclid(3_600_000);
        let slot = &mut self.hourly[hour.rem_euclid(24) as usize];
        if slot.0 != hour {
            *slot = (hour, 0);
        }
        slot.1 += 1;
        self.hourly
            .iter()
            .filter(|(h, _)| hour - h < 24)
            .map(|(_, c)| c)
            .sum()
    }

    /// How many of the last three hours (this one included) each saw at least `per_hour` requests:
    /// paced volume, unlike one burst.
    pub fn sustained_hours(&self, ts_ms: i64, per_hour: u32) -> u32 {
        let hour = ts_ms.div_euclid(3_600_000);
        self.hourly
            .iter()
            .filter(|(h, c)| hour - h < 3 && *c >= per_hour)
            .count() as u32
    }

    /// Counts an affix template; returns its count.
    pub fn add_affix(&mut self, fp: Fingerprint) -> u32 {
        self.affixes.add(fp, MAX_AFFIXES)
    }

    /// Bytes this track holds on the heap now (its lists' capacities and evidence ids).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.recent.capacity() * size_of::<u64>()
            + self.systems.capacity() * size_of::<(Fingerprint, u32)>()
            + self.nets.capacity() * size_of::<u64>()
            + self.affixes.items.capacity() * size_of::<Counted>()
            + self.evidence.capacity() * size_of::<Box<str>>()
            + self.evidence.iter().map(|e| e.len()).sum::<usize>()
    }

    /// The most a track holds on the heap: every bounded list at its cap (a `Vec` grows to the
    /// next power of two, at least 4) and evidence ids (up to `MAX_EVIDENCE` plus the flagging
    /// request) of the gateway's 28-byte form.
    pub fn max_heap_bytes() -> usize {
        use std::mem::size_of;
        let cap = |n: usize| n.next_power_of_two().max(4);
        cap(RECENT) * size_of::<u64>()
            + cap(MAX_SYSTEMS) * size_of::<(Fingerprint, u32)>()
            + cap(MAX_NETS) * size_of::<u64>()
            + cap(MAX_AFFIXES) * size_of::<Counted>()
            + cap(MAX_EVIDENCE + 1) * size_of::<Box<str>>()
            + (MAX_EVIDENCE + 1) * REQUEST_ID_LEN
    }

    /// Keeps `request_id` as evidence while there is room.
    pub fn keep_evidence(&mut self, request_id: &str) {
        if self.evidence.len() < MAX_EVIDENCE {
            self.evidence.push(request_id.into());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_heavy_hitters_in_bounded_memory() {
        let mut t = TopK::default();
        for i in 0..1000u64 {
            t.add(7, 4);
            t.add(1000 + i, 4);
        }
        assert_eq!(t.top().unwrap().key, 7);
        assert!(t.top().unwrap().count >= 1000);
        assert!(t.items.len() <= 4);
    }

    #[test]
    fn hourly_ring_counts_the_last_day() {
        let mut t = Track::default();
        let h = 3_600_000;
        assert_eq!(t.add_hourly(0), 1);
        assert_eq!(t.add_hourly(h), 2);
        assert_eq!(t.add_hourly(23 * h), 3);
        assert_eq!(t.add_hourly(24 * h), 3, "hour 0 fell out of the window");
    }

    #[test]
    fn near_duplicates_are_found() {
        let mut t = Track::default();
        assert!(!t.seen_recently(0b1111, 10));
        assert!(t.seen_recently(0b0111, 10));
        assert!(!t.seen_recently(u64::MAX, 10));
    }
}
