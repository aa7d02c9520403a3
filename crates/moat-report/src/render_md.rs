//! The report as Markdown: the same sections and figures as the HTML page, as tables.

use std::fmt::Write;

use crate::budget;
use crate::classify;
use crate::fmt::{
    breaker_cells, change, int, money, ms, percent, rate, BREAKERS, BREAKER_COLUMNS, DRIFT,
    MAX_ROWS, SECTIONS,
};
use crate::period::{minute_label, period_label};
use crate::report::*;

/// The report as a Markdown document.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Governance review: {}\n", period_label(&r.period));
    let _ = writeln!(
        out,
        "Compared with the previous period {}. Amounts are in the budget currency; times are UTC.\n",
        period_label(&r.previous)
    );
    summary(&mut out, r);
    inventory(&mut out, r);
    spend(&mut out, r);
    detection(&mut out, r);
    incidents(&mut out, r);
    near_misses(&mut out, r);
    models(&mut out, r);
    out
}

/// Column alignment.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}
use Align::{Left, Right};

fn table(out: &mut String, head: &[(&str, Align)], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    let cells = |v: &mut String, items: &mut dyn Iterator<Item = String>| {
        v.push('|');
        for c in items {
            let _ = write!(v, " {} |", c.replace('|', "\\|"));
        }
        v.push('\n');
    };
    cells(out, &mut head.iter().map(|(h, _)| h.to_string()));
    cells(
        out,
        &mut head.iter().map(|(_, a)| match a {
            Left => "---".to_string(),
            Right => "---:".to_string(),
        }),
    );
    for row in rows.iter().take(MAX_ROWS) {
        cells(out, &mut row.iter().cloned());
    }
    if rows.len() > MAX_ROWS {
        let _ = writeln!(out, "\n… and {} more rows.", rows.len() - MAX_ROWS);
    }
    out.push('\n');
}

fn heading(out: &mut String, i: usize) {
    let _ = writeln!(out, "## {}\n", SECTIONS.get(i).copied().unwrap_or_default());
}

fn summary(out: &mut String, r: &Report) {
    let s = &r.summary;
    let row = |what: &str, a: String, b: String, c: String| vec![what.to_string(), a, b, c];
    let pct = |a: f64, b: f64| change(crate::build::percent_change(a, b), a != 0.0);
    table(
        out,
        &[
            ("", Left),
            ("This period", Right),
            ("Previous", Right),
            ("Change", Right),
        ],
        &[
            row(
                "Requests",
                int(s.requests.current),
                int(s.requests.previous),
                pct(s.requests.current as f64, s.requests.previous as f64),
            ),
            row(
                "Spend",
                money(s.spend_micros.current),
                money(s.spend_micros.previous),
                pct(
                    s.spend_micros.current as f64,
                    s.spend_micros.previous as f64,
                ),
            ),
            row(
                "Errors (5xx)",
                int(s.errors.current),
                int(s.errors.previous),
                pct(s.errors.current as f64, s.errors.previous as f64),
            ),
            row(
                "Unregistered requests",
                int(s.unregistered.current),
                int(s.unregistered.previous),
                pct(
                    s.unregistered.current as f64,
                    s.unregistered.previous as f64,
                ),
            ),
        ],
    );
}

fn inventory(out: &mut String, r: &Report) {
    heading(out, 0);
    let inv = &r.inventory;
    out.push_str("### Workflows\n\n");
    let rows: Vec<Vec<String>> = inv
        .workflows
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.owner.clone(),
                w.criticality.to_string(),
                w.sensitivity.to_string(),
                if w.writes { "yes" } else { "no" }.to_string(),
                models_list(&w.models),
                int(w.requests),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Workflow", Left),
            ("Owner", Left),
            ("Criticality", Left),
            ("Sensitivity", Left),
            ("Writes", Left),
            ("Models", Left),
            ("Requests", Right),
        ],
        &rows,
    );
    out.push_str("### Unregistered traffic\n\n");
    if inv.unregistered_requests == 0 {
        out.push_str("None.\n\n");
    } else {
        let _ = writeln!(
            out,
            "{} requests from {} distinct keys without a registered workflow, spending {}.\n",
            int(inv.unregistered_requests),
            int(inv.unregistered_keys),
            money(inv.unregistered_spend_micros)
        );
    }
    let _ = writeln!(
        out,
        "Requests that never authenticated: {}.\n",
        int(inv.unauthenticated)
    );
    if !inv.unknown_workflows.is_empty() {
        let _ = writeln!(
            out,
            "Workflows on records but not registered now: {}.\n",
            inv.unknown_workflows.join(", ")
        );
    }
    let _ = writeln!(out, "_{}_\n", classify::UNREGISTERED);
}

/// `any` for an empty list.
pub(crate) fn models_list(models: &[String]) -> String {
    if models.is_empty() {
        "any".to_string()
    } else {
        models.join(", ")
    }
}

fn spend(out: &mut String, r: &Report) {
    heading(out, 1);
    let rows = |rows: &[SpendRow]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|s| {
                let flag = if s.notable { " ⚠" } else { "" };
                vec![
                    s.name.clone(),
                    int(s.requests),
                    money(s.spend_micros.current),
                    money(s.spend_micros.previous),
                    format!(
                        "{}{flag}",
                        change(s.change_percent, s.spend_micros.current != 0)
                    ),
                    s.budget_micros.map_or_else(|| "–".to_string(), money),
                    s.budget_percent.map_or_else(|| "–".to_string(), percent),
                ]
            })
            .collect()
    };
    let head = [
        ("", Left),
        ("Requests", Right),
        ("Spend", Right),
        ("Previous", Right),
        ("Change", Right),
        ("Budget", Right),
        ("Of budget", Right),
    ];
    out.push_str("### By workflow\n\n");
    let mut h = head;
    h[0] = ("Workflow", Left);
    table(out, &h, &rows(&r.spend.by_workflow));
    out.push_str("### By account\n\n");
    h[0] = ("Account", Left);
    table(out, &h, &rows(&r.spend.by_account));
    let _ = writeln!(
        out,
        "_⚠ marks a change of ±{:.0} % or more, or new spend. {}_\n",
        SPEND_CHANGE_PERCENT,
        budget::RULE
    );
}

fn detection(out: &mut String, r: &Report) {
    heading(out, 2);
    let rows: Vec<Vec<String>> = r
        .detection
        .iter()
        .map(|d| {
            vec![
                d.account.clone(),
                d.outcome.clone(),
                int(d.count),
                minute_label(d.first_ms),
                minute_label(d.last_ms),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Account", Left),
            ("Action", Left),
            ("Requests", Right),
            ("First seen", Left),
            ("Last seen", Left),
        ],
        &rows,
    );
    out.push_str("_Actions the detection gate took (`throttle`, `degrade`, `block`) or, in monitor mode, would have taken (`would_*`)._\n\n");
}

fn incidents(out: &mut String, r: &Report) {
    heading(out, 3);
    let inc = &r.incidents;
    out.push_str("### Provider failures\n\n");
    let rows: Vec<Vec<String>> = inc
        .providers
        .iter()
        .map(|p| {
            vec![
                p.provider.clone(),
                int(p.requests),
                int(p.failures),
                rate(p.failure_rate.current),
                rate(p.failure_rate.previous),
                top_errors(&p.by_error),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Provider", Left),
            ("Requests", Right),
            ("Failures", Right),
            ("Rate", Right),
            ("Previous", Right),
            ("Errors", Left),
        ],
        &rows,
    );
    out.push_str("### Outages\n\n");
    table(out, &hour_head(), &hour_rows(&inc.outages));
    let _ = writeln!(
        out,
        "### Worst hours ({} provider-hours had failures)\n",
        int(inc.hours_with_failures)
    );
    table(out, &hour_head(), &hour_rows(&inc.worst_hours));
    out.push_str("### Fallbacks\n\n");
    let f = &inc.fallbacks;
    if f.count == 0 {
        let _ = writeln!(out, "None (previous period: {}).\n", int(f.previous));
    } else {
        let by: Vec<String> = f
            .by_provider
            .iter()
            .map(|(p, n)| format!("{p} {}", int(*n)))
            .collect();
        let _ = writeln!(
            out,
            "{} requests needed more than one upstream attempt ({} answered successfully; previous period: {}). Answered last by: {}.\n",
            int(f.count),
            int(f.succeeded),
            int(f.previous),
            by.join(", ")
        );
    }
    out.push_str("### Objective violations\n\n");
    let rows: Vec<Vec<String>> = inc
        .objectives
        .iter()
        .map(|o| {
            vec![
                o.workflow.clone(),
                int(o.requests),
                ms(o.max_latency_ms),
                int(o.latency_violations),
                ms(Some(o.worst_ms)),
                o.max_cost_micros.map_or_else(|| "–".to_string(), money),
                int(o.cost_violations),
                money(o.worst_cost_micros),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Workflow", Left),
            ("Requests", Right),
            ("Max latency", Right),
            ("Over", Right),
            ("Slowest", Right),
            ("Max cost", Right),
            ("Over", Right),
            ("Dearest", Right),
        ],
        &rows,
    );
    out.push_str("### Circuit breakers\n\n");
    let still_open = inc.breakers.iter().filter(|b| b.open_at_end).count();
    if still_open > 0 {
        let _ = writeln!(
            out,
            "**{still_open} circuit breaker(s) still open at the period's end.**\n"
        );
    }
    let head: Vec<(&str, Align)> = BREAKER_COLUMNS
        .iter()
        .map(|(h, numeric)| (*h, if *numeric { Right } else { Left }))
        .collect();
    let rows: Vec<Vec<String>> = inc.breakers.iter().map(breaker_cells).collect();
    table(out, &head, &rows);
    let _ = writeln!(out, "_{}_\n", BREAKERS);
    let _ = writeln!(out, "_{}_\n", classify::PROVIDER_FAILURE);
}

/// `upstream_status 12, upstream_timeout 3`.
pub(crate) fn top_errors(errors: &[(String, u64)]) -> String {
    let v: Vec<String> = errors
        .iter()
        .take(4)
        .map(|(e, n)| format!("{e} {}", int(*n)))
        .collect();
    v.join(", ")
}

fn hour_head() -> [(&'static str, Align); 5] {
    [
        ("Hour", Left),
        ("Provider", Left),
        ("Requests", Right),
        ("Failures", Right),
        ("Outage", Left),
    ]
}

fn hour_rows(hours: &[HourRow]) -> Vec<Vec<String>> {
    hours
        .iter()
        .map(|h| {
            vec![
                minute_label(h.hour_ms),
                h.provider.clone(),
                int(h.requests),
                int(h.failures),
                if h.outage { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect()
}

fn near_misses(out: &mut String, r: &Report) {
    heading(out, 4);
    let n = &r.near_misses;
    out.push_str("### By kind\n\n");
    let rows: Vec<Vec<String>> = n
        .by_kind
        .iter()
        .map(|(k, c)| vec![k.clone(), int(*c)])
        .collect();
    table(out, &[("Kind", Left), ("Requests", Right)], &rows);
    out.push_str("### By kind and principal\n\n");
    let rows: Vec<Vec<String>> = n
        .rows
        .iter()
        .map(|m| vec![m.kind.clone(), m.principal.clone(), int(m.count)])
        .collect();
    table(
        out,
        &[("Kind", Left), ("Principal", Left), ("Requests", Right)],
        &rows,
    );
    out.push_str("### Budgets near ceiling\n\n");
    let rows: Vec<Vec<String>> = n
        .budgets
        .iter()
        .map(|b| {
            vec![
                b.scope.to_string(),
                b.name.clone(),
                money(b.spend_micros),
                money(b.budget_micros),
                percent(b.percent),
                format!("{} %", b.threshold_percent),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Scope", Left),
            ("Name", Left),
            ("Spend", Right),
            ("Budget", Right),
            ("Used", Right),
            ("Alert at", Right),
        ],
        &rows,
    );
    out.push_str("_Near misses: requests blocked or flagged by a filter (`filter:*`), refused by policy, rate limits or budget (`policy:deny`, `limits:deny`, `budget:deny`), or blocked by detection (`detection:block`). A budget is near its ceiling when the period's spend reaches its alert threshold (`soft_percent`, default 80 %) of the allowance._\n\n");
}

fn models(out: &mut String, r: &Report) {
    heading(out, 5);
    let opt = |v: Option<String>| v.unwrap_or_else(|| "–".to_string());
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            let p = m.previous.as_ref();
            vec![
                m.model.clone(),
                int(m.current.requests),
                format!(
                    "{} / {}",
                    ms(m.current.p50_ms),
                    ms(p.and_then(|p| p.p50_ms))
                ),
                format!(
                    "{} / {}",
                    ms(m.current.p95_ms),
                    ms(p.and_then(|p| p.p95_ms))
                ),
                format!(
                    "{} / {}",
                    rate(m.current.error_rate),
                    opt(p.map(|p| rate(p.error_rate)))
                ),
                format!(
                    "{} / {}",
                    opt(m.current.mean_output_tokens.map(|v| format!("{v:.0}"))),
                    opt(p
                        .and_then(|p| p.mean_output_tokens)
                        .map(|v| format!("{v:.0}")))
                ),
                format!(
                    "{} / {}",
                    rate(m.current.refusal_rate),
                    opt(p.map(|p| rate(p.refusal_rate)))
                ),
                if m.changes.is_empty() {
                    "–".to_string()
                } else {
                    format!("⚠ {}", m.changes.join("; "))
                },
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Model", Left),
            ("Requests", Right),
            ("p50 (now / before)", Right),
            ("p95", Right),
            ("Error rate", Right),
            ("Mean output tokens", Right),
            ("Refusal rate", Right),
            ("Changes", Left),
        ],
        &rows,
    );
    let _ = writeln!(out, "_{DRIFT} {}_\n", classify::REFUSAL);
}
