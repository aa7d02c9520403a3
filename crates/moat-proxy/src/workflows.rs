//! Workflows registered at run time: loaded from the `WorkflowStore` when the state is built,
//! read again every [`WORKFLOW_REFRESH_INTERVAL`] while serving (so `moat workflows add` on the
//! same store reaches a running gateway), and at once after an admin API change.

use crate::state::AppState;
use moat_store::{StoreError, WorkflowStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How often a running gateway reads the stored workflows again.
pub const WORKFLOW_REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// Reads the store's workflows into the inventory; returns how many were taken.
pub(crate) async fn reload(
    state: &AppState,
    store: &dyn WorkflowStore,
) -> Result<usize, StoreError> {
    let specs = store.list_workflows().await?;
    Ok(state.governance.inventory.replace_stored(&specs))
}

/// Starts the task that reloads the stored workflows until `done`.
pub(crate) fn spawn_refresher(
    state: Arc<AppState>,
    store: Arc<dyn WorkflowStore>,
    done: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WORKFLOW_REFRESH_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = done.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = reload(&state, store.as_ref()).await {
                metrics::counter!("moat_workflow_reload_errors_total").increment(1);
                tracing::warn!(error = %e, "cannot read the stored workflows; keeping the last list");
            }
        }
    })
}
