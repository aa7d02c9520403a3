//! Raw serde shapes of the governance sections, exactly as written (see `crate::raw`).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::raw::Any;

/// A `limits` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub requests_per_minute: Option<Any>,
    pub tokens_per_minute: Option<Any>,
    pub concurrency: Option<Any>,
}

/// A `budget` table. Amounts stay untyped: `25`, `25.5` and `"25.00"` all read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub daily: Option<Any>,
    pub weekly: Option<Any>,
    pub monthly: Option<Any>,
    pub soft_percent: Option<Any>,
}

/// A workflow's `objectives` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawObjectives {
    pub max_latency: Option<Any>,
    pub max_cost_per_request: Option<Any>,
    pub route_around: Option<Spanned<bool>>,
}

/// One `[[workflows]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkflow {
    pub name: Option<Spanned<String>>,
    pub owner: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub criticality: Option<Spanned<String>>,
    pub sensitivity: Option<Spanned<String>>,
    pub models: Option<Vec<Spanned<String>>>,
    pub writes: Option<Spanned<bool>>,
    pub limits: Option<RawLimits>,
    pub budget: Option<RawBudget>,
    pub objectives: Option<RawObjectives>,
}

/// One `[[accounts]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccount {
    pub name: Option<Spanned<String>>,
    pub limits: Option<RawLimits>,
    pub budget: Option<RawBudget>,
}

/// `[governance]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGovernance {
    pub unregistered: Option<Spanned<String>>,
    pub key_limits: Option<RawLimits>,
    pub key_budget: Option<RawBudget>,
    pub account_limits: Option<RawLimits>,
    pub account_budget: Option<RawBudget>,
    pub default_output_tokens: Option<Any>,
    pub key_body_bytes_in_flight: Option<Any>,
}

/// One `[[prices]]` table. Prices stay untyped: `2.5` and `"2.50"` both read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrice {
    pub model: Option<Spanned<String>>,
    pub input: Option<Any>,
    pub output: Option<Any>,
    pub cached_input: Option<Any>,
    pub cache_write: Option<Any>,
    pub context_window: Option<Any>,
    pub max_output: Option<Any>,
}

/// A routing rule's `when` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWhen {
    pub criticality: Option<Vec<Spanned<String>>>,
    pub sensitivity: Option<Vec<Spanned<String>>>,
    pub tiers: Option<Vec<Spanned<String>>>,
    pub workflows: Option<Vec<Spanned<String>>>,
    pub accounts: Option<Vec<Spanned<String>>>,
    pub models: Option<Vec<Spanned<String>>>,
    pub unregistered: Option<Spanned<bool>>,
    pub writes: Option<Spanned<bool>>,
    pub headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// One `[[routing_rules]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Option<Spanned<String>>,
    pub when: Option<RawWhen>,
    pub use_model: Option<Spanned<String>>,
    pub only_providers_tagged: Option<Vec<Spanned<String>>>,
    pub deny: Option<Spanned<String>>,
}

/// `[failover.breaker]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    pub failure_threshold: Option<Any>,
    pub open_for: Option<Any>,
    pub close_after: Option<Any>,
}

/// `[failover.timeouts.<criticality>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub connect: Option<Any>,
    pub first_byte: Option<Any>,
    pub first_token: Option<Any>,
    pub stream_idle: Option<Any>,
    pub total: Option<Any>,
}

/// `[failover.timeouts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeoutsByCriticality {
    pub low: Option<RawTimeouts>,
    pub medium: Option<RawTimeouts>,
    pub high: Option<RawTimeouts>,
}

/// `[failover]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFailover {
    pub retries: Option<Any>,
    pub backoff_base: Option<Any>,
    pub backoff_max: Option<Any>,
    pub max_retry_wait: Option<Any>,
    pub retry_budget_percent: Option<Any>,
    pub retry_budget_min_per_second: Option<Any>,
    pub breaker: Option<RawBreaker>,
    pub timeouts: Option<RawTimeoutsByCriticality>,
}
