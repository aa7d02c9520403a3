//! One period's aggregates, folded record by record: counters and sums keyed by workflow,
//! account, provider, hour, day and model, plus the bounded latency samples of each model. Memory
//! grows with the number of distinct names and hours, never with the number of records.

use std::collections::{BTreeMap, BTreeSet};

use moat_audit::{AuditRecord, Circuit, Incident, RecordKind};
use moat_config::Objectives;

use crate::classify;
use crate::period::{day_start, hour_start, Period};
use crate::samples::Samples;
use crate::ReportConfig;

/// The spend row of traffic without a registered workflow.
pub const UNREGISTERED: &str = "(unregistered)";
/// The row of requests that never authenticated.
pub const NO_KEY: &str = "(no key)";
/// The row of failures that named no provider.
pub const NO_PROVIDER: &str = "(no provider)";

/// Requests and their spend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests.
    pub requests: u64,
    /// Cost charged, micro-units.
    pub spend_micros: i64,
}

/// How often something was seen, and when first and last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Times seen.
    pub count: u64,
    /// First time, ms since the epoch.
    pub first_ms: i64,
    /// Last time, ms since the epoch.
    pub last_ms: i64,
}

/// Requests that reached a provider and how many failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderTally {
    /// Requests routed to it.
    pub requests: u64,
    /// Provider failures among them.
    pub failures: u64,
    /// Failures by error code answered (`status NNN` when none).
    pub by_error: BTreeMap<String, u64>,
}

/// Requests and failures in one hour or day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count2 {
    /// Requests.
    pub requests: u64,
    /// Failures (provider failures for hours, errors for days).
    pub failures: u64,
}

/// One workflow's objective violations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectiveTally {
    /// Requests of the workflow.
    pub requests: u64,
    /// Requests over `max_latency`.
    pub latency_violations: u64,
    /// The slowest request, ms.
    pub worst_ms: u64,
    /// Requests over `max_cost_per_request`.
    pub cost_violations: u64,
    /// The dearest request, micro-units.
    pub worst_cost_micros: i64,
}

/// One circuit breaker's transitions in a period, folded in log order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerTally {
    /// Closed to open.
    pub openings: u64,
    /// Half-open to open: a probe failed.
    pub reopenings: u64,
    /// To closed: the target recovered.
    pub recoveries: u64,
    /// The first opening, ms since the epoch.
    pub first_open_ms: Option<i64>,
    /// The last opening or reopening, ms since the epoch.
    pub last_open_ms: Option<i64>,
    /// Time not closed, from each opening to the recovery that followed, ms. A breaker already
    /// open when the period began counts from the period's start.
    pub open_ms: u64,
    /// When the breaker left closed, if no recovery has followed yet.
    pub open_since: Option<i64>,
}

impl BreakerTally {
    /// The tally of a breaker whose first transition in the period leaves `from`: one that was
    /// not closed then has been open since before the period, counted from `period_start`.
    fn first(from: Circuit, period_start: i64) -> BreakerTally {
        BreakerTally {
            open_since: (from != Circuit::Closed).then_some(period_start),
            ..BreakerTally::default()
        }
    }

    /// Folds in one transition at `ts_ms`.
    fn add(&mut self, from: Circuit, to: Circuit, ts_ms: i64) {
        match (from, to) {
            (_, Circuit::Open) => {
                if from == Circuit::HalfOpen {
                    self.reopenings += 1;
                } else {
                    self.openings += 1;
                    self.first_open_ms.get_or_insert(ts_ms);
                }
                self.last_open_ms = Some(ts_ms);
                self.open_since.get_or_insert(ts_ms);
            }
            (_, Circuit::Closed) => {
                self.recoveries += 1;
                if let Some(since) = self.open_since.take() {
                    let span = u64::try_from(ts_ms.saturating_sub(since)).unwrap_or(0);
                    self.open_ms = self.open_ms.saturating_add(span);
                }
            }
            (_, Circuit::HalfOpen) => {}
        }
    }
}

/// One response model's figures.
#[derive(Debug, Clone, Default)]
pub struct ModelTally {
    /// Requests routed to it.
    pub requests: u64,
    /// Errors among them.
    pub errors: u64,
    /// Refusals among them.
    pub refusals: u64,
    /// Requests with settled usage.
    pub with_usage: u64,
    /// Output tokens of those.
    pub output_tokens: u64,
    /// Total times of its successful requests (status < 400), ms.
    pub latency: Samples,
}

/// One period's aggregates.
#[derive(Debug, Clone)]
pub struct PeriodStats {
    /// The period.
    pub period: Period,
    /// Request records in the period.
    pub requests: u64,
    /// Their spend.
    pub spend_micros: i64,
    /// Errors (5xx).
    pub errors: u64,
    /// Records skipped: outside the period, or reads of the log.
    pub skipped: u64,
    /// Incident records in the period (breaker transitions and objective violations).
    pub incidents: u64,
    /// Circuit-breaker transitions by (provider, model).
    pub breakers: BTreeMap<(String, String), BreakerTally>,
    /// By workflow ([`UNREGISTERED`] and [`NO_KEY`] included).
    pub by_workflow: BTreeMap<String, Tally>,
    /// By account ([`NO_KEY`] for requests without one).
    pub by_account: BTreeMap<String, Tally>,
    /// Unregistered traffic.
    pub unregistered: Tally,
    /// Distinct keys of unregistered traffic.
    pub unregistered_keys: BTreeSet<String>,
    /// Requests without a key.
    pub unauthenticated: u64,
    /// Detection actions by (account, outcome).
    pub detection: BTreeMap<(String, String), Seen>,
    /// By provider.
    pub providers: BTreeMap<String, ProviderTally>,
    /// By (provider, hour start).
    pub provider_hours: BTreeMap<(String, i64), Count2>,
    /// Requests answered after more than one attempt.
    pub fallbacks: u64,
    /// Of those, how many succeeded (status < 400).
    pub fallbacks_ok: u64,
    /// Fallbacks by the provider that answered last.
    pub fallbacks_by_provider: BTreeMap<String, u64>,
    /// Objective violations by workflow (only workflows with objectives).
    pub objectives: BTreeMap<String, ObjectiveTally>,
    /// Near misses by (kind, principal).
    pub near_misses: BTreeMap<(String, String), u64>,
    /// By response model.
    pub models: BTreeMap<String, ModelTally>,
    /// By day start: requests and errors.
    pub days: BTreeMap<i64, Count2>,
    objective_of: BTreeMap<String, Objectives>,
}

impl PeriodStats {
    /// Empty aggregates for `period`, with the objectives of `config`'s workflows.
    pub fn new(period: Period, config: &ReportConfig) -> PeriodStats {
        let objective_of = config
            .workflows
            .iter()
            .filter(|w| {
                w.objectives.max_latency.is_some() || w.objectives.max_cost_per_request.is_some()
            })
            .map(|w| (w.name.clone(), w.objectives))
            .collect();
        PeriodStats {
            period,
            requests: 0,
            spend_micros: 0,
            errors: 0,
            skipped: 0,
            incidents: 0,
            breakers: BTreeMap::new(),
            by_workflow: BTreeMap::new(),
            by_account: BTreeMap::new(),
            unregistered: Tally::default(),
            unregistered_keys: BTreeSet::new(),
            unauthenticated: 0,
            detection: BTreeMap::new(),
            providers: BTreeMap::new(),
            provider_hours: BTreeMap::new(),
            fallbacks: 0,
            fallbacks_ok: 0,
            fallbacks_by_provider: BTreeMap::new(),
            objectives: BTreeMap::new(),
            near_misses: BTreeMap::new(),
            models: BTreeMap::new(),
            days: BTreeMap::new(),
            objective_of,
        }
    }

    /// Folds one record in; records outside the period and reads of the log are only counted
    /// as skipped. Incident records feed the breaker figures (objective violations are counted
    /// from the request records, against the config's objectives).
    pub fn add(&mut self, r: &AuditRecord) {
        if !self.period.contains(r.ts_ms) {
            self.skipped += 1;
            return;
        }
        match r.kind {
            RecordKind::Request => {}
            RecordKind::Incident => {
                self.add_incident(r);
                return;
            }
            RecordKind::Read => {
                self.skipped += 1;
                return;
            }
        }
        let error = classify::is_error(r);
        self.requests += 1;
        self.spend_micros = self.spend_micros.saturating_add(r.cost_micros);
        self.errors += u64::from(error);
        let day = self.days.entry(day_start(r.ts_ms)).or_default();
        day.requests += 1;
        day.failures += u64::from(error);
        self.add_inventory(r);
        for outcome in classify::detection_actions(r) {
            let account = r.account.clone().unwrap_or_else(|| NO_KEY.to_string());
            self.detection
                .entry((account, outcome.to_string()))
                .and_modify(|s| {
                    s.count += 1;
                    s.first_ms = s.first_ms.min(r.ts_ms);
                    s.last_ms = s.last_ms.max(r.ts_ms);
                })
                .or_insert(Seen {
                    count: 1,
                    first_ms: r.ts_ms,
                    last_ms: r.ts_ms,
                });
        }
        self.add_provider(r);
        self.add_objectives(r);
        let kinds = classify::near_misses(r);
        if !kinds.is_empty() {
            let who = classify::principal(r);
            for kind in kinds {
                *self.near_misses.entry((kind, who.clone())).or_default() += 1;
            }
        }
        self.add_model(r, error);
    }

    /// Spend and requests by workflow and account, and unregistered traffic.
    fn add_inventory(&mut self, r: &AuditRecord) {
        let workflow = if r.key_id.is_none() {
            self.unauthenticated += 1;
            NO_KEY.to_string()
        } else if classify::is_unregistered(r) {
            self.unregistered.requests += 1;
            self.unregistered.spend_micros =
                self.unregistered.spend_micros.saturating_add(r.cost_micros);
            if let Some(key) = &r.key_id {
                if !self.unregistered_keys.contains(key) {
                    self.unregistered_keys.insert(key.clone());
                }
            }
            UNREGISTERED.to_string()
        } else {
            r.workflow
                .clone()
                .unwrap_or_else(|| UNREGISTERED.to_string())
        };
        add_tally(self.by_workflow.entry(workflow).or_default(), r);
        let account = r.account.clone().unwrap_or_else(|| NO_KEY.to_string());
        add_tally(self.by_account.entry(account).or_default(), r);
    }

    /// Provider failures by provider and hour, and fallbacks.
    fn add_provider(&mut self, r: &AuditRecord) {
        let failed = classify::is_provider_failure(r);
        let provider = match (&r.route, failed) {
            (Some(route), _) => route.provider.clone(),
            (None, true) => NO_PROVIDER.to_string(),
            (None, false) => return,
        };
        let tally = self.providers.entry(provider.clone()).or_default();
        tally.requests += 1;
        if failed {
            tally.failures += 1;
            let code = r
                .error
                .clone()
                .unwrap_or_else(|| format!("status {}", r.status));
            *tally.by_error.entry(code).or_default() += 1;
        }
        let hour = self
            .provider_hours
            .entry((provider.clone(), hour_start(r.ts_ms)))
            .or_default();
        hour.requests += 1;
        hour.failures += u64::from(failed);
        if r.route.as_ref().is_some_and(|route| route.attempts > 1) {
            self.fallbacks += 1;
            self.fallbacks_ok += u64::from(r.status < 400);
            *self.fallbacks_by_provider.entry(provider).or_default() += 1;
        }
    }

    /// A breaker transition, by its target.
    fn add_incident(&mut self, r: &AuditRecord) {
        self.incidents += 1;
        if let Some(Incident::Breaker {
            provider,
            model,
            from,
            to,
        }) = &r.incident
        {
            let start = self.period.from_ms;
            self.breakers
                .entry((provider.clone(), model.clone()))
                .or_insert_with(|| BreakerTally::first(*from, start))
                .add(*from, *to, r.ts_ms);
        }
    }

    /// Latency and cost objective violations of the record's workflow.
    fn add_objectives(&mut self, r: &AuditRecord) {
        let Some(name) = &r.workflow else { return };
        let Some(objectives) = self.objective_of.get(name) else {
            return;
        };
        let late = objectives
            .max_latency
            .is_some_and(|max| u128::from(r.timings.total_ms) > max.as_millis());
        let dear = objectives
            .max_cost_per_request
            .is_some_and(|max| r.cost_micros > max.0);
        let t = self.objectives.entry(name.clone()).or_default();
        t.requests += 1;
        t.latency_violations += u64::from(late);
        t.cost_violations += u64::from(dear);
        t.worst_ms = t.worst_ms.max(r.timings.total_ms);
        t.worst_cost_micros = t.worst_cost_micros.max(r.cost_micros);
    }

    /// Model drift figures of the model that answered.
    fn add_model(&mut self, r: &AuditRecord, error: bool) {
        let Some(route) = &r.route else { return };
        if route.response_model.is_empty() {
            return;
        }
        let refusal = classify::is_refusal(r);
        let m = match self.models.get_mut(&route.response_model) {
            Some(m) => m,
            None => self.models.entry(route.response_model.clone()).or_default(),
        };
        m.requests += 1;
        m.errors += u64::from(error);
        m.refusals += u64::from(refusal);
        if let Some(usage) = &r.usage {
            m.with_usage += 1;
            m.output_tokens += usage.output_tokens;
        }
        if r.status < 400 {
            m.latency.push(r.timings.total_ms);
        }
    }
}

fn add_tally(t: &mut Tally, r: &AuditRecord) {
    t.requests += 1;
    t.spend_micros = t.spend_micros.saturating_add(r.cost_micros);
}
