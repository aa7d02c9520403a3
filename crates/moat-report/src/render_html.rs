//! The report as one self-contained HTML page: inline CSS and SVG charts, no scripts and no
//! network fetches, so it opens the same from a mail attachment, a ticket or a file share.

use std::fmt::Write;

use crate::budget;
use crate::build::percent_change;
use crate::classify;
use crate::fmt::{
    breaker_cells, change, int, money, ms, percent, rate, BREAKERS, BREAKER_COLUMNS,
    BREAKER_TIME_OPEN, DRIFT, MAX_ROWS, SECTIONS,
};
use crate::period::{minute_label, period_label};
use crate::render_md::{models_list, top_errors};
use crate::report::*;
use crate::svg::{self, esc};

const CSS: &str = include_str!("report.css");

/// The report as an HTML document.
pub fn html(r: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("Governance review: {}", period_label(&r.period));
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t}</title><style>{CSS}</style></head><body><header><div class="wrap"><p class="eyebrow">moat · governance review</p><h1>{p}</h1><p class="sub">Compared with the previous period {prev}. Amounts are in the budget currency; times are UTC.</p><nav>"#,
        t = esc(&title),
        p = esc(&period_label(&r.period)),
        prev = esc(&period_label(&r.previous)),
    );
    for (i, s) in SECTIONS.iter().enumerate() {
        let _ = write!(out, r##"<a href="#s{}">{}</a>"##, i + 1, esc(s));
    }
    out.push_str(r#"</nav></div></header><main class="wrap">"#);
    summary(&mut out, r);
    inventory(&mut out, r);
    spend(&mut out, r);
    detection(&mut out, r);
    incidents(&mut out, r);
    near_misses(&mut out, r);
    models(&mut out, r);
    out.push_str("</main></body></html>\n");
    out
}

/// A table column: its heading and whether it holds numbers (right-aligned, tabular figures).
type Col<'a> = (&'a str, bool);

/// A table of pre-escaped cells; "None." when there are no rows.
fn table(out: &mut String, head: &[Col<'_>], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str(r#"<p class="none">None.</p>"#);
        return;
    }
    out.push_str("<div class=\"tbl\"><table><thead><tr>");
    for (h, n) in head {
        let _ = write!(out, "<th{}>{}</th>", num(*n), esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows.iter().take(MAX_ROWS) {
        out.push_str("<tr>");
        for (cell, (_, n)) in row.iter().zip(head) {
            let _ = write!(out, "<td{}>{cell}</td>", num(*n));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    if rows.len() > MAX_ROWS {
        let _ = write!(
            out,
            r#"<p class="note">… and {} more rows.</p>"#,
            int((rows.len() - MAX_ROWS) as u64)
        );
    }
}

fn num(n: bool) -> &'static str {
    if n {
        r#" class="n""#
    } else {
        ""
    }
}

fn section(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"<section id="s{}"><h2>{}</h2>"#,
        i + 1,
        esc(SECTIONS.get(i).copied().unwrap_or_default())
    );
}

fn note(out: &mut String, text: &str) {
    let _ = write!(out, r#"<p class="note">{}</p>"#, code(&esc(text)));
}

/// `backticks` as `<code>` (in already escaped text).
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn badge(kind: &str, text: &str) -> String {
    format!(r#"<span class="badge {kind}">{}</span>"#, esc(text))
}

fn summary(out: &mut String, r: &Report) {
    let s = &r.summary;
    out.push_str(r#"<section class="kpis">"#);
    let card = |out: &mut String,
                label: &str,
                now: String,
                before: String,
                a: f64,
                b: f64,
                up_bad: bool| {
        let p = percent_change(a, b);
        let tone = match p {
            Some(p) if p.abs() < 1.0 => "flat",
            Some(p) if (p > 0.0) == up_bad => "bad",
            Some(_) => "good",
            None => "flat",
        };
        let _ = write!(
            out,
            r#"<div class="kpi"><p class="k">{}</p><p class="v">{}</p><p class="d"><span class="{tone}">{}</span> vs {}</p></div>"#,
            esc(label),
            esc(&now),
            esc(&change(p, a != 0.0)),
            esc(&before)
        );
    };
    card(
        out,
        "Requests",
        int(s.requests.current),
        int(s.requests.previous),
        s.requests.current as f64,
        s.requests.previous as f64,
        false,
    );
    card(
        out,
        "Spend",
        money(s.spend_micros.current),
        money(s.spend_micros.previous),
        s.spend_micros.current as f64,
        s.spend_micros.previous as f64,
        true,
    );
    card(
        out,
        "Errors (5xx)",
        int(s.errors.current),
        int(s.errors.previous),
        s.errors.current as f64,
        s.errors.previous as f64,
        true,
    );
    card(
        out,
        "Unregistered requests",
        int(s.unregistered.current),
        int(s.unregistered.previous),
        s.unregistered.current as f64,
        s.unregistered.previous as f64,
        true,
    );
    out.push_str("</section>");
    out.push_str(r#"<section class="chart"><h3>Requests and errors per day</h3>"#);
    out.push_str(&svg::daily(&r.daily));
    out.push_str("</section>");
}

fn inventory(out: &mut String, r: &Report) {
    section(out, 0);
    let inv = &r.inventory;
    out.push_str("<h3>Workflows</h3>");
    let rows: Vec<Vec<String>> = inv
        .workflows
        .iter()
        .map(|w| {
            vec![
                format!("<strong>{}</strong>", esc(&w.name)),
                esc(&w.owner),
                badge(
                    match w.criticality {
                        "high" => "bad",
                        "medium" => "warn",
                        _ => "flat",
                    },
                    w.criticality,
                ),
                badge(
                    match w.sensitivity {
                        "restricted" | "confidential" => "bad",
                        _ => "flat",
                    },
                    w.sensitivity,
                ),
                if w.writes {
                    badge("warn", "writes")
                } else {
                    "no".to_string()
                },
                esc(&models_list(&w.models)),
                int(w.requests),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Workflow", false),
            ("Owner", false),
            ("Criticality", false),
            ("Sensitivity", false),
            ("Writes", false),
            ("Models", false),
            ("Requests", true),
        ],
        &rows,
    );
    out.push_str("<h3>Unregistered traffic</h3>");
    if inv.unregistered_requests == 0 {
        out.push_str(r#"<p class="none">None.</p>"#);
    } else {
        let _ = write!(
            out,
            r#"<p class="callout warn"><strong>{}</strong> requests from <strong>{}</strong> distinct keys without a registered workflow, spending <strong>{}</strong>.</p>"#,
            int(inv.unregistered_requests),
            int(inv.unregistered_keys),
            money(inv.unregistered_spend_micros)
        );
    }
    let _ = write!(
        out,
        "<p>Requests that never authenticated: {}.</p>",
        int(inv.unauthenticated)
    );
    if !inv.unknown_workflows.is_empty() {
        let _ = write!(
            out,
            "<p>Workflows on records but not registered now: {}.</p>",
            esc(&inv.unknown_workflows.join(", "))
        );
    }
    note(out, classify::UNREGISTERED);
    out.push_str("</section>");
}

fn spend(out: &mut String, r: &Report) {
    section(out, 1);
    out.push_str(r#"<div class="chart"><h3>Spend by workflow</h3>"#);
    let chart = svg::spend_bars(&r.spend.by_workflow);
    if chart.is_empty() {
        out.push_str(r#"<p class="none">None.</p>"#);
    }
    out.push_str(&chart);
    out.push_str("</div>");
    let rows = |rows: &[SpendRow]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|s| {
                let ch = change(s.change_percent, s.spend_micros.current != 0);
                let used = s.budget_percent.map_or_else(
                    || "–".to_string(),
                    |p| {
                        let tone = if p >= 100.0 {
                            "bad"
                        } else if p >= 80.0 {
                            "warn"
                        } else {
                            "good"
                        };
                        meter(p, tone)
                    },
                );
                vec![
                    esc(&s.name),
                    int(s.requests),
                    money(s.spend_micros.current),
                    money(s.spend_micros.previous),
                    if s.notable {
                        badge("warn", &ch)
                    } else {
                        esc(&ch)
                    },
                    s.budget_micros.map_or_else(|| "–".to_string(), money),
                    used,
                ]
            })
            .collect()
    };
    let head = |first: &'static str| -> [Col<'static>; 7] {
        [
            (first, false),
            ("Requests", true),
            ("Spend", true),
            ("Previous", true),
            ("Change", true),
            ("Budget", true),
            ("Of budget", true),
        ]
    };
    out.push_str("<h3>By workflow</h3>");
    table(out, &head("Workflow"), &rows(&r.spend.by_workflow));
    out.push_str("<h3>By account</h3>");
    table(out, &head("Account"), &rows(&r.spend.by_account));
    note(
        out,
        &format!(
            "Highlighted changes are ±{:.0} % or more, or new spend. {}",
            SPEND_CHANGE_PERCENT,
            budget::RULE
        ),
    );
    out.push_str("</section>");
}

/// A small bar showing a percentage of budget, with the figure.
fn meter(p: f64, tone: &str) -> String {
    format!(
        r#"<span class="meter"><span class="fill {tone}" style="width:{:.0}%"></span></span>{}"#,
        p.clamp(0.0, 100.0),
        esc(&percent(p))
    )
}

fn detection(out: &mut String, r: &Report) {
    section(out, 2);
    let rows: Vec<Vec<String>> = r
        .detection
        .iter()
        .map(|d| {
            let tone = if d.outcome.starts_with("would_") {
                "flat"
            } else if d.outcome == "block" {
                "bad"
            } else {
                "warn"
            };
            vec![
                esc(&d.account),
                badge(tone, &d.outcome),
                int(d.count),
                esc(&minute_label(d.first_ms)),
                esc(&minute_label(d.last_ms)),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Account", false),
            ("Action", false),
            ("Requests", true),
            ("First seen", false),
            ("Last seen", false),
        ],
        &rows,
    );
    note(out, "Actions the detection gate took (`throttle`, `degrade`, `block`) or, in monitor mode, would have taken (`would_*`).");
    out.push_str("</section>");
}

fn incidents(out: &mut String, r: &Report) {
    section(out, 3);
    let inc = &r.incidents;
    out.push_str("<h3>Provider failures</h3>");
    let rows: Vec<Vec<String>> = inc
        .providers
        .iter()
        .map(|p| {
            vec![
                esc(&p.provider),
                int(p.requests),
                int(p.failures),
                rate(p.failure_rate.current),
                rate(p.failure_rate.previous),
                esc(&top_errors(&p.by_error)),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Provider", false),
            ("Requests", true),
            ("Failures", true),
            ("Rate", true),
            ("Previous", true),
            ("Errors", false),
        ],
        &rows,
    );
    out.push_str("<h3>Outages</h3>");
    if !inc.outages.is_empty() {
        let _ = write!(
            out,
            r#"<p class="callout bad"><strong>{}</strong> outage hour(s): a provider failed more than half of its requests.</p>"#,
            inc.outages.len()
        );
    }
    table(out, &hour_head(), &hour_rows(&inc.outages));
    let _ = write!(
        out,
        "<h3>Worst hours <small>({} provider-hours had failures)</small></h3>",
        int(inc.hours_with_failures)
    );
    table(out, &hour_head(), &hour_rows(&inc.worst_hours));
    out.push_str("<h3>Fallbacks</h3>");
    let f = &inc.fallbacks;
    if f.count == 0 {
        let _ = write!(
            out,
            r#"<p class="none">None (previous period: {}).</p>"#,
            int(f.previous)
        );
    } else {
        let by: Vec<String> = f
            .by_provider
            .iter()
            .map(|(p, n)| format!("{} {}", esc(p), int(*n)))
            .collect();
        let _ = write!(
            out,
            "<p><strong>{}</strong> requests needed more than one upstream attempt ({} answered successfully; previous period: {}). Answered last by: {}.</p>",
            int(f.count),
            int(f.succeeded),
            int(f.previous),
            by.join(", ")
        );
    }
    out.push_str("<h3>Objective violations</h3>");
    let rows: Vec<Vec<String>> = inc
        .objectives
        .iter()
        .map(|o| {
            let over = |n: u64| {
                if n > 0 {
                    badge("bad", &int(n))
                } else {
                    "0".to_string()
                }
            };
            vec![
                esc(&o.workflow),
                int(o.requests),
                ms(o.max_latency_ms),
                over(o.latency_violations),
                ms(Some(o.worst_ms)),
                o.max_cost_micros.map_or_else(|| "–".to_string(), money),
                over(o.cost_violations),
                money(o.worst_cost_micros),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Workflow", false),
            ("Requests", true),
            ("Max latency", true),
            ("Over", true),
            ("Slowest", true),
            ("Max cost", true),
            ("Over", true),
            ("Dearest", true),
        ],
        &rows,
    );
    out.push_str("<h3>Circuit breakers</h3>");
    let still_open = inc.breakers.iter().filter(|b| b.open_at_end).count();
    if still_open > 0 {
        let _ = write!(
            out,
            r#"<p class="callout bad"><strong>{still_open}</strong> circuit breaker(s) still open at the period's end.</p>"#
        );
    }
    let rows: Vec<Vec<String>> = inc
        .breakers
        .iter()
        .map(|b| {
            let mut cells: Vec<String> = breaker_cells(b).iter().map(|c| esc(c)).collect();
            if b.open_at_end {
                cells[BREAKER_TIME_OPEN] = badge("bad", &cells[BREAKER_TIME_OPEN]);
            }
            cells
        })
        .collect();
    table(out, &BREAKER_COLUMNS, &rows);
    note(out, BREAKERS);
    note(out, classify::PROVIDER_FAILURE);
    out.push_str("</section>");
}

fn hour_head() -> [Col<'static>; 5] {
    [
        ("Hour", false),
        ("Provider", false),
        ("Requests", true),
        ("Failures", true),
        ("Outage", false),
    ]
}

fn hour_rows(hours: &[HourRow]) -> Vec<Vec<String>> {
    hours
        .iter()
        .map(|h| {
            vec![
                esc(&minute_label(h.hour_ms)),
                esc(&h.provider),
                int(h.requests),
                int(h.failures),
                if h.outage {
                    badge("bad", "outage")
                } else {
                    "–".to_string()
                },
            ]
        })
        .collect()
}

fn near_misses(out: &mut String, r: &Report) {
    section(out, 4);
    let n = &r.near_misses;
    out.push_str(r#"<div class="cols"><div><h3>By kind</h3>"#);
    let rows: Vec<Vec<String>> = n
        .by_kind
        .iter()
        .map(|(k, c)| vec![format!("<code>{}</code>", esc(k)), int(*c)])
        .collect();
    table(out, &[("Kind", false), ("Requests", true)], &rows);
    out.push_str("</div><div><h3>Budgets near ceiling</h3>");
    let rows: Vec<Vec<String>> = n
        .budgets
        .iter()
        .map(|b| {
            vec![
                format!("{} <strong>{}</strong>", esc(b.scope), esc(&b.name)),
                money(b.spend_micros),
                money(b.budget_micros),
                meter(b.percent, if b.percent >= 100.0 { "bad" } else { "warn" }),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Budget", false),
            ("Spend", true),
            ("Allowance", true),
            ("Used", true),
        ],
        &rows,
    );
    out.push_str("</div></div><h3>By kind and principal</h3>");
    let rows: Vec<Vec<String>> = n
        .rows
        .iter()
        .map(|m| {
            vec![
                format!("<code>{}</code>", esc(&m.kind)),
                esc(&m.principal),
                int(m.count),
            ]
        })
        .collect();
    table(
        out,
        &[("Kind", false), ("Principal", false), ("Requests", true)],
        &rows,
    );
    note(out, "Near misses: requests blocked or flagged by a filter (`filter:*`), refused by policy, rate limits or budget (`policy:deny`, `limits:deny`, `budget:deny`), or blocked by detection (`detection:block`). A budget is near its ceiling when the period's spend reaches its alert threshold (`soft_percent`, default 80 %) of the allowance.");
    out.push_str("</section>");
}

fn models(out: &mut String, r: &Report) {
    section(out, 5);
    out.push_str(r#"<div class="chart"><h3>Latency per model</h3>"#);
    let chart = svg::latency(&r.models);
    if chart.is_empty() {
        out.push_str(r#"<p class="none">None.</p>"#);
    }
    out.push_str(&chart);
    out.push_str("</div>");
    let pair = |now: String, before: Option<String>| {
        format!(
            r#"{}<span class="was">{}</span>"#,
            esc(&now),
            esc(&before.unwrap_or_else(|| "–".to_string()))
        )
    };
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            let p = m.previous.as_ref();
            vec![
                format!("<strong>{}</strong>", esc(&m.model)),
                int(m.current.requests),
                pair(ms(m.current.p50_ms), p.map(|p| ms(p.p50_ms))),
                pair(ms(m.current.p95_ms), p.map(|p| ms(p.p95_ms))),
                pair(rate(m.current.error_rate), p.map(|p| rate(p.error_rate))),
                pair(
                    m.current
                        .mean_output_tokens
                        .map_or_else(|| "–".to_string(), |v| format!("{v:.0}")),
                    p.and_then(|p| p.mean_output_tokens)
                        .map(|v| format!("{v:.0}")),
                ),
                pair(
                    rate(m.current.refusal_rate),
                    p.map(|p| rate(p.refusal_rate)),
                ),
                if m.changes.is_empty() {
                    "–".to_string()
                } else {
                    m.changes
                        .iter()
                        .map(|c| badge("warn", c))
                        .collect::<Vec<_>>()
                        .join(" ")
                },
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Model", false),
            ("Requests", true),
            ("p50", true),
            ("p95", true),
            ("Error rate", true),
            ("Mean output tokens", true),
            ("Refusal rate", true),
            ("Changes", false),
        ],
        &rows,
    );
    note(
        out,
        "Each figure shows this period, with the previous period beneath it.",
    );
    note(out, DRIFT);
    note(out, classify::REFUSAL);
    out.push_str("</section>");
}
