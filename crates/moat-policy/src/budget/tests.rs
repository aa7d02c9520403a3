#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// 2026-11-22T12:00:00Z, a Sunday.
const NOON: i64 = 1_795_348_800_000;
const DAY_MS: i64 = 86_400_000;

fn id(name: &str) -> Arc<str> {
    Arc::from(name)
}

fn daily(hard: i64) -> BudgetLimit {
    BudgetLimit {
        period: Period::Day,
        hard: Money(hard),
        soft: None,
    }
}

fn spent_of(ledger: &Ledger, scope: Scope, name: &str, period: Period) -> i64 {
    ledger
        .spent()
        .iter()
        .filter(|r| r.scope == scope && &*r.id == name && r.period == period)
        .map(|r| r.spent.0)
        .sum()
}

#[test]
fn hold_and_ledger_are_send_sync_and_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Hold>();
    check::<Ledger>();
    check::<BudgetRefusal>();
}

#[test]
fn noon_is_where_the_tests_think_it_is() {
    assert_eq!(period::rfc3339(NOON), "2026-11-22T12:00:00Z");
}

#[test]
fn spend_never_exceeds_the_hard_limit_under_contention() {
    let ledger = Ledger::new();
    let workflow = id("triage");
    let hard = 10_000_003;
    let limits = [daily(hard)];
    let settled_total = AtomicI64::new(0);
    let settles = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for thread in 0..64_i64 {
            let (ledger, workflow, limits) = (&ledger, &workflow, &limits);
            let (settled_total, settles) = (&settled_total, &settles);
            s.spawn(move || {
                for round in 0..200_i64 {
                    let estimate = 10_007;
                    let actual = (thread * 7919 + round * 104_729) % (estimate + 1);
                    let checks = [(Scope::Workflow, workflow, &limits[..])];
                    if let Ok(hold) = ledger.reserve(NOON, &checks, Money(estimate)) {
                        std::thread::yield_now();
                        let settled = hold.settle(Money(actual));
                        settled_total.fetch_add(settled.cost.0, Ordering::Relaxed);
                        settles.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let spent = spent_of(&ledger, Scope::Workflow, "triage", Period::Day);
    assert_eq!(spent, settled_total.load(Ordering::Relaxed));
    assert!(spent <= hard, "{spent} > {hard}");
    // 12 800 attempts of at most $0.01 each against $10: the budget was contended to the end.
    assert!(settles.load(Ordering::Relaxed) < 64 * 200);
    assert!(spent > hard - 2 * 10_007 * 64, "{spent}");
}

#[test]
fn held_reservations_never_exceed_the_hard_limit_under_contention() {
    let ledger = Ledger::new();
    let account = id("acme");
    let limits = [daily(1_000_000)];
    let holds = parking_lot::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                for _ in 0..20 {
                    let checks = [(Scope::Account, &account, &limits[..])];
                    if let Ok(hold) = ledger.reserve(NOON, &checks, Money(30_000)) {
                        holds.lock().push(hold);
                    }
                }
            });
        }
    });
    // floor(1_000_000 / 30_000) reservations fit.
    assert_eq!(holds.lock().len(), 33);
}

#[test]
fn the_last_affordable_request_passes_and_the_next_micro_unit_does_not() {
    let ledger = Ledger::new();
    let key = id("k1");
    let limits = [daily(5_000_000)];
    let checks = [(Scope::Key, &key, &limits[..])];
    ledger
        .reserve(NOON, &checks, Money(4_000_000))
        .unwrap()
        .settle(Money(4_000_000));
    let in_flight = ledger.reserve(NOON, &checks, Money(990_000)).unwrap();
    // $4.00 spent + $0.99 reserved: exactly $0.01 is left.
    assert_eq!(in_flight.headroom(), Some(Money(10_000)));
    let refusal = ledger.reserve(NOON, &checks, Money(10_001)).unwrap_err();
    assert_eq!(refusal.spent, Money(4_000_000));
    assert_eq!(refusal.reserved, Money(990_000));
    let last = ledger.reserve(NOON, &checks, Money(10_000)).unwrap();
    assert!(ledger.reserve(NOON, &checks, Money(1)).is_err());
    assert!(ledger.reserve(NOON, &checks, Money(0)).is_ok());
    in_flight.settle(Money(980_000));
    last.settle(Money(10_000));
    assert_eq!(spent_of(&ledger, Scope::Key, "k1", Period::Day), 4_990_000);
    assert!(ledger.reserve(NOON, &checks, Money(10_001)).is_err());
    ledger
        .reserve(NOON, &checks, Money(10_000))
        .unwrap()
        .settle(Money(10_000));
    assert_eq!(spent_of(&ledger, Scope::Key, "k1", Period::Day), 5_000_000);
}

#[test]
fn a_refusal_names_the_budget_and_when_it_resets() {
    let ledger = Ledger::new();
    let workflow = id("triage");
    let limits = [daily(5_000_000)];
    let checks = [(Scope::Workflow, &workflow, &limits[..])];
    ledger
        .reserve(NOON, &checks, Money(4_990_000))
        .unwrap()
        .settle(Money(4_990_000));
    let refusal = ledger.reserve(NOON, &checks, Money(20_000)).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "workflow triage: daily budget of $5.00 reached ($4.99 spent); \
         resets at 2026-11-23T00:00:00Z"
    );
    assert_eq!(refusal.resets_at_ms, NOON + DAY_MS / 2);
    let _in_flight = ledger.reserve(NOON, &checks, Money(5_000)).unwrap();
    let refusal = ledger.reserve(NOON, &checks, Money(20_000)).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "workflow triage: daily budget of $5.00 reached ($4.99 spent, $0.005 in flight); \
         resets at 2026-11-23T00:00:00Z"
    );
}

#[test]
fn a_refusal_by_one_principal_reserves_nothing_anywhere() {
    let ledger = Ledger::new();
    let (key, account) = (id("k1"), id("acme"));
    let key_limits = [daily(10_000_000)];
    let account_limits = [
        daily(100_000_000),
        BudgetLimit {
            period: Period::Month,
            hard: Money(1_000_000),
            soft: None,
        },
    ];
    let checks = [
        (Scope::Key, &key, &key_limits[..]),
        (Scope::Account, &account, &account_limits[..]),
    ];
    let refusal = ledger.reserve(NOON, &checks, Money(2_000_000)).unwrap_err();
    assert_eq!(
        (refusal.scope, refusal.period),
        (Scope::Account, Period::Month)
    );
    assert_eq!(
        period::rfc3339(refusal.resets_at_ms),
        "2026-12-01T00:00:00Z"
    );
    // The key still has all $10 (its own check passed but nothing was reserved).
    let key_only = [(Scope::Key, &key, &key_limits[..])];
    let hold = ledger.reserve(NOON, &key_only, Money(10_000_000)).unwrap();
    assert_eq!(hold.headroom(), Some(Money(0)));
}

#[test]
fn settle_releases_the_unused_part_and_charges_an_overrun() {
    let ledger = Ledger::new();
    let key = id("k1");
    let limits = [daily(1_000_000)];
    let checks = [(Scope::Key, &key, &limits[..])];
    let hold = ledger.reserve(NOON, &checks, Money(600_000)).unwrap();
    assert_eq!(hold.settle(Money(100_000)).cost, Money(100_000));
    let hold = ledger.reserve(NOON, &checks, Money(900_000)).unwrap();
    assert_eq!(hold.headroom(), Some(Money(0)));
    // The provider reported more than was reserved: it is spent anyway.
    hold.settle(Money(1_200_000));
    assert_eq!(spent_of(&ledger, Scope::Key, "k1", Period::Day), 1_300_000);
    assert!(ledger.reserve(NOON, &checks, Money(0)).is_err());
}

#[test]
fn dropping_a_hold_releases_its_reservation() {
    let ledger = Ledger::new();
    let key = id("k1");
    let limits = [daily(1_000_000)];
    let checks = [(Scope::Key, &key, &limits[..])];
    let hold = ledger.reserve(NOON, &checks, Money(1_000_000)).unwrap();
    assert!(ledger.reserve(NOON, &checks, Money(1)).is_err());
    drop(hold);
    let hold = ledger.reserve(NOON, &checks, Money(1_000_000)).unwrap();
    assert_eq!(hold.reserved(), Money(1_000_000));
    assert!(ledger.spent().is_empty());
}

#[test]
fn extend_reserves_more_on_the_same_windows_or_nothing() {
    let ledger = Ledger::new();
    let (key, account) = (id("k1"), id("acme"));
    let key_limits = [daily(1_000_000)];
    let account_limits = [daily(500_000)];
    let checks = [
        (Scope::Key, &key, &key_limits[..]),
        (Scope::Account, &account, &account_limits[..]),
    ];
    let mut hold = ledger.reserve(NOON, &checks, Money(100_000)).unwrap();
    assert_eq!(hold.headroom(), Some(Money(400_000)));
    hold.extend(Money(300_000)).unwrap();
    assert_eq!(hold.reserved(), Money(400_000));
    assert_eq!(hold.headroom(), Some(Money(100_000)));
    let refusal = hold.extend(Money(100_001)).unwrap_err();
    assert_eq!(refusal.scope, Scope::Account);
    // The refused extension reserved nothing, not even on the key.
    assert_eq!(hold.reserved(), Money(400_000));
    let key_only = [(Scope::Key, &key, &key_limits[..])];
    assert!(ledger.reserve(NOON, &key_only, Money(600_000)).is_ok());
    assert!(ledger.reserve(NOON, &key_only, Money(600_001)).is_err());
    hold.settle(Money(450_000));
    assert_eq!(
        spent_of(&ledger, Scope::Account, "acme", Period::Day),
        450_000
    );
}

#[test]
fn a_hold_settles_into_the_window_it_reserved_in() {
    let ledger = Ledger::new();
    let key = id("k1");
    let limits = [daily(1_000_000)];
    let checks = [(Scope::Key, &key, &limits[..])];
    let midnight = NOON + DAY_MS / 2;
    let late = ledger
        .reserve(midnight - 100, &checks, Money(800_000))
        .unwrap();
    // The next day starts with a fresh budget while the late request is still running.
    let next_day = ledger.reserve(midnight + 5, &checks, Money(1_000_000));
    drop(next_day.unwrap());
    late.settle(Money(700_000));
    let rows = ledger.spent();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].window_start_ms, midnight - DAY_MS);
    assert_eq!(rows[0].spent, Money(700_000));
    // Once nothing is held there, the old day is forgotten when the key is next seen.
    drop(ledger.reserve(midnight + 10, &checks, Money(1)).unwrap());
    assert!(ledger.spent().is_empty());
}

#[test]
fn a_late_clock_reading_joins_the_newest_window() {
    let ledger = Ledger::new();
    let key = id("k1");
    let limits = [daily(1_000_000)];
    let checks = [(Scope::Key, &key, &limits[..])];
    let midnight = NOON + DAY_MS / 2;
    ledger
        .reserve(midnight - 1, &checks, Money(900_000))
        .unwrap()
        .settle(Money(900_000));
    ledger
        .reserve(midnight, &checks, Money(600_000))
        .unwrap()
        .settle(Money(600_000));
    // The old day was dropped; a reading from before midnight must not start it again at zero.
    assert!(ledger
        .reserve(midnight - 1, &checks, Money(500_000))
        .is_err());
    assert!(ledger
        .reserve(midnight - 1, &checks, Money(400_000))
        .is_ok());
}

#[test]
fn a_soft_threshold_is_reported_by_exactly_one_settle() {
    let ledger = Ledger::new();
    let account = id("acme");
    let limits = [
        BudgetLimit {
            period: Period::Day,
            hard: Money(100_000_000),
            soft: Some(Money(1_000_000)),
        },
        BudgetLimit {
            period: Period::Week,
            hard: Money(100_000_000),
            soft: Some(Money(1_500_000)),
        },
    ];
    let crossings = parking_lot::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                for _ in 0..10 {
                    let checks = [(Scope::Account, &account, &limits[..])];
                    let hold = ledger.reserve(NOON, &checks, Money(5_000)).unwrap();
                    crossings.lock().extend(hold.settle(Money(3_001)).crossings);
                }
            });
        }
    });
    let crossings = crossings.into_inner();
    assert_eq!(crossings.len(), 2, "{crossings:?}");
    let day = crossings.iter().find(|c| c.period == Period::Day).unwrap();
    assert_eq!(day.soft, Money(1_000_000));
    // The crossing settle is the first to reach the threshold: 334 * 3_001 = 1_002_334.
    assert_eq!(day.spent, Money(1_002_334));
    let week = crossings.iter().find(|c| c.period == Period::Week).unwrap();
    assert_eq!((&*week.id, week.scope), ("acme", Scope::Account));
    assert_eq!(
        period::rfc3339(week.window_start_ms),
        "2026-11-16T00:00:00Z"
    );
}

#[test]
fn headroom_is_none_without_budgets() {
    let ledger = Ledger::new();
    let key = id("k1");
    let hold = ledger
        .reserve(NOON, &[(Scope::Key, &key, &[])], Money(1_000))
        .unwrap();
    assert_eq!(hold.headroom(), None);
    assert_eq!(hold.settle(Money(5)).crossings, []);
}

#[test]
fn spend_survives_a_restart_through_spent_and_restore() {
    let ledger = Ledger::new();
    let (key, workflow) = (id("k1"), id("triage"));
    let key_limits = [daily(1_000_000)];
    let workflow_limits = [BudgetLimit {
        period: Period::Month,
        hard: Money(3_000_000),
        soft: None,
    }];
    let checks = [
        (Scope::Key, &key, &key_limits[..]),
        (Scope::Workflow, &workflow, &workflow_limits[..]),
    ];
    ledger
        .reserve(NOON, &checks, Money(800_000))
        .unwrap()
        .settle(Money(750_000));
    let mut rows = ledger.spent();
    rows.sort_by_key(|r| r.scope);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].period, Period::Month);
    assert_eq!(
        period::rfc3339(rows[1].window_start_ms),
        "2026-11-01T00:00:00Z"
    );

    let restarted = Ledger::new();
    restarted.restore(rows.clone());
    restarted.restore(rows);
    assert!(restarted.reserve(NOON, &checks, Money(250_001)).is_err());
    assert!(restarted.reserve(NOON, &checks, Money(250_000)).is_ok());
}

#[test]
fn ended_windows_are_swept() {
    let ledger = Ledger::new();
    let limits = [daily(1_000_000)];
    let keys: Vec<Arc<str>> = (0..50).map(|n| id(&format!("k{n}"))).collect();
    let held = ledger
        .reserve(NOON, &[(Scope::Key, &keys[0], &limits[..])], Money(1))
        .unwrap();
    for key in &keys[1..] {
        ledger
            .reserve(NOON, &[(Scope::Key, key, &limits[..])], Money(1))
            .unwrap()
            .settle(Money(1));
    }
    assert_eq!(ledger.spent().len(), 49);
    ledger.sweep(NOON + DAY_MS);
    // The held window survives the sweep; the ended, settled ones are gone.
    assert!(ledger.spent().is_empty());
    held.settle(Money(1));
    assert_eq!(ledger.spent().len(), 1);
    ledger.sweep(NOON + DAY_MS);
    assert!(ledger.spent().is_empty());
}
