//! Money budgets per key, workflow and account in UTC calendar windows: a request reserves its
//! upper-bound cost in every window it is charged to, all-or-nothing, and settles its actual cost
//! into those same windows when it ends.
//!
//! Like the rate limiter, all state sits behind one mutex held for a few lookups and integer
//! operations, so reservations are atomic across principals and exact to the micro-unit.

mod period;
#[cfg(test)]
mod tests;

pub use period::Period;

use crate::limits::slots::Slots;
use crate::limits::Scope;
use moat_core::Money;
use parking_lot::Mutex;
use period::{dollars, rfc3339};
use std::collections::HashMap;
use std::sync::Arc;

/// Windows whose period ended are swept after this many reservations, or after as many as there
/// were principals kept by the last sweep if that is more (O(1) per reservation amortised).
const SWEEP_EVERY: u64 = 1024;

/// A budget of one principal for one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimit {
    /// The calendar window the budget applies to.
    pub period: Period,
    /// Spend beyond which requests are refused.
    pub hard: Money,
    /// Spend at which an alert is raised, once per window; meant to be below `hard`.
    pub soft: Option<Money>,
}

/// A request refused because a budget would be exceeded. Nothing was reserved anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{scope} {id}: {} budget of {} reached ({}); resets at {}",
    period.adjective(),
    dollars(*hard),
    spent_text(*spent, *reserved),
    rfc3339(*resets_at_ms)
)]
pub struct BudgetRefusal {
    /// Kind of the principal whose budget refused.
    pub scope: Scope,
    /// Id of that principal.
    pub id: Arc<str>,
    /// The period of the budget that refused.
    pub period: Period,
    /// The hard limit.
    pub hard: Money,
    /// Settled spend in the current window.
    pub spent: Money,
    /// Reserved by requests in flight in the current window.
    pub reserved: Money,
    /// When the window ends (Unix milliseconds). Where several budgets refuse, the latest.
    pub resets_at_ms: i64,
}

/// A soft threshold crossed by one settle: spend went from below `soft` to `soft` or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftCrossing {
    /// Kind of the principal.
    pub scope: Scope,
    /// Id of the principal.
    pub id: Arc<str>,
    /// The period of the budget.
    pub period: Period,
    /// The soft threshold.
    pub soft: Money,
    /// Settled spend in the window after this settle.
    pub spent: Money,
    /// Start of the window (Unix milliseconds).
    pub window_start_ms: i64,
}

/// What a settle charged and which soft thresholds it crossed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    /// The cost charged to every held window.
    pub cost: Money,
    /// Thresholds crossed by this settle; each crossing is reported by exactly one settle.
    pub crossings: Vec<SoftCrossing>,
}

/// Settled spend of one principal in one window, for the gateway's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRow {
    /// Kind of the principal.
    pub scope: Scope,
    /// Id of the principal.
    pub id: Arc<str>,
    /// The period of the window.
    pub period: Period,
    /// Start of the window (Unix milliseconds).
    pub window_start_ms: i64,
    /// Settled spend in the window.
    pub spent: Money,
}

/// All principals' spend. `Send + Sync`; share it by reference or `Arc`.
#[derive(Debug, Default)]
pub struct Ledger {
    state: Arc<Mutex<Book>>,
}

/// Money reserved for one request in the windows it was admitted into. `Send + 'static`, so it
/// can travel with a stream; it settles into those windows even after they end. Dropping it
/// unsettled releases the reservation: a failed attempt is not billed.
#[derive(Debug)]
pub struct Hold {
    state: Arc<Mutex<Book>>,
    entries: Slots<HeldWindow, 4>,
    reserved: Money,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Reserves `estimate` (negative counts as zero) in the current window of every budget of
    /// every listed principal, or nowhere: refused if for any of them `spent + reserved +
    /// estimate > hard`. A principal listed twice, or a period listed twice for one principal,
    /// counts once, with what is listed first.
    pub fn reserve(
        &self,
        now_ms: i64,
        checks: &[(Scope, &Arc<str>, &[BudgetLimit])],
        estimate: Money,
    ) -> Result<Hold, BudgetRefusal> {
        let estimate = estimate.0.max(0);
        let mut book = self.state.lock();
        book.maybe_sweep(now_ms);

        // Check every window first, so a refusal reserves nothing anywhere.
        let mut refusal: Option<BudgetRefusal> = None;
        for_each_budget(checks, |scope, id, limit| {
            let windows = book.windows(scope, id);
            let index = current_window(windows, limit.period, now_ms);
            let window = &windows[index];
            if !window.affords(limit.hard, estimate) {
                keep_latest(&mut refusal, window.refusal(scope, id, limit.hard));
            }
        });
        if let Some(refusal) = refusal {
            return Err(refusal);
        }

        let mut entries = Slots::new();
        for_each_budget(checks, |scope, id, limit| {
            let windows = book.windows(scope, id);
            let index = current_window(windows, limit.period, now_ms);
            let window = &mut windows[index];
            window.reserved = window.reserved.saturating_add(estimate);
            window.holds = window.holds.saturating_add(1);
            entries.push(HeldWindow {
                scope,
                id: Arc::clone(id),
                period: limit.period,
                start_ms: window.start_ms,
                hard: limit.hard,
                soft: limit.soft,
            });
        });
        drop(book);
        Ok(Hold {
            state: Arc::clone(&self.state),
            entries,
            reserved: Money(estimate),
        })
    }

    /// Settled spend of every window held, for the store (windows with no spend are left out).
    pub fn spent(&self) -> Vec<SpendRow> {
        let book = self.state.lock();
        let mut rows = Vec::new();
        for (scope, map) in SCOPES.iter().zip(&book.by_scope) {
            for (id, windows) in map {
                for window in windows.iter().filter(|w| w.spent != 0) {
                    rows.push(SpendRow {
                        scope: *scope,
                        id: Arc::clone(id),
                        period: window.period,
                        window_start_ms: window.start_ms,
                        spent: Money(window.spent),
                    });
                }
            }
        }
        rows
    }

    /// Loads settled spend saved by `spent`, replacing the spend of those windows (so loading
    /// twice is harmless). Rows of windows that have ended are dropped at the next sweep.
    pub fn restore(&self, rows: impl IntoIterator<Item = SpendRow>) {
        let mut book = self.state.lock();
        for row in rows {
            let range = row.period.window(row.window_start_ms);
            let windows = book.windows(row.scope, &row.id);
            let found = windows
                .iter()
                .position(|w| w.period == row.period && w.start_ms == range.start);
            let index = found.unwrap_or_else(|| {
                windows.push(Window::new(row.period, range));
                windows.len() - 1
            });
            windows[index].spent = row.spent.0;
        }
    }

    /// Forgets windows that ended before `now_ms` and hold no reservation. `reserve` calls this
    /// on its own from time to time.
    pub fn sweep(&self, now_ms: i64) {
        self.state.lock().sweep(now_ms);
    }
}

impl Hold {
    /// What this hold has reserved in each of its windows.
    pub fn reserved(&self) -> Money {
        self.reserved
    }

    /// The smallest `hard - spent - reserved` over the held windows (this hold's own reservation
    /// counts as reserved), never below zero; `None` if no budget applies. The gateway caps
    /// output to what this still affords.
    pub fn headroom(&self) -> Option<Money> {
        let mut book = self.state.lock();
        let mut headroom: Option<i64> = None;
        for entry in self.entries.iter() {
            if let Some(window) = book.held_window(entry) {
                let left = entry
                    .hard
                    .0
                    .saturating_sub(window.spent)
                    .saturating_sub(window.reserved)
                    .max(0);
                headroom = Some(headroom.map_or(left, |h| h.min(left)));
            }
        }
        headroom.map(Money)
    }

    /// Reserves `more` (negative counts as zero) on top, in the same windows, all-or-nothing:
    /// for a stream whose running cost passes its first reservation.
    pub fn extend(&mut self, more: Money) -> Result<(), BudgetRefusal> {
        let more = more.0.max(0);
        let mut book = self.state.lock();
        let mut refusal: Option<BudgetRefusal> = None;
        for entry in self.entries.iter() {
            let Some(window) = book.held_window(entry) else {
                continue;
            };
            if !window.affords(entry.hard, more) {
                keep_latest(
                    &mut refusal,
                    window.refusal(entry.scope, &entry.id, entry.hard),
                );
            }
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        for entry in self.entries.iter() {
            if let Some(window) = book.held_window(entry) {
                window.reserved = window.reserved.saturating_add(more);
            }
        }
        self.reserved = Money(self.reserved.0.saturating_add(more));
        Ok(())
    }

    /// Ends the request: releases the reservation and adds `actual` (negative counts as zero) to
    /// the spend of every held window. An actual above the reservation is spent anyway, as it is
    /// what the provider reported; reserving an upper bound is the caller's part.
    pub fn settle(mut self, actual: Money) -> Settled {
        let actual = actual.0.max(0);
        let entries = self.entries.take();
        let mut crossings = Vec::new();
        let mut book = self.state.lock();
        for entry in entries.iter() {
            let Some(window) = book.held_window(entry) else {
                continue;
            };
            window.release(self.reserved.0);
            let before = window.spent;
            window.spent = window.spent.saturating_add(actual);
            if let Some(soft) = entry.soft {
                if before < soft.0 && window.spent >= soft.0 {
                    crossings.push(SoftCrossing {
                        scope: entry.scope,
                        id: Arc::clone(&entry.id),
                        period: entry.period,
                        soft,
                        spent: Money(window.spent),
                        window_start_ms: window.start_ms,
                    });
                }
            }
        }
        Settled {
            cost: Money(actual),
            crossings,
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let entries = self.entries.take();
        if entries.iter().next().is_none() {
            return;
        }
        let mut book = self.state.lock();
        for entry in entries.iter() {
            if let Some(window) = book.held_window(entry) {
                window.release(self.reserved.0);
            }
        }
    }
}

const SCOPES: [Scope; 3] = [Scope::Key, Scope::Workflow, Scope::Account];

/// Where one hold's reservation went.
#[derive(Debug)]
struct HeldWindow {
    scope: Scope,
    id: Arc<str>,
    period: Period,
    start_ms: i64,
    hard: Money,
    soft: Option<Money>,
}

/// Spend of one principal in one calendar window.
#[derive(Debug, Clone, Copy)]
struct Window {
    period: Period,
    start_ms: i64,
    end_ms: i64,
    spent: i64,
    reserved: i64,
    /// Holds not yet settled or dropped; a window with holds is never forgotten.
    holds: u32,
}

impl Window {
    fn new(period: Period, range: std::ops::Range<i64>) -> Window {
        Window {
            period,
            start_ms: range.start,
            end_ms: range.end,
            spent: 0,
            reserved: 0,
            holds: 0,
        }
    }

    fn affords(&self, hard: Money, more: i64) -> bool {
        i128::from(self.spent) + i128::from(self.reserved) + i128::from(more) <= i128::from(hard.0)
    }

    fn refusal(&self, scope: Scope, id: &Arc<str>, hard: Money) -> BudgetRefusal {
        BudgetRefusal {
            scope,
            id: Arc::clone(id),
            period: self.period,
            hard,
            spent: Money(self.spent),
            reserved: Money(self.reserved),
            resets_at_ms: self.end_ms,
        }
    }

    fn release(&mut self, reserved: i64) {
        self.reserved = self.reserved.saturating_sub(reserved);
        self.holds = self.holds.saturating_sub(1);
    }
}

#[derive(Debug, Default)]
struct Book {
    by_scope: [HashMap<Arc<str>, Vec<Window>>; 3],
    reserves_since_sweep: u64,
    kept_by_last_sweep: u64,
}

impl Book {
    fn windows(&mut self, scope: Scope, id: &Arc<str>) -> &mut Vec<Window> {
        self.by_scope[scope.index()]
            .entry(Arc::clone(id))
            .or_default()
    }

    fn held_window(&mut self, entry: &HeldWindow) -> Option<&mut Window> {
        let windows = self.by_scope[entry.scope.index()].get_mut(&*entry.id)?;
        windows
            .iter_mut()
            .find(|w| w.period == entry.period && w.start_ms == entry.start_ms)
    }

    fn maybe_sweep(&mut self, now_ms: i64) {
        self.reserves_since_sweep += 1;
        if self.reserves_since_sweep >= SWEEP_EVERY.max(self.kept_by_last_sweep) {
            self.sweep(now_ms);
        }
    }

    fn sweep(&mut self, now_ms: i64) {
        self.reserves_since_sweep = 0;
        for map in &mut self.by_scope {
            map.retain(|_, windows| {
                windows.retain(|w| w.end_ms > now_ms || w.holds > 0);
                !windows.is_empty()
            });
        }
        self.kept_by_last_sweep = self.by_scope.iter().map(|m| m.len() as u64).sum();
    }
}

/// The index of the window of `period` that `now_ms` is charged to, created if needed. Ended
/// windows without holds are forgotten on the way. A reading older than the newest window (a
/// thread that read the clock just before midnight and got the lock just after another) goes to
/// that newest window, so spend of a window is never counted again from zero.
fn current_window(windows: &mut Vec<Window>, period: Period, now_ms: i64) -> usize {
    windows.retain(|w| w.end_ms > now_ms || w.holds > 0);
    let mut newest: Option<usize> = None;
    for (index, window) in windows.iter().enumerate() {
        if window.period != period {
            continue;
        }
        if window.start_ms <= now_ms && now_ms < window.end_ms {
            return index;
        }
        if window.start_ms > now_ms && newest.is_none_or(|n| window.start_ms > windows[n].start_ms)
        {
            newest = Some(index);
        }
    }
    newest.unwrap_or_else(|| {
        windows.push(Window::new(period, period.window(now_ms)));
        windows.len() - 1
    })
}

/// Calls `f` for every budget of every principal, skipping repeated principals and periods.
fn for_each_budget(
    checks: &[(Scope, &Arc<str>, &[BudgetLimit])],
    mut f: impl FnMut(Scope, &Arc<str>, &BudgetLimit),
) {
    for (index, &(scope, id, limits)) in checks.iter().enumerate() {
        let repeated = checks[..index]
            .iter()
            .any(|&(s, other, _)| s == scope && **other == **id);
        if repeated {
            continue;
        }
        for (position, limit) in limits.iter().enumerate() {
            if limits[..position].iter().all(|l| l.period != limit.period) {
                f(scope, id, limit);
            }
        }
    }
}

fn spent_text(spent: Money, reserved: Money) -> String {
    if reserved.0 > 0 {
        format!("{} spent, {} in flight", dollars(spent), dollars(reserved))
    } else {
        format!("{} spent", dollars(spent))
    }
}

/// Where several budgets refuse, the one that resets last is the one to report: waiting for it
/// is waiting for all of them.
fn keep_latest(refusal: &mut Option<BudgetRefusal>, found: BudgetRefusal) {
    if refusal
        .as_ref()
        .is_none_or(|worst| found.resets_at_ms > worst.resets_at_ms)
    {
        *refusal = Some(found);
    }
}
