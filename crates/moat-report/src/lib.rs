//! The governance review report (`moat report`): aggregates the audit records of a period, and
//! of the period of the same length before it, against the config's inventory and budgets, then
//! renders the result as Markdown or as one self-contained HTML page. Pure: records come in as an
//! iterator, text comes out; no I/O.
//!
//! - [`Builder`] folds records one at a time ([`stats`]: counters by name, hour and day, plus
//!   bounded latency samples per model), so memory does not grow with the log.
//! - [`build`](mod@build) turns two periods' aggregates into a [`Report`] ([`report`]): the
//!   figures of every section, and nothing the renderers compute themselves.
//! - [`classify`] and [`budget`] hold the definitions the report prints (unregistered traffic,
//!   provider failure, outage hour, refusal, a budget's allowance for a period).
//! - [`render_md`] and [`render_html`] (with [`svg`] charts) lay the report out.

pub mod budget;
pub mod build;
pub mod classify;
mod fmt;
pub mod period;
pub mod render_html;
pub mod render_md;
pub mod report;
pub mod samples;
pub mod stats;
pub mod svg;

use moat_audit::AuditRecord;
use moat_config::{AccountConfig, Budget, Config, WorkflowConfig};

pub use period::Period;
pub use render_html::html;
pub use render_md::markdown;
pub use report::Report;
pub use stats::PeriodStats;

/// The parts of the config a report reads: the inventory and the budgets.
#[derive(Debug, Clone, Default)]
pub struct ReportConfig {
    /// Registered workflows (the config file's and the store's).
    pub workflows: Vec<WorkflowConfig>,
    /// Accounts with their own budgets.
    pub accounts: Vec<AccountConfig>,
    /// The budget of accounts not listed (`governance.account_budget`).
    pub account_budget: Budget,
}

impl ReportConfig {
    /// The parts of `config` a report reads.
    pub fn from_config(config: &Config) -> ReportConfig {
        ReportConfig {
            workflows: config.workflows.clone(),
            accounts: config.accounts.clone(),
            account_budget: config.governance.account_budget,
        }
    }

    /// The registered workflow called `name`.
    pub fn workflow(&self, name: &str) -> Option<&WorkflowConfig> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The budget of account `name`: its own, else the default for accounts.
    pub fn account_budget(&self, name: &str) -> Budget {
        self.accounts
            .iter()
            .find(|a| a.name == name)
            .map_or(self.account_budget, |a| a.budget)
    }
}

/// Folds the records of a period and of the period before it, in any order, into a [`Report`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: ReportConfig,
    current: PeriodStats,
    previous: PeriodStats,
}

impl Builder {
    /// A report of `period` (compared with [`Period::previous`]) against `config`.
    pub fn new(config: ReportConfig, period: Period) -> Builder {
        let current = PeriodStats::new(period, &config);
        let previous = PeriodStats::new(period.previous(), &config);
        Builder {
            config,
            current,
            previous,
        }
    }

    /// The span whose records the report reads: the previous period's start to the period's end.
    pub fn span(&self) -> Period {
        Period {
            from_ms: self.previous.period.from_ms,
            to_ms: self.current.period.to_ms,
        }
    }

    /// Folds one record into whichever period holds it; others are ignored.
    pub fn add(&mut self, record: &AuditRecord) {
        if self.current.period.contains(record.ts_ms) {
            self.current.add(record);
        } else if self.previous.period.contains(record.ts_ms) {
            self.previous.add(record);
        }
    }

    /// The report.
    pub fn finish(&self) -> Report {
        build::build(&self.config, &self.current, &self.previous)
    }
}

/// The report of `period` from `records` (both periods' records, in any order).
pub fn report<'a>(
    config: ReportConfig,
    period: Period,
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Report {
    let mut builder = Builder::new(config, period);
    for r in records {
        builder.add(r);
    }
    builder.finish()
}
