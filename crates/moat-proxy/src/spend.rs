//! Budget spend that survives a restart: loaded into the ledger when the state is built, saved to
//! the `SpendStore` every [`SPEND_SAVE_INTERVAL`] while serving and once more after the server drained.
//!
//! The ledger stays the only counter on the request path; the store only keeps a copy of its
//! running totals, so a save that fails costs nothing but durability and is retried at the next
//! tick with whatever changed since the last save that succeeded.

use crate::governance::Governance;
use moat_core::Money;
use moat_policy::budget::{Period, SpendRow};
use moat_policy::limits::Scope;
use moat_store::{SpendStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How often a running gateway saves settled spend. A graceful stop saves everything; a crash
/// forgets at most the spend of the last five seconds, the same order as what requests in flight
/// at that moment hold.
pub const SPEND_SAVE_INTERVAL: Duration = Duration::from_secs(5);

const PERIODS: [Period; 3] = [Period::Day, Period::Week, Period::Month];

/// Prunes the store's windows that started before last month, then loads the spend of every
/// window that is still current at `now_ms` into the ledger. Returns how many rows were loaded.
/// A failed prune is only a warning (old rows are harmless); a failed load is an error.
pub(crate) async fn restore(
    governance: &Governance,
    store: &dyn SpendStore,
    now_ms: i64,
) -> Result<usize, StoreError> {
    match store.prune_spend(prune_before(now_ms)).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(rows = pruned, "pruned budget spend of old windows"),
        Err(e) => tracing::warn!(error = %e, "cannot prune budget spend of old windows"),
    }
    let rows: Vec<SpendRow> = store
        .load_spend(oldest_current_start(now_ms))
        .await?
        .into_iter()
        // A day's row of earlier this month is past; only the window `now_ms` falls in (or a
        // later one, if the clock went back) still counts against a budget.
        .filter(|row| row.window_start_ms >= row.period.window(now_ms).start)
        .collect();
    let loaded = rows.len();
    governance.restore_spend(rows);
    tracing::info!(rows = loaded, "restored budget spend");
    Ok(loaded)
}

/// Starts the task that saves the ledger's spend every [`SPEND_SAVE_INTERVAL`] until `done`, then once
/// more. Cancel `done` only once no request can settle any more, and await the task.
pub(crate) fn spawn_saver(
    state: Arc<crate::AppState>,
    store: Arc<dyn SpendStore>,
    done: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut saver = Saver {
            store,
            saved: HashMap::new(),
        };
        let mut tick =
            tokio::time::interval_at(Instant::now() + SPEND_SAVE_INTERVAL, SPEND_SAVE_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = done.cancelled() => break,
                _ = tick.tick() => {
                    saver.save(&state.governance).await;
                }
            }
        }
        if let Some(rows) = saver.save(&state.governance).await {
            tracing::info!(rows, "saved budget spend");
        }
    })
}

/// What a spend row is saved by.
type WindowKey = (Scope, Arc<str>, Period, i64);

/// Saves what changed since its last successful save; never fails the caller.
struct Saver {
    store: Arc<dyn SpendStore>,
    /// The totals the store holds, as far as this saver knows.
    saved: HashMap<WindowKey, Money>,
}

impl Saver {
    /// Saves the rows whose total changed. Returns how many rows were written, `None` on failure
    /// (logged and counted; the same rows go again next time).
    async fn save(&mut self, governance: &Governance) -> Option<usize> {
        let rows = governance.spend_rows();
        let changed: Vec<SpendRow> = rows
            .iter()
            .filter(|r| self.saved.get(&window_key(r)) != Some(&r.spent))
            .cloned()
            .collect();
        if !changed.is_empty() {
            if let Err(e) = self.store.save_spend(&changed).await {
                metrics::counter!("moat_spend_save_errors_total").increment(1);
                tracing::warn!(error = %e, rows = changed.len(), "cannot save budget spend; retrying in {}s", SPEND_SAVE_INTERVAL.as_secs());
                return None;
            }
        }
        // Rebuilt from the ledger's rows, so windows the ledger swept are forgotten here too.
        self.saved = rows
            .into_iter()
            .map(|r| (window_key(&r), r.spent))
            .collect();
        Some(changed.len())
    }
}

fn window_key(row: &SpendRow) -> WindowKey {
    (
        row.scope,
        Arc::clone(&row.id),
        row.period,
        row.window_start_ms,
    )
}

/// The start of the oldest window that holds `now_ms`: the month's, or the ISO week's when the
/// week began in the month before.
fn oldest_current_start(now_ms: i64) -> i64 {
    PERIODS
        .iter()
        .map(|p| p.window(now_ms).start)
        .min()
        .unwrap_or(now_ms)
}

/// The start of last month: older windows can no longer matter to anyone.
fn prune_before(now_ms: i64) -> i64 {
    let this_month = Period::Month.window(now_ms).start;
    Period::Month.window(this_month.saturating_sub(1)).start
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// 2026-06-02T12:00:00Z, a Tuesday whose ISO week began on Monday 2026-06-01.
    const JUNE_2: i64 = 1_780_401_600_000;
    /// 2026-03-03T12:00:00Z, a Tuesday whose ISO week began on Monday 2026-03-02.
    const MARCH_3: i64 = 1_772_539_200_000;
    /// 2026-05-31T12:00:00Z, a Sunday whose ISO week began on Monday 2026-05-25.
    const MAY_31: i64 = 1_780_228_800_000;

    #[test]
    fn the_oldest_current_window_is_the_month_or_a_week_begun_last_month() {
        // 2026-06-01T00:00:00Z: the month and the week begin together.
        assert_eq!(oldest_current_start(JUNE_2), 1_780_272_000_000);
        // 2026-03-01T00:00:00Z: the week began after the month.
        assert_eq!(oldest_current_start(MARCH_3), 1_772_323_200_000);
        // 2026-05-01T00:00:00Z.
        assert_eq!(oldest_current_start(MAY_31), 1_777_593_600_000);
        // 2026-01-01 is a Thursday: its week began on Monday 2025-12-29.
        let jan_1 = 1_767_268_800_000; // 2026-01-01T12:00:00Z
        assert_eq!(oldest_current_start(jan_1), 1_766_966_400_000);
    }

    #[test]
    fn pruning_keeps_last_month() {
        // 2026-05-01T00:00:00Z, from June.
        assert_eq!(prune_before(JUNE_2), 1_777_593_600_000);
        // 2025-12-01T00:00:00Z, from January.
        assert_eq!(prune_before(1_767_268_800_000), 1_764_547_200_000);
        assert!(prune_before(MAY_31) <= oldest_current_start(MAY_31));
    }
}
