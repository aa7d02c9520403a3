//! A rate limit for log lines a client can cause.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Lets a line through at most once per period and counts the ones it held back, so a flood of
/// refusals costs one line per period, which says how many it stands for.
#[derive(Debug)]
pub struct LogEvery {
    every_ms: u64,
    /// Milliseconds since [`base`] of the last line let through, plus one (0: none yet).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl LogEvery {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        let _ = base();
        Self {
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be written now.
    pub fn ready(&self) -> Option<u64> {
        let now = u64::try_from(base().elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= self.every_ms;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_the_count_of_the_rest() {
        let l = LogEvery::new(Duration::from_secs(3600));
        assert_eq!(l.ready(), Some(0));
        for _ in 0..5 {
            assert_eq!(l.ready(), None);
        }
        let l = LogEvery::new(Duration::ZERO);
        assert_eq!(l.ready(), Some(0));
        assert_eq!(l.ready(), Some(0));
    }
}
