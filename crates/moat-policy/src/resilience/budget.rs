//! A retry budget: retries and fallbacks may add at most a fixed fraction on top of the original
//! requests of the last few seconds, so an outage cannot turn into a retry storm.
//!
//! Modelled on tower's `retry::budget::TpsBudget` (itself from Finagle): each original request
//! deposits, each retry withdraws, deposits and withdrawals expire after a TTL, and a reserve lets
//! a trickle of retries through when there is no traffic at all. Unlike tower, time is an argument.

use parking_lot::Mutex;

/// Slots the TTL is divided into; a deposit expires between `ttl * (SLOTS-1)/SLOTS` and `ttl`
/// after it was made.
const SLOTS: usize = 10;

/// What one retry costs, in the budget's fixed-point units; a deposit is worth `ratio * UNIT`.
const UNIT: i64 = 1_000_000;

/// Largest accepted retry ratio (tower's bound too).
const MAX_RATIO: f64 = 1_000.0;

/// Largest accepted TTL, in milliseconds (tower's bound too).
const MAX_TTL_MS: u64 = 60_000;

/// A sliding-window retry budget, shared by all requests to one route (`Send + Sync`).
///
/// A `parking_lot` mutex around ten integers: every call touches the window (to expire slots) and
/// the critical section is a few additions, so an uncontended lock costs what the atomics tower
/// uses would, without the races tower accepts between rotating a slot and writing to it.
#[derive(Debug)]
pub struct RetryBudget {
    /// Milliseconds per slot.
    slot_ms: i64,
    /// Units one original request deposits.
    deposit: i64,
    /// Units available without any deposit: `min_per_sec` retries per second of TTL.
    reserve: i64,
    window: Mutex<Window>,
}

/// Net deposits per slot, in a ring indexed by slot number.
#[derive(Debug)]
struct Window {
    /// Slot number (`now_ms / slot_ms`) of the newest slot.
    head: i64,
    slots: [i64; SLOTS],
}

impl RetryBudget {
    /// A budget where deposits count for `ttl_ms`, `min_per_sec` retries per second are always
    /// allowed, and each original request allows `retry_ratio` more (0.2 = one retry per five
    /// requests).
    ///
    /// Out-of-range values are clamped: `ttl_ms` to `10..=60_000` (ten slots of at least 1 ms),
    /// `retry_ratio` to `0.0..=1000.0` (NaN counts as 0).
    pub fn new(ttl_ms: u64, min_per_sec: u32, retry_ratio: f64) -> Self {
        let ttl_ms = ttl_ms.clamp(SLOTS as u64, MAX_TTL_MS);
        let ratio = if retry_ratio.is_nan() {
            0.0
        } else {
            retry_ratio.clamp(0.0, MAX_RATIO)
        };
        // min_per_sec * ttl_s * UNIT, computed without losing fractions of a second.
        let reserve = i64::from(min_per_sec)
            .saturating_mul(ttl_ms as i64)
            .saturating_mul(UNIT / 1_000);
        RetryBudget {
            slot_ms: ttl_ms as i64 / SLOTS as i64,
            // At most 1000 * UNIT, well inside i64.
            deposit: (ratio * UNIT as f64).round() as i64,
            reserve,
            window: Mutex::new(Window {
                head: i64::MIN,
                slots: [0; SLOTS],
            }),
        }
    }

    /// Records one original (not retried) request.
    pub fn deposit(&self, now_ms: i64) {
        let mut window = self.window.lock();
        let slot = self.advance(&mut window, now_ms);
        window.slots[slot] = window.slots[slot].saturating_add(self.deposit);
    }

    /// Asks for one retry or fallback attempt; `true` means go ahead, and the attempt is charged.
    pub fn withdraw(&self, now_ms: i64) -> bool {
        let mut window = self.window.lock();
        let slot = self.advance(&mut window, now_ms);
        let balance = window
            .slots
            .iter()
            .fold(self.reserve, |sum, &s| sum.saturating_add(s));
        if balance < UNIT {
            return false;
        }
        window.slots[slot] = window.slots[slot].saturating_sub(UNIT);
        true
    }

    /// Moves the window to `now_ms`, clearing slots that fell out of it, and returns the index
    /// of the current slot. A clock that went backwards writes into the newest slot.
    fn advance(&self, window: &mut Window, now_ms: i64) -> usize {
        let now_slot = now_ms.div_euclid(self.slot_ms);
        if now_slot > window.head {
            let passed = now_slot.saturating_sub(window.head);
            if passed >= SLOTS as i64 {
                window.slots = [0; SLOTS];
            } else {
                for n in window.head + 1..=now_slot {
                    window.slots[ring_index(n)] = 0;
                }
            }
            window.head = now_slot;
        }
        ring_index(window.head)
    }
}

fn ring_index(slot: i64) -> usize {
    // rem_euclid by SLOTS is in 0..SLOTS, so the cast is exact.
    slot.rem_euclid(SLOTS as i64) as usize
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn retries_allowed(budget: &RetryBudget, now_ms: i64) -> usize {
        std::iter::from_fn(|| budget.withdraw(now_ms).then_some(()))
            .take(100_000)
            .count()
    }

    #[test]
    fn ratio_bounds_retries_by_requests() {
        let budget = RetryBudget::new(10_000, 0, 0.2);
        for i in 0..100 {
            budget.deposit(1_000 + i * 10);
        }
        for n in 0..20 {
            assert!(budget.withdraw(3_000), "retry {}", n + 1);
        }
        assert!(!budget.withdraw(3_000), "the 21st retry is refused");
        // New requests earn new retries.
        for _ in 0..5 {
            budget.deposit(3_000);
        }
        assert!(budget.withdraw(3_000));
        assert!(!budget.withdraw(3_000));
    }

    #[test]
    fn no_traffic_no_ratio_no_retries() {
        let budget = RetryBudget::new(10_000, 0, 0.2);
        assert!(!budget.withdraw(0));
        let budget = RetryBudget::new(10_000, 0, 0.0);
        budget.deposit(0);
        assert!(!budget.withdraw(0));
    }

    #[test]
    fn deposits_expire_after_the_ttl() {
        let budget = RetryBudget::new(10_000, 0, 0.5);
        for _ in 0..10 {
            budget.deposit(100_000);
        }
        assert!(
            budget.withdraw(108_999),
            "still inside the window one slot before the TTL"
        );
        // Four retries' worth would be left had the deposits not expired.
        assert_eq!(retries_allowed(&budget, 110_000), 0);
        // A long silence clears everything, withdrawals included.
        budget.deposit(200_000);
        budget.deposit(200_000);
        assert_eq!(retries_allowed(&budget, 200_000), 1);
    }

    #[test]
    fn withdrawals_expire_too() {
        let budget = RetryBudget::new(1_000, 1, 0.0);
        assert_eq!(retries_allowed(&budget, 0), 1);
        assert_eq!(retries_allowed(&budget, 500), 0);
        assert_eq!(retries_allowed(&budget, 1_000), 1);
    }

    #[test]
    fn min_per_sec_allows_retries_without_traffic() {
        let budget = RetryBudget::new(10_000, 2, 0.1);
        assert_eq!(retries_allowed(&budget, 0), 20, "2 per second over 10 s");
        assert_eq!(retries_allowed(&budget, 5_000), 0);
        // The reserve comes back as the withdrawals expire.
        assert_eq!(retries_allowed(&budget, 10_000), 20);
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let budget = RetryBudget::new(10_000, 0, 1.0);
        budget.deposit(50_000);
        budget.deposit(40_000);
        assert_eq!(retries_allowed(&budget, 45_000), 2);
    }

    #[test]
    fn out_of_range_settings_are_clamped() {
        let budget = RetryBudget::new(0, u32::MAX, f64::NAN);
        assert!(budget.withdraw(i64::MIN));
        assert!(budget.withdraw(i64::MAX));
        let budget = RetryBudget::new(u64::MAX, 0, f64::INFINITY);
        budget.deposit(0);
        assert_eq!(retries_allowed(&budget, 0), 1_000);
    }

    #[test]
    fn is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RetryBudget>();
    }
}
