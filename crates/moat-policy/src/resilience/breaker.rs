//! A circuit breaker per target: after enough consecutive failures, stop sending it requests for a
//! while, then let single probes find out whether it has recovered.
//!
//! The whole state lives in one `AtomicU64` because each state needs only one number (Closed: the
//! failure streak; Open: when it may probe; HalfOpen: the probe flag and the success streak). That
//! keeps the common case cheap: in Closed with no failure streak, acquiring a permit and reporting
//! success are one atomic load each and write nothing, so at thousands of requests per second the
//! cores never fight over the cache line. Every change is a compare-and-swap from the word the
//! caller saw, which is what makes "exactly one probe" and "each transition reported once" hold
//! under races: only the caller whose swap succeeds acted.

use std::sync::atomic::{AtomicU64, Ordering};

/// How a [`Breaker`] trips and recovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (0 counts as 1).
    pub failure_threshold: u32,
    /// How long it stays open before the next probe, in milliseconds.
    pub open_ms: u64,
    /// Consecutive probe successes in half-open that close it again (0 counts as 1).
    pub half_open_probes: u32,
}

/// Where a breaker stands, for metrics and the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow; failures are being counted.
    Closed,
    /// Requests are refused until the open period ends.
    Open,
    /// One probe at a time is let through to test the target.
    HalfOpen,
}

/// A state change caused by a verdict, so the gateway can log and count incidents.
///
/// Verdicts cause three: `Closed -> Open` (opened), `HalfOpen -> Open` (a probe failed, reopened)
/// and `HalfOpen -> Closed` (recovered). `Open -> HalfOpen` happens in
/// [`Breaker::try_acquire`] and shows as [`Permit::is_probe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
}

/// The breaker refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open; next probe in {retry_in_ms} ms")]
pub struct Open {
    /// Milliseconds until a probe may go out; 0 while a probe is in flight, whose verdict can
    /// come at any moment.
    pub retry_in_ms: u64,
}

/// A circuit breaker for one target; share it (`Send + Sync`) between all requests to it.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    word: AtomicU64,
}

/// Leave to send one request to the target. Report how it went with [`Permit::success`] or
/// [`Permit::failure`]; dropping it without a verdict (the client went away) changes nothing,
/// except that a probe's slot is freed for the next caller.
#[derive(Debug)]
#[must_use = "report the outcome with success() or failure()"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        let config = BreakerConfig {
            failure_threshold: config.failure_threshold.max(1),
            open_ms: config.open_ms,
            half_open_probes: config.half_open_probes.max(1),
        };
        Breaker {
            config,
            word: AtomicU64::new(Word::Closed { failures: 0 }.encode()),
        }
    }

    /// The configuration in effect (zero counts raised to 1).
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// A permit to call the target, or how long until one may be had.
    ///
    /// Closed: always. Open: never until `open_ms` has passed; the first caller after that turns
    /// the breaker half-open and gets the probe. HalfOpen: the probe, if none is out.
    pub fn try_acquire(&self, now_ms: i64) -> Result<Permit<'_>, Open> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let next = match Word::decode(current) {
                Word::Closed { .. } => return Ok(self.permit(false)),
                Word::Open { until_ms } if now_ms < until_ms => {
                    let retry_in_ms = u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0);
                    return Err(Open { retry_in_ms });
                }
                Word::Open { .. } => Word::HalfOpen {
                    probe_out: true,
                    successes: 0,
                },
                Word::HalfOpen {
                    probe_out: true, ..
                } => return Err(Open { retry_in_ms: 0 }),
                Word::HalfOpen {
                    probe_out: false,
                    successes,
                } => Word::HalfOpen {
                    probe_out: true,
                    successes,
                },
            };
            match self.swap(current, next) {
                Ok(()) => return Ok(self.permit(true)),
                Err(actual) => current = actual,
            }
        }
    }

    /// The state as of `now_ms`: an open breaker whose period has ended reads as half-open, since
    /// the next request will probe.
    pub fn state(&self, now_ms: i64) -> BreakerState {
        match Word::decode(self.word.load(Ordering::Acquire)) {
            Word::Closed { .. } => BreakerState::Closed,
            Word::Open { until_ms } if now_ms < until_ms => BreakerState::Open,
            Word::Open { .. } | Word::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn permit(&self, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            probe,
            settled: false,
        }
    }

    /// Compare-and-swap from `current` to `next`; on failure, the word found instead.
    fn swap(&self, current: u64, next: Word) -> Result<(), u64> {
        self.word
            .compare_exchange_weak(current, next.encode(), Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }

    /// Applies `step` to the current word until its swap succeeds; `step` returns `None` to
    /// leave the word alone (a verdict that no longer applies).
    fn update(
        &self,
        step: impl Fn(Word) -> Option<(Word, Option<Transition>)>,
    ) -> Option<Transition> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let (next, transition) = step(Word::decode(current))?;
            match self.swap(current, next) {
                Ok(()) => return transition,
                Err(actual) => current = actual,
            }
        }
    }

    fn open_until(&self, now_ms: i64) -> Word {
        let open_ms = i64::try_from(self.config.open_ms).unwrap_or(i64::MAX);
        Word::Open {
            until_ms: now_ms.saturating_add(open_ms),
        }
    }

    /// A request let through in Closed succeeded: the failure streak ends. Verdicts of requests
    /// that started before the breaker opened are ignored; only probes decide in half-open.
    fn call_succeeded(&self) -> Option<Transition> {
        self.update(|word| match word {
            Word::Closed { failures } if failures > 0 => Some((Word::Closed { failures: 0 }, None)),
            _ => None,
        })
    }

    fn call_failed(&self, now_ms: i64) -> Option<Transition> {
        let threshold = u64::from(self.config.failure_threshold);
        self.update(|word| match word {
            Word::Closed { failures } if failures + 1 >= threshold => Some((
                self.open_until(now_ms),
                Some(transition(BreakerState::Closed, BreakerState::Open)),
            )),
            Word::Closed { failures } => Some((
                Word::Closed {
                    failures: failures + 1,
                },
                None,
            )),
            _ => None,
        })
    }

    fn probe_succeeded(&self) -> Option<Transition> {
        let needed = u64::from(self.config.half_open_probes);
        self.update(|word| match word {
            Word::HalfOpen {
                probe_out: true,
                successes,
            } if successes + 1 >= needed => Some((
                Word::Closed { failures: 0 },
                Some(transition(BreakerState::HalfOpen, BreakerState::Closed)),
            )),
            Word::HalfOpen {
                probe_out: true,
                successes,
            } => Some((
                Word::HalfOpen {
                    probe_out: false,
                    successes: successes + 1,
                },
                None,
            )),
            _ => None,
        })
    }

    fn probe_failed(&self, now_ms: i64) -> Option<Transition> {
        self.update(|word| match word {
            Word::HalfOpen {
                probe_out: true, ..
            } => Some((
                self.open_until(now_ms),
                Some(transition(BreakerState::HalfOpen, BreakerState::Open)),
            )),
            _ => None,
        })
    }

    fn probe_abandoned(&self) {
        self.update(|word| match word {
            Word::HalfOpen {
                probe_out: true,
                successes,
            } => Some((
                Word::HalfOpen {
                    probe_out: false,
                    successes,
                },
                None,
            )),
            _ => None,
        });
    }
}

impl Permit<'_> {
    /// Whether this permit is the half-open probe, whose verdict decides the breaker's state.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The request succeeded. Returns the transition it caused, if any.
    ///
    /// `now_ms` is not needed by the current policy (a success never starts a timed period); it
    /// keeps both verdicts callable alike.
    pub fn success(mut self, now_ms: i64) -> Option<Transition> {
        let _ = now_ms;
        self.settled = true;
        if self.probe {
            self.breaker.probe_succeeded()
        } else {
            self.breaker.call_succeeded()
        }
    }

    /// The request failed in a way that counts against the target (the caller decides which
    /// errors do: typically connection errors, timeouts, 5xx and 429, not the client's 4xx).
    /// Returns the transition it caused, if any.
    pub fn failure(mut self, now_ms: i64) -> Option<Transition> {
        self.settled = true;
        if self.probe {
            self.breaker.probe_failed(now_ms)
        } else {
            self.breaker.call_failed(now_ms)
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.probe_abandoned();
        }
    }
}

fn transition(from: BreakerState, to: BreakerState) -> Transition {
    Transition { from, to }
}

/// The state word, decoded. Layout: the top two bits name the state, the other 62 carry its
/// number (a probe's flag is the lowest payload bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Word {
    Closed { failures: u64 },
    Open { until_ms: i64 },
    HalfOpen { probe_out: bool, successes: u64 },
}

const TAG_SHIFT: u32 = 62;
const PAYLOAD: u64 = (1 << TAG_SHIFT) - 1;
const TAG_CLOSED: u64 = 0;
const TAG_OPEN: u64 = 1;
const TAG_HALF_OPEN: u64 = 2;

impl Word {
    fn encode(self) -> u64 {
        let (tag, payload) = match self {
            // Streaks stop at the thresholds (u32), far below the payload's range.
            Word::Closed { failures } => (TAG_CLOSED, failures.min(PAYLOAD)),
            // Unix times before 1970 or after the year 146,000 are clamped; neither occurs.
            Word::Open { until_ms } => (TAG_OPEN, until_ms.clamp(0, PAYLOAD as i64) as u64),
            Word::HalfOpen {
                probe_out,
                successes,
            } => (
                TAG_HALF_OPEN,
                (successes.min(PAYLOAD >> 1) << 1) | u64::from(probe_out),
            ),
        };
        (tag << TAG_SHIFT) | payload
    }

    fn decode(word: u64) -> Word {
        let payload = word & PAYLOAD;
        match word >> TAG_SHIFT {
            TAG_OPEN => Word::Open {
                // At most 2^62 - 1, so it fits.
                until_ms: payload as i64,
            },
            TAG_HALF_OPEN => Word::HalfOpen {
                probe_out: payload & 1 == 1,
                successes: payload >> 1,
            },
            // Only the three tags above are ever stored.
            _ => Word::Closed { failures: payload },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Barrier;

    const CLOSED: BreakerState = BreakerState::Closed;
    const OPEN: BreakerState = BreakerState::Open;
    const HALF_OPEN: BreakerState = BreakerState::HalfOpen;

    fn breaker(failure_threshold: u32, open_ms: u64, half_open_probes: u32) -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold,
            open_ms,
            half_open_probes,
        })
    }

    fn fail(breaker: &Breaker, now_ms: i64) -> Option<Transition> {
        breaker.try_acquire(now_ms).unwrap().failure(now_ms)
    }

    fn succeed(breaker: &Breaker, now_ms: i64) -> Option<Transition> {
        breaker.try_acquire(now_ms).unwrap().success(now_ms)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, 1_000, 1);
        assert_eq!(fail(&b, 0), None);
        assert_eq!(fail(&b, 0), None);
        assert_eq!(succeed(&b, 0), None, "a success ends the streak");
        assert_eq!(fail(&b, 1), None);
        assert_eq!(fail(&b, 2), None);
        assert_eq!(b.state(2), CLOSED);
        assert_eq!(fail(&b, 3), Some(transition(CLOSED, OPEN)));
        assert_eq!(b.state(3), OPEN);
    }

    #[test]
    fn refuses_while_open() {
        let b = breaker(1, 1_000, 1);
        fail(&b, 10_000);
        assert_eq!(b.try_acquire(10_000).unwrap_err().retry_in_ms, 1_000);
        assert_eq!(b.try_acquire(10_999).unwrap_err().retry_in_ms, 1);
        assert_eq!(b.state(10_999), OPEN);
        assert_eq!(b.state(11_000), HALF_OPEN);
        let probe = b.try_acquire(11_000).unwrap();
        assert!(probe.is_probe());
        assert_eq!(b.try_acquire(11_000).unwrap_err().retry_in_ms, 0);
        drop(probe);
    }

    #[test]
    fn probe_failure_reopens_for_another_period() {
        let b = breaker(1, 1_000, 1);
        fail(&b, 0);
        let probe = b.try_acquire(1_500).unwrap();
        assert_eq!(probe.failure(1_600), Some(transition(HALF_OPEN, OPEN)));
        assert_eq!(b.state(2_599), OPEN);
        assert_eq!(b.try_acquire(2_000).unwrap_err().retry_in_ms, 600);
        assert!(b.try_acquire(2_600).unwrap().is_probe());
    }

    #[test]
    fn consecutive_probe_successes_close() {
        let b = breaker(1, 1_000, 3);
        fail(&b, 0);
        assert_eq!(succeed(&b, 1_000), None);
        assert_eq!(succeed(&b, 1_001), None);
        assert_eq!(b.state(1_002), HALF_OPEN);
        let probe = b.try_acquire(1_002).unwrap();
        assert!(probe.is_probe());
        assert_eq!(probe.success(1_002), Some(transition(HALF_OPEN, CLOSED)));
        assert_eq!(b.state(1_002), CLOSED);
        assert!(!b.try_acquire(1_003).unwrap().is_probe());
        // A failed probe restarts the success streak after the next open period.
        fail(&b, 2_000);
        succeed(&b, 3_000);
        fail(&b, 3_000);
        succeed(&b, 4_000);
        succeed(&b, 4_000);
        assert_eq!(b.state(4_000), HALF_OPEN);
    }

    #[test]
    fn dropped_probe_frees_the_slot_without_a_verdict() {
        let b = breaker(1, 1_000, 2);
        fail(&b, 0);
        succeed(&b, 1_000);
        drop(b.try_acquire(1_000).unwrap());
        assert_eq!(b.state(1_000), HALF_OPEN);
        let probe = b.try_acquire(1_000).unwrap();
        assert!(probe.is_probe());
        assert_eq!(
            probe.success(1_000),
            Some(transition(HALF_OPEN, CLOSED)),
            "the streak survived the dropped probe"
        );
    }

    #[test]
    fn verdicts_from_before_the_breaker_opened_are_ignored() {
        let b = breaker(1, 1_000, 1);
        let early_ok = b.try_acquire(0).unwrap();
        let early_fail = b.try_acquire(0).unwrap();
        let first = b.try_acquire(0).unwrap();
        assert_eq!(first.failure(0), Some(transition(CLOSED, OPEN)));
        assert_eq!(early_fail.failure(1), None);
        assert_eq!(early_ok.success(1), None);
        assert_eq!(b.state(1), OPEN);
        let probe = b.try_acquire(1_000).unwrap();
        assert!(probe.is_probe());
        assert_eq!(probe.success(1_000), Some(transition(HALF_OPEN, CLOSED)));
    }

    #[test]
    fn exactly_one_probe_while_racing() {
        const THREADS: usize = 32;
        let b = breaker(1, 1_000, 1_000);
        fail(&b, 0);
        let barrier = Barrier::new(THREADS);
        for round in 0..50 {
            let now = 1_000 + round;
            let granted = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..THREADS {
                    scope.spawn(|| {
                        barrier.wait();
                        let permit = b.try_acquire(now);
                        if let Ok(permit) = &permit {
                            assert!(permit.is_probe());
                            granted.fetch_add(1, Ordering::SeqCst);
                        }
                        // Hold every permit until all threads have tried.
                        barrier.wait();
                        if let Ok(permit) = permit {
                            assert_eq!(permit.success(now), None);
                        }
                    });
                }
            });
            assert_eq!(granted.load(Ordering::SeqCst), 1, "round {round}");
        }
    }

    #[test]
    fn racing_failures_report_the_opening_once() {
        const THREADS: usize = 32;
        let b = breaker(5, 1_000, 1);
        let barrier = Barrier::new(THREADS);
        let opened = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    let permit = b.try_acquire(0).unwrap();
                    barrier.wait();
                    if let Some(t) = permit.failure(0) {
                        assert_eq!(t, transition(CLOSED, OPEN));
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        assert_eq!(b.state(0), OPEN);
    }

    #[test]
    fn zero_counts_mean_one() {
        let b = breaker(0, 0, 0);
        assert_eq!(b.config().failure_threshold, 1);
        assert_eq!(fail(&b, 5), Some(transition(CLOSED, OPEN)));
        assert_eq!(succeed(&b, 5), Some(transition(HALF_OPEN, CLOSED)));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let now = 1_792_567_680_000;
        let b = breaker(1, u64::MAX, 1);
        fail(&b, now);
        assert_eq!(b.state(now), OPEN);
        assert!(b.try_acquire(now + 1).unwrap_err().retry_in_ms > 1 << 61);
        assert!(b.try_acquire(i64::MIN).is_err());
    }

    #[test]
    fn words_round_trip() {
        for word in [
            Word::Closed { failures: 0 },
            Word::Closed { failures: 7 },
            Word::Open { until_ms: 0 },
            Word::Open {
                until_ms: 1_792_567_680_000,
            },
            Word::HalfOpen {
                probe_out: true,
                successes: 0,
            },
            Word::HalfOpen {
                probe_out: false,
                successes: 9,
            },
        ] {
            assert_eq!(Word::decode(word.encode()), word);
        }
    }

    #[test]
    fn is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Breaker>();
        assert_send_sync::<Permit<'static>>();
    }
}
