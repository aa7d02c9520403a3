//! A token bucket as the pair (level, updated_at), with every state transition spelled out, so a
//! store backend can persist the same two numbers and apply the same arithmetic.

/// Sub-units per whole token. A limit of `L` per minute refills `L / 60_000` tokens per
/// millisecond, which is exactly `L` sub-units per millisecond: integer arithmetic, no drift.
pub(crate) const SCALE: i64 = 60_000;

/// Largest per-minute limit honoured. Larger limits are clamped to it so that a full bucket
/// (`limit * SCALE` sub-units) always fits in an `i64`.
pub(crate) const MAX_LIMIT: u64 = 1_000_000_000_000;

/// What `wait_ms` answers for a bucket whose limit is zero, which never refills: a hint to come
/// back in a minute rather than a time at which the request would succeed.
pub(crate) const ZERO_LIMIT_WAIT_MS: u64 = 60_000;

/// A continuously refilled token bucket of capacity `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Per-minute limit, which is also the capacity in whole units (clamped to `MAX_LIMIT`).
    limit: i64,
    /// Fill level in sub-units. Never above capacity; below zero it is debt from a settle that
    /// used more than was reserved.
    level: i64,
    /// When `level` was last brought up to date.
    updated_at_ms: i64,
}

impl Bucket {
    /// A full bucket: a principal seen for the first time may use its whole limit at once.
    pub(crate) fn full(limit: u64, now_ms: i64) -> Bucket {
        let limit = clamp_limit(limit);
        Bucket {
            limit,
            level: limit * SCALE,
            updated_at_ms: now_ms,
        }
    }

    /// The per-minute limit this bucket enforces.
    pub(crate) fn limit(&self) -> u64 {
        self.limit.unsigned_abs()
    }

    /// Follows a configuration change: a lower limit caps the level, a higher one grants nothing
    /// at once (the bucket refills towards the new capacity).
    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = clamp_limit(limit);
        self.level = self.level.min(self.capacity());
    }

    /// Brings the level up to `now_ms`. A `now_ms` older than the last update (another thread
    /// read the clock later) refills nothing and leaves the timestamp alone.
    pub(crate) fn refill(&mut self, now_ms: i64) {
        if now_ms <= self.updated_at_ms {
            return;
        }
        let elapsed = i128::from(now_ms) - i128::from(self.updated_at_ms);
        let level = i128::from(self.level) + elapsed * i128::from(self.limit);
        self.level = clamp_level(level, self.capacity());
        self.updated_at_ms = now_ms;
    }

    /// Whether the bucket holds `units` whole units (a zero-unit check passes unless in debt).
    pub(crate) fn holds(&self, units: u64) -> bool {
        i128::from(self.level) >= i128::from(units) * i128::from(SCALE)
    }

    /// Adds `delta` whole units (negative: takes them). The level never exceeds capacity and may
    /// go negative, which is debt.
    pub(crate) fn add(&mut self, delta: i128) {
        let level = i128::from(self.level) + delta * i128::from(SCALE);
        self.level = clamp_level(level, self.capacity());
    }

    /// Milliseconds from the last update until the bucket holds `units`; 0 if it holds them now.
    pub(crate) fn wait_ms(&self, units: u64) -> u64 {
        let missing = i128::from(units) * i128::from(SCALE) - i128::from(self.level);
        if missing <= 0 {
            0
        } else if self.limit == 0 {
            ZERO_LIMIT_WAIT_MS
        } else {
            ceil_div(missing, i128::from(self.limit))
        }
    }

    /// Whole units available now (0 while in debt).
    pub(crate) fn remaining(&self) -> u64 {
        (self.level / SCALE).max(0).unsigned_abs()
    }

    /// Milliseconds until the bucket is full again.
    pub(crate) fn reset_ms(&self) -> u64 {
        self.wait_ms(self.limit())
    }

    /// Whether the bucket is full at `now_ms`, that is, forgetting it loses nothing.
    pub(crate) fn is_full_at(&self, now_ms: i64) -> bool {
        let mut at_now = *self;
        at_now.refill(now_ms);
        at_now.level >= at_now.capacity()
    }

    fn capacity(&self) -> i64 {
        self.limit * SCALE
    }
}

fn clamp_limit(limit: u64) -> i64 {
    // MAX_LIMIT fits an i64, so the conversion cannot fail once clamped.
    i64::try_from(limit.min(MAX_LIMIT)).unwrap_or(0)
}

fn clamp_level(level: i128, capacity: i64) -> i64 {
    i64::try_from(level.min(i128::from(capacity))).unwrap_or(i64::MIN)
}

fn ceil_div(numerator: i128, denominator: i128) -> u64 {
    let quotient = (numerator + denominator - 1) / denominator;
    u64::try_from(quotient).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_one_request_per_second_at_sixty_per_minute() {
        let mut bucket = Bucket::full(60, 0);
        bucket.add(-60);
        assert_eq!(bucket.remaining(), 0);
        assert_eq!(bucket.wait_ms(1), 1000);
        bucket.refill(999);
        assert!(!bucket.holds(1));
        bucket.refill(1000);
        assert!(bucket.holds(1));
        assert_eq!(bucket.remaining(), 1);
        assert_eq!(bucket.reset_ms(), 59_000);
    }

    #[test]
    fn never_exceeds_capacity_and_may_go_into_debt() {
        let mut bucket = Bucket::full(100, 0);
        bucket.add(50);
        assert_eq!(bucket.remaining(), 100);
        bucket.add(-150);
        assert_eq!(bucket.remaining(), 0);
        assert!(!bucket.holds(0));
        // 50 tokens of debt at 100 per minute: 30 s to get back to zero.
        assert_eq!(bucket.wait_ms(0), 30_000);
        bucket.refill(1_000_000);
        assert!(bucket.is_full_at(1_000_000));
    }

    #[test]
    fn an_older_clock_reading_refills_nothing() {
        let mut bucket = Bucket::full(60, 10_000);
        bucket.add(-1);
        bucket.refill(5_000);
        assert_eq!(bucket.remaining(), 59);
        assert!(!bucket.is_full_at(10_999));
        assert!(bucket.is_full_at(11_000));
    }

    #[test]
    fn a_zero_limit_never_admits_and_huge_limits_are_clamped() {
        let bucket = Bucket::full(0, 0);
        assert!(!bucket.holds(1));
        assert_eq!(bucket.wait_ms(1), ZERO_LIMIT_WAIT_MS);
        let huge = Bucket::full(u64::MAX, 0);
        assert_eq!(huge.limit(), MAX_LIMIT);
        assert_eq!(huge.remaining(), MAX_LIMIT);
    }
}
