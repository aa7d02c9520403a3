//! The detector worker: one thread owning the [`Detector`], fed by the bounded event queue.
//!
//! Detection is CPU work on state only this thread touches, so it runs on a plain OS thread
//! rather than on the async runtime. After each event it publishes the account's (and end
//! user's) action to the [`Board`]; admin queries travel the same queue, so an answer reflects
//! every event queued before it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_config::ActionsConfig;
use moat_detect::trace::Record;
use moat_detect::{Detector, Verdict};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use moat_detect::board::{Action, Board};

/// End-user verdicts are refreshed at most this often (the detector lists them all at once).
const END_USER_REFRESH: Duration = Duration::from_secs(1);

/// What the request path hands the worker.
pub(crate) enum Msg {
    /// One finished request.
    Event(Box<Record>),
    /// An admin read.
    Query(Query),
}

/// Which verdicts an admin read wants, and where to send them.
pub(crate) struct Query {
    pub account: Option<String>,
    pub flagged_only: bool,
    pub reply: oneshot::Sender<Vec<Row>>,
}

/// One verdict as the admin API shows it: the detector's verdict and what the gateway does.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The detector's verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The action its score maps to (what is enforced in `enforce` mode unless allowlisted).
    pub action: &'static str,
    /// Whether the account is on the allowlist (scored, never actioned).
    pub allowlisted: bool,
}

/// The score thresholds of the actions.
#[derive(Debug, Clone)]
pub(crate) struct Ladder {
    throttle: f64,
    degrade: f64,
    block: f64,
}

/// Scores are rounded to four decimals: a score within this of a threshold has reached it, so a
/// score of 0.7 reaches a threshold written as 0.7 whatever the float rounding on either side.
const SCORE_EPSILON: f64 = 1e-6;

impl Ladder {
    pub(crate) fn new(a: &ActionsConfig) -> Self {
        Ladder {
            throttle: a.throttle_at - SCORE_EPSILON,
            degrade: a.degrade_at - SCORE_EPSILON,
            block: a.block_at - SCORE_EPSILON,
        }
    }

    /// The action a verdict score maps to.
    pub(crate) fn action(&self, s: f64) -> Action {
        if s >= self.block {
            Action::Block
        } else if s >= self.degrade {
            Action::Degrade
        } else if s >= self.throttle {
            Action::Throttle
        } else {
            Action::Allow
        }
    }
}

pub(crate) struct Worker {
    detector: Detector,
    board: Arc<Board>,
    ladder: Ladder,
    allowlist: Arc<HashSet<String>>,
    /// A flagged end user had news since the last refresh.
    end_users_dirty: bool,
    last_refresh: Option<Instant>,
}

impl Worker {
    pub(crate) fn new(
        detector: Detector,
        board: Arc<Board>,
        ladder: Ladder,
        allowlist: Arc<HashSet<String>>,
    ) -> Self {
        Worker {
            detector,
            board,
            ladder,
            allowlist,
            end_users_dirty: false,
            last_refresh: None,
        }
    }

    /// Serves the queue until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(msg) = rx.blocking_recv() {
            self.handle(msg);
            // Drain what else is queued before the periodic work.
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg);
            }
            let due = self
                .last_refresh
                .is_none_or(|at| at.elapsed() >= END_USER_REFRESH);
            if self.end_users_dirty && due {
                self.refresh_end_users();
            }
        }
        tracing::debug!("detector worker stopped");
    }

    fn handle(&mut self, msg: Msg) {
        // A panic in the detector is a bug; losing every account's state to it (and leaving the
        // gateway without a detector until restart) would be worse than carrying on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dispatch(msg)));
        if outcome.is_err() {
            metrics::counter!("moat_detect_worker_panics_total").increment(1);
            tracing::error!(target: "moat::detect", "the detector panicked on an event; skipped it");
        }
    }

    fn dispatch(&mut self, msg: Msg) {
        match msg {
            Msg::Event(ev) => self.observe(&ev),
            Msg::Query(q) => {
                let rows = self.query(q.account.as_deref(), q.flagged_only);
                let _ = q.reply.send(rows);
            }
        }
    }

    fn observe(&mut self, e: &Record) {
        let observed = self.detector.observe(&e.event());
        metrics::counter!("moat_detect_events_total").increment(1);
        if observed.account_flagged_now {
            metrics::gauge!("moat_detect_flagged_accounts").increment(1.0);
        }
        // Scores never fall: a verdict (which costs its reasons in words) is built only when the
        // score calls for more than the board holds, or to announce a new flag.
        if let Some(score) = self.detector.score(&e.account) {
            let current = self.board.action(&e.account, None);
            if current < self.ladder.action(score) || observed.account_flagged_now {
                if let Some(v) = self.detector.verdict(&e.account) {
                    self.publish(&v, observed.account_flagged_now);
                }
            }
        }
        if let Some(user) = &e.end_user {
            if observed.end_user_flagged_now {
                // Crossing the threshold is a score of at least 0.5; the refresh gives the exact
                // score, and with it any higher action.
                let action = self.ladder.action(0.5);
                let allowlisted = self.allowlist.contains(&e.account);
                if let Some(before) = self
                    .board
                    .raise(&e.account, Some(user), action, allowlisted)
                {
                    announce(
                        &e.account,
                        Some(user),
                        before,
                        action,
                        0.5,
                        allowlisted,
                        None,
                    );
                }
                self.end_users_dirty = true;
                metrics::gauge!("moat_detect_board_end_users")
                    .set(self.board.end_user_entries() as f64);
            } else if self.detector.end_user_flagged(&e.account, user) {
                self.end_users_dirty = true;
            }
        }
        metrics::gauge!("moat_detect_end_users").set(self.detector.end_users() as f64);
    }

    /// Raises the board entry of a verdict's account or end user to what its score says.
    fn publish(&self, v: &Verdict, flagged_now: bool) {
        let action = self.ladder.action(v.score);
        let allowlisted = self.allowlist.contains(&v.account);
        let changed = self
            .board
            .raise(&v.account, v.end_user.as_deref(), action, allowlisted);
        if let Some(before) = changed {
            announce(
                &v.account,
                v.end_user.as_deref(),
                before,
                action,
                v.score,
                allowlisted,
                v.reasons.first().map(String::as_str),
            );
        } else if flagged_now {
            tracing::warn!(
                target: "moat::detect",
                account = %v.account,
                score = v.score,
                reason = %v.reasons.first().map(String::as_str).unwrap_or(""),
                "account flagged"
            );
        }
    }

    fn refresh_end_users(&mut self) {
        self.last_refresh = Some(Instant::now());
        self.end_users_dirty = false;
        // Only flagged end users (crossed their threshold) can be above allow (end users do not
        // honour a throttle_at below it); the detector lists them without the rest.
        for v in self.detector.flagged_end_user_verdicts() {
            self.publish_end_user(&v);
        }
    }

    fn publish_end_user(&self, v: &Verdict) {
        if v.end_user.is_some() && v.flagged {
            self.publish(v, false);
        }
    }

    fn query(&mut self, account: Option<&str>, flagged_only: bool) -> Vec<Row> {
        let accounts = match account {
            Some(a) => self.detector.verdict(a).into_iter().collect(),
            None => self.detector.account_verdicts(),
        };
        let end_users: Vec<Verdict> = self
            .detector
            .end_user_verdicts()
            .into_iter()
            .filter(|v| account.is_none_or(|a| v.account == a))
            .collect();
        // The list is computed anyway: bring end users' actions up to date with it.
        for v in &end_users {
            self.publish_end_user(v);
        }
        self.last_refresh = Some(Instant::now());
        self.end_users_dirty = false;
        accounts
            .into_iter()
            .chain(end_users)
            .filter(|v| !flagged_only || v.flagged)
            .map(|v| Row {
                action: self.ladder.action(v.score).as_str(),
                allowlisted: self.allowlist.contains(&v.account),
                verdict: v,
            })
            .collect()
    }
}

/// Logs and counts an account or end user moving up the ladder.
fn announce(
    account: &str,
    end_user: Option<&str>,
    before: Action,
    action: Action,
    score: f64,
    allowlisted: bool,
    reason: Option<&str>,
) {
    let level = if end_user.is_some() {
        "end_user"
    } else {
        "account"
    };
    metrics::counter!(
        "moat_detect_escalations_total",
        "level" => level,
        "action" => action.as_str()
    )
    .increment(1);
    tracing::warn!(
        target: "moat::detect",
        account = %account,
        end_user = %end_user.unwrap_or(""),
        from = before.as_str(),
        to = action.as_str(),
        score,
        allowlisted,
        reason = %reason.unwrap_or(""),
        "detection action raised"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_maps_scores_to_the_highest_action_reached() {
        let l = Ladder::new(&ActionsConfig::default());
        assert_eq!(l.action(0.0), Action::Allow);
        assert_eq!(l.action(0.4999), Action::Allow);
        assert_eq!(l.action(0.5), Action::Throttle);
        assert_eq!(l.action(0.6), Action::Degrade);
        assert_eq!(l.action(0.7), Action::Block);
        assert_eq!(
            l.action(f64::from(0.7f32)),
            Action::Block,
            "f32 scores reach 0.7 too"
        );
        assert_eq!(l.action(0.75), Action::Block);
    }
}
