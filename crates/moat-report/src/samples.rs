//! Latency samples for percentiles, bounded in memory: every value up to a cap, then a uniform
//! reservoir (Algorithm R) with a fixed-seed generator, so a report is reproducible.

/// Values kept per series before the reservoir starts replacing them.
pub const CAP: usize = 65_536;

/// A series of values for percentiles.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    kept: Vec<u64>,
    seen: u64,
    rng: u64,
}

impl Samples {
    /// Adds one value.
    pub fn push(&mut self, value: u64) {
        self.seen += 1;
        if self.kept.len() < CAP {
            self.kept.push(value);
            return;
        }
        let slot = self.next_random() % self.seen;
        if let Ok(slot) = usize::try_from(slot) {
            if let Some(kept) = self.kept.get_mut(slot) {
                *kept = value;
            }
        }
    }

    /// How many values were added (kept or not).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The nearest-rank percentiles of the values kept, for each `p` in `ps` (0 < p ≤ 100): the
    /// smallest value with at least `p` % of the values at or below it. Exact while no more than
    /// [`CAP`] values were added. `None` for an empty series.
    pub fn percentiles(&self, ps: &[f64]) -> Option<Vec<u64>> {
        let mut sorted = self.kept.clone();
        sorted.sort_unstable();
        ps.iter().map(|&p| nearest_rank(&sorted, p)).collect()
    }

    /// splitmix64: small, fast and good enough to pick reservoir slots.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The nearest-rank percentile `p` of `sorted` (ascending): element `ceil(p/100 × n) − 1`.
pub fn nearest_rank(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for v in (1..=100).rev() {
            s.push(v);
        }
        assert_eq!(s.percentiles(&[50.0, 95.0, 100.0]), Some(vec![50, 95, 100]));
        assert_eq!(Samples::default().percentiles(&[50.0]), None);
    }

    #[test]
    fn the_reservoir_stays_bounded_and_representative() {
        let mut s = Samples::default();
        for i in 0..(CAP as u64 * 4) {
            s.push(i % 1000);
        }
        assert_eq!(s.seen(), CAP as u64 * 4);
        assert_eq!(s.kept.len(), CAP);
        let p50 = s.percentiles(&[50.0]).unwrap()[0];
        assert!((450..=550).contains(&p50), "p50 {p50}");
    }
}
