//! How long to wait before the next attempt: capped exponential backoff with full jitter, and the
//! provider's own `retry-after-ms` / `retry-after` hint.

use rand::Rng;
use time::macros::format_description;
use time::PrimitiveDateTime;

/// Capped exponential backoff with "full jitter".
///
/// The delay before retry `n` is uniform in `[0, min(max_ms, base_ms * 2^(n-1))]`, as in the AWS
/// Architecture Blog's "Exponential Backoff And Jitter" (Marc Brooker, 2015): spreading retries over
/// the whole window keeps many clients that failed together from retrying together, and does less
/// total work than "equal" or "decorrelated" jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Window of the first retry, in milliseconds.
    pub base_ms: u64,
    /// Largest window, in milliseconds.
    pub max_ms: u64,
}

impl Backoff {
    /// The delay before retry number `retry` (1 is the first retry; 0 counts as 1), never below
    /// `server_hint_ms` when the provider sent one.
    ///
    /// The hint is not capped by `max_ms`: whether a long hint is worth waiting for (or a reason
    /// to fall back to another target instead) is the caller's decision.
    pub fn delay_ms(&self, retry: u32, server_hint_ms: Option<u64>, rng: &mut impl Rng) -> u64 {
        let cap = self.cap_ms(retry);
        let jittered = rng.gen_range(0..=cap);
        jittered.max(server_hint_ms.unwrap_or(0))
    }

    /// The upper end of retry `retry`'s window: `min(max_ms, base_ms * 2^(retry-1))`, saturating.
    pub fn cap_ms(&self, retry: u32) -> u64 {
        let factor = 1u64
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.max_ms)
    }
}

/// The wait a provider asked for, in milliseconds, from its response headers.
///
/// `retry-after-ms` (fractional milliseconds, which OpenAI sends and its SDKs read first) wins;
/// otherwise `retry-after` as seconds (integer or fractional) or as an HTTP-date in IMF-fixdate
/// form (`Wed, 21 Oct 2026 07:28:00 GMT`), measured from `now_ms` (a date in the past gives
/// `Some(0)`). Fractions round up, so the wait is never shorter than asked. Values that are
/// negative, not finite or unparseable count as absent. The obsolete RFC 850 and asctime date
/// forms are not accepted; providers do not send them.
pub fn retry_after_ms(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now_ms: i64,
) -> Option<u64> {
    retry_after_ms
        .and_then(|v| non_negative_ms(v, 1.0))
        .or_else(|| {
            let value = retry_after?;
            non_negative_ms(value, 1000.0).or_else(|| http_date_ms(value, now_ms))
        })
}

/// A non-negative decimal number times `scale`, rounded up to whole milliseconds.
fn non_negative_ms(value: &str, scale: f64) -> Option<u64> {
    let number: f64 = value.trim().parse().ok()?;
    let ms = (number * scale).ceil();
    // Checked before rounding, which would turn -0.5 into -0.0. `as` saturates for values beyond
    // u64, which is the right answer for an absurd hint.
    (number >= 0.0 && ms.is_finite()).then_some(ms as u64)
}

/// Milliseconds from `now_ms` until an IMF-fixdate, zero when it has passed.
fn http_date_ms(value: &str, now_ms: i64) -> Option<u64> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = PrimitiveDateTime::parse(value.trim(), format).ok()?;
    let at_ms = date.assume_utc().unix_timestamp().saturating_mul(1000);
    Some(u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// 2026-10-21T07:28:00Z in Unix milliseconds.
    const DATE_MS: i64 = 1_792_567_680_000;
    const DATE: &str = "Wed, 21 Oct 2026 07:28:00 GMT";

    #[test]
    fn window_doubles_up_to_the_cap() {
        let backoff = Backoff {
            base_ms: 100,
            max_ms: 1_000,
        };
        let caps: Vec<u64> = (0..=6).map(|n| backoff.cap_ms(n)).collect();
        assert_eq!(caps, [100, 100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn huge_retry_numbers_saturate() {
        let backoff = Backoff {
            base_ms: 3,
            max_ms: u64::MAX,
        };
        assert_eq!(backoff.cap_ms(64), 3u64.saturating_mul(1 << 63));
        assert_eq!(backoff.cap_ms(65), u64::MAX);
        assert_eq!(backoff.cap_ms(u32::MAX), u64::MAX);
        let mut rng = StdRng::seed_from_u64(1);
        backoff.delay_ms(u32::MAX, Some(u64::MAX), &mut rng);
    }

    #[test]
    fn delays_are_jittered_over_the_whole_window() {
        let backoff = Backoff {
            base_ms: 100,
            max_ms: 10_000,
        };
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<u64> = (0..1_000)
            .map(|_| backoff.delay_ms(3, None, &mut rng))
            .collect();
        assert!(delays.iter().all(|&d| d <= 400));
        // Full jitter reaches both ends of [0, 400], not just its middle.
        assert!(delays.iter().any(|&d| d < 40), "{delays:?}");
        assert!(delays.iter().any(|&d| d > 360), "{delays:?}");
        let mean = delays.iter().sum::<u64>() / 1_000;
        assert!((170..230).contains(&mean), "mean {mean}");
    }

    #[test]
    fn server_hint_is_a_floor() {
        let backoff = Backoff {
            base_ms: 100,
            max_ms: 1_000,
        };
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            assert_eq!(backoff.delay_ms(1, Some(5_000), &mut rng), 5_000);
            assert!(backoff.delay_ms(4, Some(300), &mut rng) >= 300);
        }
        let zero = Backoff {
            base_ms: 0,
            max_ms: 0,
        };
        assert_eq!(zero.delay_ms(1, None, &mut rng), 0);
    }

    #[test]
    fn retry_after_ms_is_read_first_and_rounds_up() {
        assert_eq!(retry_after_ms(Some("1500"), Some("2"), 0), Some(1_500));
        assert_eq!(retry_after_ms(Some("12.25"), None, 0), Some(13));
        assert_eq!(retry_after_ms(Some(" 0 "), None, 0), Some(0));
    }

    #[test]
    fn retry_after_takes_seconds() {
        assert_eq!(retry_after_ms(None, Some("2"), 0), Some(2_000));
        assert_eq!(retry_after_ms(None, Some("0.5"), 0), Some(500));
        assert_eq!(retry_after_ms(None, Some("0.0001"), 0), Some(1));
        // A broken retry-after-ms falls back to retry-after.
        assert_eq!(retry_after_ms(Some("soon"), Some("3"), 0), Some(3_000));
    }

    #[test]
    fn retry_after_takes_an_http_date() {
        assert_eq!(
            retry_after_ms(None, Some(DATE), DATE_MS - 4_500),
            Some(4_500)
        );
        assert_eq!(retry_after_ms(None, Some(DATE), DATE_MS), Some(0));
        assert_eq!(retry_after_ms(None, Some(DATE), DATE_MS + 60_000), Some(0));
    }

    #[test]
    fn garbage_and_negative_values_are_absent() {
        for bad in [
            "",
            "soon",
            "-1",
            "-0.5",
            "NaN",
            "inf",
            "1e400",
            "21 Oct 2026 07:28:00 GMT",
            "Wed, 21 Oct 2026 07:28:00 PST",
            "Wed, 32 Oct 2026 07:28:00 GMT",
        ] {
            assert_eq!(retry_after_ms(Some(bad), Some(bad), 0), None, "{bad:?}");
        }
        assert_eq!(retry_after_ms(None, None, 0), None);
    }
}
