//! From two periods' aggregates and the config to the [`Report`]: comparisons, budgets,
//! outage hours, percentiles and the changes worth calling out.

use std::collections::BTreeMap;

use moat_config::Budget;

use crate::budget::allowance;
use crate::classify::OUTAGE_MIN_FAILURES;
use crate::period::{day_start, DAY_MS};
use crate::report::*;
use crate::stats::{ModelTally, PeriodStats, Tally, NO_KEY, UNREGISTERED};
use crate::ReportConfig;

/// The report of `current` against `previous`.
pub fn build(config: &ReportConfig, current: &PeriodStats, previous: &PeriodStats) -> Report {
    Report {
        period: current.period,
        previous: previous.period,
        summary: Summary {
            requests: cmp(current.requests, previous.requests),
            spend_micros: cmp(current.spend_micros, previous.spend_micros),
            errors: cmp(current.errors, previous.errors),
            unregistered: cmp(
                current.unregistered.requests,
                previous.unregistered.requests,
            ),
        },
        inventory: inventory(config, current),
        spend: spend(config, current, previous),
        detection: detection(current),
        incidents: incidents(config, current, previous),
        near_misses: near_misses(config, current),
        models: models(current, previous),
        daily: daily(current),
    }
}

fn cmp<T>(current: T, previous: T) -> Compare<T> {
    Compare { current, previous }
}

fn inventory(config: &ReportConfig, s: &PeriodStats) -> Inventory {
    let workflows = config
        .workflows
        .iter()
        .map(|w| WorkflowRow {
            name: w.name.clone(),
            owner: w.owner.clone(),
            criticality: w.criticality.as_str(),
            sensitivity: w.sensitivity.as_str(),
            writes: w.writes,
            models: w.models.clone(),
            requests: s.by_workflow.get(&w.name).map_or(0, |t| t.requests),
        })
        .collect();
    let unknown_workflows = s
        .by_workflow
        .keys()
        .filter(|name| !is_pseudo(name) && config.workflow(name).is_none())
        .cloned()
        .collect();
    Inventory {
        workflows,
        unregistered_requests: s.unregistered.requests,
        unregistered_keys: s.unregistered_keys.len() as u64,
        unregistered_spend_micros: s.unregistered.spend_micros,
        unauthenticated: s.unauthenticated,
        unknown_workflows,
    }
}

fn is_pseudo(name: &str) -> bool {
    name == UNREGISTERED || name == NO_KEY
}

fn spend(config: &ReportConfig, cur: &PeriodStats, prev: &PeriodStats) -> Spend {
    let workflow_budget = |name: &str| config.workflow(name).map(|w| w.budget);
    let account_budget = |name: &str| {
        if is_pseudo(name) {
            None
        } else {
            Some(config.account_budget(name))
        }
    };
    let names = |extra: Vec<String>, a: &BTreeMap<String, Tally>, b: &BTreeMap<String, Tally>| {
        let mut all: Vec<String> = extra;
        all.extend(a.keys().cloned());
        all.extend(b.keys().cloned());
        all.sort();
        all.dedup();
        all
    };
    let workflows = names(
        config.workflows.iter().map(|w| w.name.clone()).collect(),
        &cur.by_workflow,
        &prev.by_workflow,
    );
    let accounts = names(
        config.accounts.iter().map(|a| a.name.clone()).collect(),
        &cur.by_account,
        &prev.by_account,
    );
    let rows = |names: Vec<String>,
                a: &BTreeMap<String, Tally>,
                b: &BTreeMap<String, Tally>,
                budget: &dyn Fn(&str) -> Option<Budget>| {
        let mut rows: Vec<SpendRow> = names
            .into_iter()
            .map(|name| {
                let now = a.get(&name).copied().unwrap_or_default();
                let before = b.get(&name).copied().unwrap_or_default();
                let allowed = budget(&name).and_then(|b| allowance(&b, &cur.period));
                spend_row(name, now, before, allowed)
            })
            .collect();
        rows.sort_by(|x, y| {
            y.spend_micros
                .current
                .cmp(&x.spend_micros.current)
                .then_with(|| x.name.cmp(&y.name))
        });
        rows
    };
    Spend {
        by_workflow: rows(
            workflows,
            &cur.by_workflow,
            &prev.by_workflow,
            &workflow_budget,
        ),
        by_account: rows(accounts, &cur.by_account, &prev.by_account, &account_budget),
    }
}

fn spend_row(name: String, now: Tally, before: Tally, budget: Option<i64>) -> SpendRow {
    let change_percent = percent_change(now.spend_micros as f64, before.spend_micros as f64);
    let notable = match change_percent {
        Some(p) => p.abs() >= SPEND_CHANGE_PERCENT,
        None => now.spend_micros > 0,
    };
    SpendRow {
        name,
        requests: now.requests,
        spend_micros: cmp(now.spend_micros, before.spend_micros),
        change_percent,
        notable,
        budget_micros: budget,
        budget_percent: budget.and_then(|b| ratio(now.spend_micros as f64, b as f64)),
    }
}

/// `(now − before) / before` in percent; `None` when `before` is zero.
pub(crate) fn percent_change(now: f64, before: f64) -> Option<f64> {
    (before != 0.0).then(|| (now - before) / before * 100.0)
}

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole * 100.0)
}

fn detection(s: &PeriodStats) -> Vec<DetectionRow> {
    let mut rows: Vec<DetectionRow> = s
        .detection
        .iter()
        .map(|((account, outcome), seen)| DetectionRow {
            account: account.clone(),
            outcome: outcome.clone(),
            count: seen.count,
            first_ms: seen.first_ms,
            last_ms: seen.last_ms,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.account.cmp(&b.account))
    });
    rows
}

fn incidents(config: &ReportConfig, cur: &PeriodStats, prev: &PeriodStats) -> Incidents {
    let rate = |s: &PeriodStats, p: &str| {
        s.providers
            .get(p)
            .map_or(0.0, |t| fraction(t.failures, t.requests))
    };
    let providers = cur
        .providers
        .iter()
        .map(|(name, t)| ProviderRow {
            provider: name.clone(),
            requests: t.requests,
            failures: t.failures,
            failure_rate: cmp(rate(cur, name), rate(prev, name)),
            by_error: most_first(t.by_error.iter().map(|(k, v)| (k.clone(), *v))),
        })
        .collect();
    let hours: Vec<HourRow> = cur
        .provider_hours
        .iter()
        .filter(|(_, c)| c.failures > 0)
        .map(|((provider, hour_ms), c)| HourRow {
            provider: provider.clone(),
            hour_ms: *hour_ms,
            requests: c.requests,
            failures: c.failures,
            outage: c.failures * 2 > c.requests && c.failures >= OUTAGE_MIN_FAILURES,
        })
        .collect();
    let outages = hours.iter().filter(|h| h.outage).cloned().collect();
    let mut worst = hours.clone();
    worst.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| a.hour_ms.cmp(&b.hour_ms))
    });
    worst.truncate(Incidents::TOP_HOURS);
    let objectives = config
        .workflows
        .iter()
        .filter(|w| {
            w.objectives.max_latency.is_some() || w.objectives.max_cost_per_request.is_some()
        })
        .map(|w| {
            let t = cur.objectives.get(&w.name).copied().unwrap_or_default();
            ObjectiveRow {
                workflow: w.name.clone(),
                requests: t.requests,
                max_latency_ms: w
                    .objectives
                    .max_latency
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                latency_violations: t.latency_violations,
                worst_ms: t.worst_ms,
                max_cost_micros: w.objectives.max_cost_per_request.map(|m| m.0),
                cost_violations: t.cost_violations,
                worst_cost_micros: t.worst_cost_micros,
            }
        })
        .collect();
    let breakers = breakers(cur, prev);
    Incidents {
        breakers,
        providers,
        outages,
        worst_hours: worst,
        hours_with_failures: hours.len() as u64,
        fallbacks: Fallbacks {
            count: cur.fallbacks,
            previous: prev.fallbacks,
            succeeded: cur.fallbacks_ok,
            by_provider: most_first(
                cur.fallbacks_by_provider
                    .iter()
                    .map(|(k, v)| (k.clone(), *v)),
            ),
        },
        objectives,
    }
}

/// The breakers that changed state in `cur`, most openings first (then longest open).
fn breakers(cur: &PeriodStats, prev: &PeriodStats) -> Vec<BreakerRow> {
    let end = cur.period.to_ms;
    let mut rows: Vec<BreakerRow> = cur
        .breakers
        .iter()
        .map(|((provider, model), t)| {
            let still_open = t.open_since.map_or(0, |since| {
                u64::try_from(end.saturating_sub(since)).unwrap_or(0)
            });
            BreakerRow {
                provider: provider.clone(),
                model: model.clone(),
                openings: cmp(
                    t.openings,
                    prev.breakers
                        .get(&(provider.clone(), model.clone()))
                        .map_or(0, |p| p.openings),
                ),
                reopenings: t.reopenings,
                recoveries: t.recoveries,
                open_ms: t.open_ms.saturating_add(still_open),
                open_at_end: t.open_since.is_some(),
                first_open_ms: t.first_open_ms,
                last_open_ms: t.last_open_ms,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.openings
            .current
            .cmp(&a.openings.current)
            .then_with(|| b.open_ms.cmp(&a.open_ms))
            .then_with(|| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)))
    });
    rows
}

fn near_misses(config: &ReportConfig, s: &PeriodStats) -> NearMisses {
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for ((kind, _), n) in &s.near_misses {
        *by_kind.entry(kind.clone()).or_default() += n;
    }
    let mut rows: Vec<NearMissRow> = s
        .near_misses
        .iter()
        .map(|((kind, principal), n)| NearMissRow {
            kind: kind.clone(),
            principal: principal.clone(),
            count: *n,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.principal.cmp(&b.principal))
    });
    let mut budgets = Vec::new();
    let mut check = |scope: &'static str, name: &str, budget: &Budget, spent: i64| {
        let Some(allowed) = allowance(budget, &s.period) else {
            return;
        };
        let Some(percent) = ratio(spent as f64, allowed as f64) else {
            return;
        };
        if percent >= f64::from(budget.soft_percent) {
            budgets.push(BudgetAlert {
                scope,
                name: name.to_string(),
                spend_micros: spent,
                budget_micros: allowed,
                percent,
                threshold_percent: budget.soft_percent,
            });
        }
    };
    for w in &config.workflows {
        let spent = s.by_workflow.get(&w.name).map_or(0, |t| t.spend_micros);
        check("workflow", &w.name, &w.budget, spent);
    }
    for (name, t) in &s.by_account {
        if !is_pseudo(name) {
            check(
                "account",
                name,
                &config.account_budget(name),
                t.spend_micros,
            );
        }
    }
    budgets.sort_by(|a, b| b.percent.total_cmp(&a.percent));
    NearMisses {
        by_kind: most_first(by_kind),
        rows,
        budgets,
    }
}

fn models(cur: &PeriodStats, prev: &PeriodStats) -> Vec<ModelRow> {
    cur.models
        .iter()
        .map(|(name, t)| {
            let current = figures(t);
            let previous = prev.models.get(name).map(figures);
            let changes = previous.map_or_else(Vec::new, |p| changes(&current, &p));
            ModelRow {
                model: name.clone(),
                current,
                previous,
                changes,
            }
        })
        .collect()
}

fn figures(t: &ModelTally) -> ModelFigures {
    let pct = t.latency.percentiles(&[50.0, 95.0]);
    let at = |i: usize| pct.as_ref().and_then(|v| v.get(i).copied());
    ModelFigures {
        requests: t.requests,
        p50_ms: at(0),
        p95_ms: at(1),
        error_rate: fraction(t.errors, t.requests),
        refusal_rate: fraction(t.refusals, t.requests),
        mean_output_tokens: (t.with_usage > 0)
            .then(|| t.output_tokens as f64 / t.with_usage as f64),
    }
}

fn changes(now: &ModelFigures, before: &ModelFigures) -> Vec<String> {
    let mut out = Vec::new();
    let mut relative = |what: &str, a: Option<f64>, b: Option<f64>| {
        if let (Some(a), Some(b)) = (a, b) {
            if let Some(p) = percent_change(a, b) {
                if p.abs() >= DRIFT_PERCENT {
                    out.push(format!("{what} {p:+.0} %"));
                }
            }
        }
    };
    relative(
        "p50 latency",
        now.p50_ms.map(|v| v as f64),
        before.p50_ms.map(|v| v as f64),
    );
    relative(
        "p95 latency",
        now.p95_ms.map(|v| v as f64),
        before.p95_ms.map(|v| v as f64),
    );
    relative(
        "mean output tokens",
        now.mean_output_tokens,
        before.mean_output_tokens,
    );
    let mut points = |what: &str, a: f64, b: f64| {
        let d = (a - b) * 100.0;
        if d.abs() >= DRIFT_POINTS {
            out.push(format!("{what} {d:+.1} pp"));
        }
    };
    points("error rate", now.error_rate, before.error_rate);
    points("refusal rate", now.refusal_rate, before.refusal_rate);
    out
}

fn daily(s: &PeriodStats) -> Vec<DayRow> {
    let mut rows = Vec::new();
    let mut day = day_start(s.period.from_ms);
    while day < s.period.to_ms {
        let c = s.days.get(&day).copied().unwrap_or_default();
        rows.push(DayRow {
            day_ms: day,
            requests: c.requests,
            errors: c.failures,
        });
        day += DAY_MS;
    }
    rows
}

fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn most_first(items: impl IntoIterator<Item = (String, u64)>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = items.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}
