#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const THREADS: usize = 64;

fn id(name: &str) -> Arc<str> {
    Arc::from(name)
}

fn rpm(limit: u64) -> RateLimits {
    RateLimits {
        requests_per_minute: Some(limit),
        ..RateLimits::default()
    }
}

fn tpm(limit: u64) -> RateLimits {
    RateLimits {
        tokens_per_minute: Some(limit),
        ..RateLimits::default()
    }
}

fn concurrency(limit: u32) -> RateLimits {
    RateLimits {
        concurrency: Some(limit),
        ..RateLimits::default()
    }
}

/// Tokens left in a principal's bucket, read through a zero-token admission that is dropped.
fn tokens_left(limiter: &Limiter, now_ms: i64, key: &Arc<str>, limits: &RateLimits) -> u64 {
    let admission = limiter.admit(now_ms, &[(Scope::Key, key, limits)], 0);
    admission.unwrap().status().tokens.unwrap().remaining
}

#[test]
fn admission_is_send_sync_and_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Admission>();
    check::<Limiter>();
    check::<Refusal>();
}

#[test]
fn exactly_the_requests_limit_is_admitted_under_contention() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = rpm(100);
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..10 {
                    if limiter.admit(5, &[(Scope::Key, &key, &limits)], 0).is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.load(Ordering::Relaxed), 100);
}

#[test]
fn exactly_floor_limit_over_estimate_token_reservations_are_admitted() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = tpm(1000);
    let held = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..4 {
                    if let Ok(admission) = limiter.admit(5, &[(Scope::Key, &key, &limits)], 30) {
                        // Keep it: dropping would give the reservation back.
                        held.lock().push(admission);
                    }
                }
            });
        }
    });
    assert_eq!(held.lock().len(), 1000 / 30);
}

#[test]
fn never_more_than_the_concurrency_limit_in_flight() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = concurrency(5);
    let in_flight = AtomicU32::new(0);
    let max_seen = AtomicU32::new(0);
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..200 {
                    let Ok(admission) = limiter.admit(5, &[(Scope::Key, &key, &limits)], 0) else {
                        continue;
                    };
                    admitted.fetch_add(1, Ordering::Relaxed);
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_seen.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    // Count down before releasing, so the count never lags behind the limiter.
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    admission.settle(5, 0);
                }
            });
        }
    });
    let max_seen = max_seen.load(Ordering::SeqCst);
    assert!((1..=5).contains(&max_seen), "max in flight {max_seen}");
    assert!(admitted.load(Ordering::Relaxed) > 5);
    // All slots came back.
    let all: Vec<_> = (0..5)
        .map(|_| limiter.admit(5, &[(Scope::Key, &key, &limits)], 0).unwrap())
        .collect();
    assert!(limiter.admit(5, &[(Scope::Key, &key, &limits)], 0).is_err());
    drop(all);
}

#[test]
fn an_account_and_its_keys_are_both_respected_under_contention() {
    let limiter = Limiter::new();
    let keys = [id("k1"), id("k2"), id("k3")];
    let account = id("acme");
    let (key_limits, account_limits) = (rpm(10), rpm(25));
    let per_key = [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ];
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let (keys, account, per_key) = (&keys, &account, &per_key);
            let (limiter, key_limits, account_limits) = (&limiter, &key_limits, &account_limits);
            s.spawn(move || {
                let k = thread % 3;
                for _ in 0..10 {
                    let checks = [
                        (Scope::Key, &keys[k], key_limits),
                        (Scope::Account, account, account_limits),
                    ];
                    if limiter.admit(5, &checks, 0).is_ok() {
                        per_key[k].fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let counts: Vec<usize> = per_key.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    assert!(counts.iter().all(|&c| c <= 10), "{counts:?}");
    // Keys could give 30 but the account allows 25; refusals by the account took nothing from
    // the keys, so exactly 25 were admitted and each key has exactly its unused requests left.
    assert_eq!(counts.iter().sum::<usize>(), 25);
    let other_account = id("other");
    for (key, used) in keys.iter().zip(&counts) {
        let mut more = 0;
        while limiter
            .admit(
                5,
                &[
                    (Scope::Key, key, &key_limits),
                    (Scope::Account, &other_account, &RateLimits::default()),
                ],
                0,
            )
            .is_ok()
        {
            more += 1;
        }
        assert_eq!(used + more, 10);
    }
}

#[test]
fn requests_refill_exactly_one_per_second_at_sixty_per_minute() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = rpm(60);
    for _ in 0..60 {
        limiter.admit(0, &[(Scope::Key, &key, &limits)], 0).unwrap();
    }
    let refusal = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 0)
        .unwrap_err();
    assert_eq!(refusal.retry_after_ms, 1000);
    let refusal = limiter
        .admit(999, &[(Scope::Key, &key, &limits)], 0)
        .unwrap_err();
    assert_eq!(refusal.retry_after_ms, 1);
    assert_eq!(refusal.kind, LimitKind::Requests);
    let admission = limiter
        .admit(1000, &[(Scope::Key, &key, &limits)], 0)
        .unwrap();
    assert_eq!(
        admission.status().requests,
        Some(BucketStatus {
            limit: 60,
            remaining: 0,
            reset_ms: 60_000
        })
    );
    assert!(limiter
        .admit(1000, &[(Scope::Key, &key, &limits)], 0)
        .is_err());
    // Thirty seconds later, thirty more.
    for _ in 0..30 {
        limiter
            .admit(31_000, &[(Scope::Key, &key, &limits)], 0)
            .unwrap();
    }
    assert!(limiter
        .admit(31_000, &[(Scope::Key, &key, &limits)], 0)
        .is_err());
}

#[test]
fn retry_after_is_the_exact_wait_for_the_token_reservation() {
    let limiter = Limiter::new();
    let key = id("k1");
    // 600 per minute: one token every 100 ms.
    let limits = tpm(600);
    let first = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 600)
        .unwrap();
    first.settle(0, 600);
    let refusal = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 50)
        .unwrap_err();
    assert_eq!(refusal.kind, LimitKind::Tokens);
    assert_eq!(refusal.retry_after_ms, 5000);
    assert_eq!(refusal.status.tokens.unwrap().remaining, 0);
    let refusal = limiter
        .admit(4999, &[(Scope::Key, &key, &limits)], 50)
        .unwrap_err();
    assert_eq!(refusal.retry_after_ms, 1);
    assert!(limiter
        .admit(5000, &[(Scope::Key, &key, &limits)], 50)
        .is_ok());
}

#[test]
fn settle_refunds_unused_tokens_up_to_capacity() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = tpm(1000);
    let admission = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 500)
        .unwrap();
    assert_eq!(admission.status().tokens.unwrap().remaining, 500);
    admission.settle(0, 100);
    assert_eq!(tokens_left(&limiter, 0, &key, &limits), 900);
    // A refund after the bucket has refilled never pushes it past capacity.
    let admission = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 500)
        .unwrap();
    admission.settle(60_000, 0);
    assert_eq!(tokens_left(&limiter, 60_000, &key, &limits), 1000);
}

#[test]
fn settle_over_the_reservation_leaves_debt_that_delays_later_requests() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = tpm(1000);
    let admission = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 100)
        .unwrap();
    admission.settle(0, 1500);
    // 500 tokens of debt at 1000 per minute: 30 s until even a zero-token request passes.
    let refusal = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 0)
        .unwrap_err();
    assert_eq!(refusal.retry_after_ms, 30_000);
    assert!(limiter
        .admit(29_999, &[(Scope::Key, &key, &limits)], 0)
        .is_err());
    assert_eq!(tokens_left(&limiter, 30_000, &key, &limits), 0);
}

#[test]
fn an_estimate_above_capacity_reserves_the_capacity() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = tpm(100);
    let admission = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 500)
        .unwrap();
    assert_eq!(admission.status().tokens.unwrap().remaining, 0);
    assert!(limiter.admit(0, &[(Scope::Key, &key, &limits)], 1).is_err());
    admission.settle(0, 500);
    // 400 of debt: four minutes until the bucket is back at zero, five until full.
    let refusal = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 500)
        .unwrap_err();
    assert_eq!(refusal.retry_after_ms, 300_000);
    assert_eq!(refusal.status.tokens.unwrap().reset_ms, 300_000);
}

#[test]
fn dropping_an_admission_returns_tokens_and_slots_but_not_the_request() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = RateLimits {
        requests_per_minute: Some(10),
        tokens_per_minute: Some(1000),
        concurrency: Some(1),
    };
    let admission = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 400)
        .unwrap();
    let refusal = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 0)
        .unwrap_err();
    assert_eq!(refusal.kind, LimitKind::Concurrency);
    assert_eq!(refusal.retry_after_ms, CONCURRENCY_RETRY_MS);
    drop(admission);
    let admission = limiter
        .admit(0, &[(Scope::Key, &key, &limits)], 1000)
        .unwrap();
    let status = admission.status();
    assert_eq!(status.tokens.unwrap().remaining, 0);
    // Two admitted, one refused: the refused one took nothing, the dropped one kept its request.
    assert_eq!(status.requests.unwrap().remaining, 8);
}

#[test]
fn a_refusal_by_the_account_leaves_the_key_untouched() {
    let limiter = Limiter::new();
    let key = id("k1");
    let account = id("acme");
    let key_limits = RateLimits {
        requests_per_minute: Some(10),
        tokens_per_minute: Some(1000),
        concurrency: Some(3),
    };
    let account_limits = rpm(60);
    let checks = [
        (Scope::Key, &key, &key_limits),
        (Scope::Account, &account, &account_limits),
    ];
    let mut held = Vec::new();
    for _ in 0..60 {
        let acct = [(Scope::Account, &account, &account_limits)];
        held.push(limiter.admit(0, &acct, 0).unwrap());
    }
    let refusal = limiter.admit(0, &checks, 300).unwrap_err();
    assert_eq!(
        (refusal.scope, &*refusal.id, refusal.kind),
        (Scope::Account, "acme", LimitKind::Requests)
    );
    assert_eq!(
        refusal.to_string(),
        "rate limit reached for account acme: 60 requests per minute"
    );
    // The key's status is the tightest in the refusal only where it is tighter: requests come
    // from the exhausted account, tokens from the key, which kept all of them.
    assert_eq!(refusal.status.requests.unwrap().remaining, 0);
    assert_eq!(refusal.status.tokens.unwrap().remaining, 1000);
    let admission = limiter
        .admit(0, &[(Scope::Key, &key, &key_limits)], 300)
        .unwrap();
    let status = admission.status();
    assert_eq!(status.requests.unwrap().remaining, 9);
    assert_eq!(status.tokens.unwrap().remaining, 700);
}

#[test]
fn the_refusal_names_the_longest_wait() {
    let limiter = Limiter::new();
    let key = id("k1");
    let account = id("acme");
    let (key_limits, account_limits) = (rpm(60), rpm(1));
    let checks = [
        (Scope::Key, &key, &key_limits),
        (Scope::Account, &account, &account_limits),
    ];
    limiter.admit(0, &checks, 0).unwrap();
    let refusal = limiter.admit(0, &checks, 0).unwrap_err();
    assert_eq!(refusal.scope, Scope::Account);
    assert_eq!(refusal.retry_after_ms, 60_000);
}

#[test]
fn a_principal_listed_twice_counts_once() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = rpm(2);
    let checks = [(Scope::Key, &key, &limits), (Scope::Key, &key, &limits)];
    limiter.admit(0, &checks, 0).unwrap();
    limiter.admit(0, &checks, 0).unwrap();
    assert!(limiter.admit(0, &checks, 0).is_err());
}

#[test]
fn idle_principals_are_evicted_but_never_one_with_requests_in_flight() {
    let limiter = Limiter::new();
    let limits = RateLimits {
        requests_per_minute: Some(60),
        tokens_per_minute: Some(1000),
        concurrency: Some(2),
    };
    let busy = id("busy");
    let in_flight = limiter
        .admit(0, &[(Scope::Key, &busy, &limits)], 10)
        .unwrap();
    let ids: Vec<Arc<str>> = (0..100).map(|n| id(&format!("k{n}"))).collect();
    for key in &ids {
        limiter.admit(0, &[(Scope::Key, key, &limits)], 10).unwrap();
    }
    assert_eq!(limiter.len(), 101);
    // Not yet full again: one request per second at 60 per minute.
    limiter.sweep(999);
    assert_eq!(limiter.len(), 101);
    limiter.sweep(1000);
    assert_eq!(limiter.len(), 1);
    limiter.sweep(1_000_000);
    assert_eq!(limiter.len(), 1);
    in_flight.settle(1_000_000, 10);
    limiter.sweep(1_000_000);
    assert!(limiter.is_empty());
}

#[test]
fn admits_sweep_on_their_own_so_memory_stays_bounded() {
    let limiter = Limiter::new();
    let limits = rpm(60);
    for n in 0..(3 * SWEEP_EVERY) {
        let key = id(&format!("k{n}"));
        // Each key is full again a second later, so only recent ones need keeping.
        let now_ms = i64::try_from(n).unwrap() * 10;
        drop(limiter.admit(now_ms, &[(Scope::Key, &key, &limits)], 0));
    }
    // At most the last second's keys (100) plus one sweep interval of new ones.
    assert!(
        limiter.len() <= 100 + SWEEP_EVERY as usize,
        "{}",
        limiter.len()
    );
}

#[test]
fn status_reports_the_tightest_principal_and_none_without_limits() {
    let limiter = Limiter::new();
    let key = id("k1");
    let account = id("acme");
    let key_limits = rpm(10);
    let account_limits = RateLimits {
        requests_per_minute: Some(100),
        tokens_per_minute: Some(5000),
        concurrency: None,
    };
    let admission = limiter
        .admit(
            0,
            &[
                (Scope::Key, &key, &key_limits),
                (Scope::Account, &account, &account_limits),
            ],
            1000,
        )
        .unwrap();
    let status = admission.status();
    assert_eq!(
        status.requests,
        Some(BucketStatus {
            limit: 10,
            remaining: 9,
            reset_ms: 6000
        })
    );
    assert_eq!(
        status.tokens,
        Some(BucketStatus {
            limit: 5000,
            remaining: 4000,
            reset_ms: 12_000
        })
    );
    let unlimited = RateLimits::default();
    let admission = limiter
        .admit(0, &[(Scope::Key, &id("free"), &unlimited)], 1000)
        .unwrap();
    assert_eq!(admission.status(), RateStatus::default());
}

#[test]
fn a_lowered_limit_caps_the_bucket_at_once() {
    let limiter = Limiter::new();
    let key = id("k1");
    limiter
        .admit(0, &[(Scope::Key, &key, &tpm(1000))], 0)
        .unwrap();
    assert_eq!(tokens_left(&limiter, 0, &key, &tpm(100)), 100);
    // Raising it again grants nothing at once.
    assert_eq!(tokens_left(&limiter, 0, &key, &tpm(1000)), 100);
}

#[test]
fn admission_in_two_steps_checks_requests_and_concurrency_before_tokens() {
    let limiter = Limiter::new();
    let key = id("k1");
    let limits = RateLimits {
        requests_per_minute: Some(5),
        tokens_per_minute: Some(1000),
        concurrency: Some(1),
    };
    let checks = [(Scope::Key, &key, &limits)];
    let remaining = |a: &Admission| a.status().tokens.map(|t| t.remaining);
    let mut first = limiter.admit_entry(0, &checks).unwrap();
    assert_eq!(
        remaining(&first),
        Some(1000),
        "no tokens taken before the body"
    );
    // The second request is refused on concurrency before its size is known.
    let refused = limiter.admit_entry(0, &checks).unwrap_err();
    assert_eq!(refused.kind, LimitKind::Concurrency);
    first.reserve_tokens(0, &checks, 400).unwrap();
    assert_eq!(remaining(&first), Some(600));
    first.settle(0, 100);

    // A token refusal takes no tokens; dropping the admission frees the slot.
    let mut second = limiter.admit_entry(0, &checks).unwrap();
    assert_eq!(remaining(&second), Some(900));
    second.reserve_tokens(0, &checks, 850).unwrap();
    drop(second); // never reached a provider: its tokens come back
    let mut third = limiter.admit_entry(0, &checks).unwrap();
    third.reserve_tokens(0, &checks, 900).unwrap();
    third.settle(0, 900);
    let mut fourth = limiter.admit_entry(0, &checks).unwrap();
    let refused = fourth.reserve_tokens(0, &checks, 100).unwrap_err();
    assert_eq!(refused.kind, LimitKind::Tokens);
    assert_eq!(remaining(&fourth), Some(0));
    drop(fourth);
    // Five requests per minute, refused ones included: the sixth is refused on requests.
    let fifth = limiter.admit_entry(0, &checks).unwrap();
    drop(fifth);
    assert_eq!(
        limiter.admit_entry(0, &checks).unwrap_err().kind,
        LimitKind::Requests
    );
}
