//! The computed report: every figure both renderers print, section by section, and nothing
//! else (so tests check the figures once, here, and the renderers only lay them out).

use crate::period::Period;

/// A spend change at or beyond this many percent is called out.
pub const SPEND_CHANGE_PERCENT: f64 = 25.0;
/// A model's p50 or p95 latency, or mean output tokens, changing at or beyond this many percent is
/// called out.
pub const DRIFT_PERCENT: f64 = 25.0;
/// A model's error or refusal rate changing by this many percentage points or more is called out.
pub const DRIFT_POINTS: f64 = 2.0;

/// The governance review of one period against the one before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The period reviewed.
    pub period: Period,
    /// The period of the same length before it, for comparisons.
    pub previous: Period,
    /// Headline figures.
    pub summary: Summary,
    /// 1. Inventory.
    pub inventory: Inventory,
    /// 2. Spend.
    pub spend: Spend,
    /// 3. Anomalies and detection: actions by account and outcome, most frequent first.
    pub detection: Vec<DetectionRow>,
    /// 4. Incidents.
    pub incidents: Incidents,
    /// 5. Near misses.
    pub near_misses: NearMisses,
    /// 6. Model drift, by response model.
    pub models: Vec<ModelRow>,
    /// Requests and errors per UTC day of the period, every day present.
    pub daily: Vec<DayRow>,
}

/// A figure this period and the one before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compare<T> {
    /// This period.
    pub current: T,
    /// The period before.
    pub previous: T,
}

/// Headline figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Requests answered.
    pub requests: Compare<u64>,
    /// Spend, micro-units.
    pub spend_micros: Compare<i64>,
    /// Errors (5xx).
    pub errors: Compare<u64>,
    /// Unregistered requests.
    pub unregistered: Compare<u64>,
}

/// 1. Inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// Registered workflows, in config order.
    pub workflows: Vec<WorkflowRow>,
    /// Unregistered requests.
    pub unregistered_requests: u64,
    /// Distinct keys among them.
    pub unregistered_keys: u64,
    /// Their spend, micro-units.
    pub unregistered_spend_micros: i64,
    /// Requests that never authenticated.
    pub unauthenticated: u64,
    /// Workflow names on records that the config does not register.
    pub unknown_workflows: Vec<String>,
}

/// One registered workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRow {
    /// Its name.
    pub name: String,
    /// Who answers for it.
    pub owner: String,
    /// `low`, `medium`, `high`.
    pub criticality: &'static str,
    /// `public` ... `restricted`.
    pub sensitivity: &'static str,
    /// Whether it acts on the world.
    pub writes: bool,
    /// Models it may call (empty: any its keys may).
    pub models: Vec<String>,
    /// Requests this period.
    pub requests: u64,
}

/// 2. Spend.
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    /// By workflow, dearest first.
    pub by_workflow: Vec<SpendRow>,
    /// By account, dearest first.
    pub by_account: Vec<SpendRow>,
}

/// One workflow's or account's spend.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendRow {
    /// The workflow or account (or a bracketed pseudo-row such as `(unregistered)`).
    pub name: String,
    /// Requests this period.
    pub requests: u64,
    /// Spend this period and the one before, micro-units.
    pub spend_micros: Compare<i64>,
    /// Change in percent of the previous spend; `None` when there was none.
    pub change_percent: Option<f64>,
    /// Whether the change is called out (beyond [`SPEND_CHANGE_PERCENT`], or new spend).
    pub notable: bool,
    /// The budget's allowance for the period ([`crate::budget::allowance`]), micro-units.
    pub budget_micros: Option<i64>,
    /// Spend as a percentage of that allowance.
    pub budget_percent: Option<f64>,
}

/// 3. One account's detection actions of one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionRow {
    /// The account.
    pub account: String,
    /// `throttle`, `degrade`, `block`, `would_throttle`, ...
    pub outcome: String,
    /// Requests it was taken on.
    pub count: u64,
    /// First seen, ms since the epoch.
    pub first_ms: i64,
    /// Last seen, ms since the epoch.
    pub last_ms: i64,
}

/// 4. Incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct Incidents {
    /// Providers that served or failed requests, by name.
    pub providers: Vec<ProviderRow>,
    /// Outage hours, in time order.
    pub outages: Vec<HourRow>,
    /// The hours with the most provider failures (outages included), most first, at most
    /// [`Incidents::TOP_HOURS`].
    pub worst_hours: Vec<HourRow>,
    /// How many (provider, hour) pairs had any failure.
    pub hours_with_failures: u64,
    /// Requests answered after more than one upstream attempt.
    pub fallbacks: Fallbacks,
    /// Objective violations, by workflow with objectives.
    pub objectives: Vec<ObjectiveRow>,
    /// Circuit breakers that changed state this period, most openings first.
    pub breakers: Vec<BreakerRow>,
}

/// One circuit breaker (a provider's model) that changed state this period.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerRow {
    /// The provider.
    pub provider: String,
    /// The provider's model.
    pub model: String,
    /// Openings (closed to open) this period and the one before.
    pub openings: Compare<u64>,
    /// Probes that failed (half-open to open).
    pub reopenings: u64,
    /// Recoveries (to closed).
    pub recoveries: u64,
    /// Time not closed this period, ms (to the period's end when still open).
    pub open_ms: u64,
    /// Whether it was still open at the period's end.
    pub open_at_end: bool,
    /// The first opening, ms since the epoch.
    pub first_open_ms: Option<i64>,
    /// The last opening or reopening, ms since the epoch.
    pub last_open_ms: Option<i64>,
}

impl Incidents {
    /// How many of the worst hours are listed.
    pub const TOP_HOURS: usize = 12;
}

/// One provider's failures.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRow {
    /// The provider.
    pub provider: String,
    /// Requests that reached it this period.
    pub requests: u64,
    /// Provider failures this period.
    pub failures: u64,
    /// Failure rate this period and the one before (0..=1).
    pub failure_rate: Compare<f64>,
    /// Failures by error code, most first.
    pub by_error: Vec<(String, u64)>,
}

/// One provider's hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourRow {
    /// The provider.
    pub provider: String,
    /// The hour's start, ms since the epoch.
    pub hour_ms: i64,
    /// Requests that reached it in the hour.
    pub requests: u64,
    /// Provider failures among them.
    pub failures: u64,
    /// Whether the hour is an outage.
    pub outage: bool,
}

/// Fallbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallbacks {
    /// Requests with more than one attempt this period.
    pub count: u64,
    /// Count the period before.
    pub previous: u64,
    /// Of this period's, how many were answered successfully (status < 400).
    pub succeeded: u64,
    /// By the provider that answered last.
    pub by_provider: Vec<(String, u64)>,
}

/// One workflow's objective violations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectiveRow {
    /// The workflow.
    pub workflow: String,
    /// Requests this period.
    pub requests: u64,
    /// `max_latency`, ms.
    pub max_latency_ms: Option<u64>,
    /// Requests over it.
    pub latency_violations: u64,
    /// The slowest request, ms.
    pub worst_ms: u64,
    /// `max_cost_per_request`, micro-units.
    pub max_cost_micros: Option<i64>,
    /// Requests over it.
    pub cost_violations: u64,
    /// The dearest request, micro-units.
    pub worst_cost_micros: i64,
}

/// 5. Near misses.
#[derive(Debug, Clone, PartialEq)]
pub struct NearMisses {
    /// Requests by kind (`filter:deny`, `limits:deny`, ...), most first.
    pub by_kind: Vec<(String, u64)>,
    /// By kind and principal, most first.
    pub rows: Vec<NearMissRow>,
    /// Budgets at or over their alert threshold this period.
    pub budgets: Vec<BudgetAlert>,
}

/// Near misses of one kind by one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMissRow {
    /// `filter:deny`, `policy:deny`, ...
    pub kind: String,
    /// The account (or key, or `(unauthenticated)`).
    pub principal: String,
    /// Requests.
    pub count: u64,
}

/// A budget near (or past) its ceiling.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetAlert {
    /// `workflow` or `account`.
    pub scope: &'static str,
    /// Its name.
    pub name: String,
    /// Spend this period, micro-units.
    pub spend_micros: i64,
    /// The allowance for the period, micro-units.
    pub budget_micros: i64,
    /// Spend as a percentage of the allowance.
    pub percent: f64,
    /// The alert threshold (the budget's `soft_percent`).
    pub threshold_percent: u8,
}

/// 6. One model's drift.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// The response model.
    pub model: String,
    /// This period.
    pub current: ModelFigures,
    /// The period before, when the model served any request then.
    pub previous: Option<ModelFigures>,
    /// Changes called out, in words.
    pub changes: Vec<String>,
}

/// A model's figures in one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelFigures {
    /// Requests routed to it.
    pub requests: u64,
    /// Median total time of its successful requests, ms (nearest rank).
    pub p50_ms: Option<u64>,
    /// 95th percentile of the same, ms.
    pub p95_ms: Option<u64>,
    /// Errors per request (0..=1).
    pub error_rate: f64,
    /// Refusals per request (0..=1).
    pub refusal_rate: f64,
    /// Mean output tokens of its requests with settled usage.
    pub mean_output_tokens: Option<f64>,
}

/// One day's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRow {
    /// The day's start (UTC), ms since the epoch.
    pub day_ms: i64,
    /// Requests.
    pub requests: u64,
    /// Errors (5xx).
    pub errors: u64,
}
