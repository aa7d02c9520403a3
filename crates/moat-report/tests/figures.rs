//! The report's figures against values computed here, independently and naively, from a
//! synthetic month of records (`fixture`), and every section heading in both renderings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::collections::{BTreeMap, BTreeSet};

use fixture::{DAY, HOUR, MINUTE, OCT, OUTAGE_HOUR};
use moat_audit::{AuditRecord, Body, Circuit, RecordKind};
use moat_report::report::Report;
use moat_report::Period;

struct Case {
    report: Report,
    now: Vec<AuditRecord>,
    before: Vec<AuditRecord>,
}

fn case() -> Case {
    let records = fixture::records();
    let report = moat_report::report(fixture::report_config(), fixture::period(), &records);
    let p = fixture::period();
    let q = p.previous();
    // The requests of a period (the fixture also holds incident and read records).
    let within = |p: Period| -> Vec<AuditRecord> {
        records
            .iter()
            .filter(|r| r.kind == RecordKind::Request)
            .filter(|r| r.ts_ms >= p.from_ms && r.ts_ms < p.to_ms)
            .cloned()
            .collect()
    };
    Case {
        now: within(p),
        before: within(q),
        report,
    }
}

fn has(r: &AuditRecord, stage: &str, outcome: &str) -> bool {
    r.decisions
        .iter()
        .any(|d| d.stage == stage && d.outcome == outcome)
}

fn spend(rs: &[AuditRecord], f: impl Fn(&AuditRecord) -> bool) -> i64 {
    rs.iter().filter(|r| f(r)).map(|r| r.cost_micros).sum()
}

fn unregistered(r: &AuditRecord) -> bool {
    r.key_id.is_some() && (r.workflow.is_none() || has(r, "policy", "unregistered"))
}

fn failed(r: &AuditRecord) -> bool {
    r.status >= 500 || r.decisions.iter().any(|d| d.stage == "upstream")
}

fn nearest_rank(mut v: Vec<u64>, p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    Some(v[rank.max(1) - 1])
}

#[test]
fn the_fixture_is_a_month_of_the_promised_size() {
    let c = case();
    assert!((10_000..=50_000).contains(&(c.now.len() + c.before.len())));
    assert_eq!(c.report.summary.requests.current, c.now.len() as u64);
    assert_eq!(c.report.summary.requests.previous, c.before.len() as u64);
    assert_eq!(
        c.report.summary.spend_micros.current,
        spend(&c.now, |_| true)
    );
    assert_eq!(
        c.report.summary.errors.current,
        c.now.iter().filter(|r| r.status >= 500).count() as u64
    );
    // Daily rows: one per day, summing to the period.
    assert_eq!(c.report.daily.len(), 31);
    for d in &c.report.daily {
        let day: Vec<_> = c
            .now
            .iter()
            .filter(|r| r.ts_ms >= d.day_ms && r.ts_ms < d.day_ms + DAY)
            .collect();
        assert_eq!(d.requests, day.len() as u64);
        assert_eq!(
            d.errors,
            day.iter().filter(|r| r.status >= 500).count() as u64
        );
    }
}

#[test]
fn inventory() {
    let c = case();
    let inv = &c.report.inventory;
    let names: Vec<&str> = inv.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["support-bot", "invoice-agent", "doc-summarizer"]);
    let invoice = &inv.workflows[1];
    assert_eq!(
        (
            invoice.owner.as_str(),
            invoice.criticality,
            invoice.sensitivity,
            invoice.writes
        ),
        ("finance-automation@example.com", "high", "restricted", true)
    );
    assert_eq!(invoice.models, ["claude-sonnet"]);
    for w in &inv.workflows {
        let n = c
            .now
            .iter()
            .filter(|r| r.workflow.as_deref() == Some(&w.name) && !unregistered(r))
            .count();
        assert_eq!(w.requests, n as u64, "{}", w.name);
    }
    let unreg: Vec<_> = c.now.iter().filter(|r| unregistered(r)).collect();
    let keys: BTreeSet<_> = unreg.iter().filter_map(|r| r.key_id.clone()).collect();
    assert_eq!(inv.unregistered_requests, unreg.len() as u64);
    assert_eq!(inv.unregistered_keys, keys.len() as u64);
    assert_eq!(keys.len(), 7);
    assert_eq!(
        inv.unregistered_spend_micros,
        unreg.iter().map(|r| r.cost_micros).sum::<i64>()
    );
    assert_eq!(
        inv.unauthenticated,
        c.now.iter().filter(|r| r.key_id.is_none()).count() as u64
    );
    assert!(inv.unauthenticated > 0);
}

#[test]
fn spend_by_workflow_and_account_against_budgets() {
    let c = case();
    let wf = |rs: &[AuditRecord], name: &str| {
        spend(rs, |r| {
            r.workflow.as_deref() == Some(name) && !unregistered(r)
        })
    };
    let budgets = [
        ("support-bot", 400),
        ("invoice-agent", 150),
        ("doc-summarizer", 0),
    ];
    for (name, monthly) in budgets {
        let row = c
            .report
            .spend
            .by_workflow
            .iter()
            .find(|r| r.name == name)
            .unwrap();
        let (now, before) = (wf(&c.now, name), wf(&c.before, name));
        assert_eq!(row.spend_micros.current, now, "{name}");
        assert_eq!(row.spend_micros.previous, before, "{name}");
        let pct = (now - before) as f64 / before as f64 * 100.0;
        assert!((row.change_percent.unwrap() - pct).abs() < 1e-9);
        assert_eq!(row.notable, pct.abs() >= 25.0, "{name}");
        // October is a calendar month: the allowance is the monthly budget itself.
        let budget = (monthly > 0).then_some(monthly * 1_000_000);
        assert_eq!(row.budget_micros, budget, "{name}");
    }
    let invoice = c
        .report
        .spend
        .by_workflow
        .iter()
        .find(|r| r.name == "invoice-agent")
        .unwrap();
    assert!(invoice.notable && invoice.change_percent.unwrap() > 25.0);
    let support = c
        .report
        .spend
        .by_workflow
        .iter()
        .find(|r| r.name == "support-bot")
        .unwrap();
    assert!(!support.notable);
    let unreg = c
        .report
        .spend
        .by_workflow
        .iter()
        .find(|r| r.name == "(unregistered)")
        .unwrap();
    assert_eq!(unreg.spend_micros.current, spend(&c.now, unregistered));
    // Rows are dearest first.
    let v: Vec<i64> = c
        .report
        .spend
        .by_workflow
        .iter()
        .map(|r| r.spend_micros.current)
        .collect();
    assert!(v.windows(2).all(|w| w[0] >= w[1]));

    let accounts: BTreeSet<String> = c.now.iter().filter_map(|r| r.account.clone()).collect();
    for a in &accounts {
        let row = c
            .report
            .spend
            .by_account
            .iter()
            .find(|r| &r.name == a)
            .unwrap();
        let now = spend(&c.now, |r| r.account.as_ref() == Some(a));
        assert_eq!(row.spend_micros.current, now, "{a}");
        assert_eq!(
            row.spend_micros.previous,
            spend(&c.before, |r| r.account.as_ref() == Some(a))
        );
        let monthly = match a.as_str() {
            "acme" => 180,
            "globex" => 1000,
            _ => 100, // governance.account_budget
        };
        assert_eq!(row.budget_micros, Some(monthly * 1_000_000), "{a}");
        let pct = now as f64 / (monthly * 1_000_000) as f64 * 100.0;
        assert!((row.budget_percent.unwrap() - pct).abs() < 1e-9);
    }
}

#[test]
fn detection_by_account() {
    let c = case();
    let mut want: BTreeMap<(String, String), (u64, i64, i64)> = BTreeMap::new();
    for r in &c.now {
        for d in &r.decisions {
            if d.stage == "detection" && d.outcome != "deny" {
                let e = want
                    .entry((r.account.clone().unwrap(), d.outcome.clone()))
                    .or_insert((0, i64::MAX, i64::MIN));
                e.0 += 1;
                e.1 = e.1.min(r.ts_ms);
                e.2 = e.2.max(r.ts_ms);
            }
        }
    }
    let got: BTreeMap<(String, String), (u64, i64, i64)> = c
        .report
        .detection
        .iter()
        .map(|d| {
            (
                (d.account.clone(), d.outcome.clone()),
                (d.count, d.first_ms, d.last_ms),
            )
        })
        .collect();
    assert_eq!(got, want);
    let outcomes: BTreeSet<&str> = got.keys().map(|(_, o)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        BTreeSet::from(["block", "throttle", "would_degrade"])
    );
    let throttle = &got[&("umbrella".to_string(), "throttle".to_string())];
    assert!(throttle.1 >= OCT + 10 * DAY && throttle.2 < OCT + 13 * DAY);
}

#[test]
fn incidents() {
    let c = case();
    let inc = &c.report.incidents;
    for p in &inc.providers {
        let reached: Vec<_> = c
            .now
            .iter()
            .filter(|r| r.route.as_ref().is_some_and(|x| x.provider == p.provider))
            .collect();
        assert_eq!(p.requests, reached.len() as u64, "{}", p.provider);
        assert_eq!(
            p.failures,
            reached.iter().filter(|r| failed(r)).count() as u64
        );
    }
    assert_eq!(inc.providers.len(), 2);
    // Outage hours, recomputed: > half failed, at least 5 failures.
    let mut hours: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for r in c.now.iter().filter(|r| r.route.is_some()) {
        let e = hours
            .entry((
                r.route.as_ref().unwrap().provider.clone(),
                r.ts_ms / HOUR * HOUR,
            ))
            .or_default();
        e.0 += 1;
        e.1 += u64::from(failed(r));
    }
    let outages: Vec<(String, i64)> = hours
        .iter()
        .filter(|(_, (n, f))| f * 2 > *n && *f >= 5)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(outages, vec![("openai".to_string(), OUTAGE_HOUR)]);
    let got: Vec<(String, i64)> = inc
        .outages
        .iter()
        .map(|h| (h.provider.clone(), h.hour_ms))
        .collect();
    assert_eq!(got, outages);
    assert_eq!(inc.worst_hours[0].hour_ms, OUTAGE_HOUR);
    assert_eq!(
        inc.hours_with_failures,
        hours.values().filter(|(_, f)| *f > 0).count() as u64
    );
    // Fallbacks.
    let fb: Vec<_> = c
        .now
        .iter()
        .filter(|r| r.route.as_ref().is_some_and(|x| x.attempts > 1))
        .collect();
    assert_eq!(inc.fallbacks.count, fb.len() as u64);
    assert_eq!(
        inc.fallbacks.succeeded,
        fb.iter().filter(|r| r.status < 400).count() as u64
    );
    assert!(inc.fallbacks.count > 100);
    // Objectives: support-bot 2 s and 0.05; invoice-agent 10 s; doc-summarizer 0.02.
    let o = |name: &str| inc.objectives.iter().find(|o| o.workflow == name).unwrap();
    let of = |name: &'static str| {
        c.now
            .iter()
            .filter(move |r| r.workflow.as_deref() == Some(name))
    };
    let support = o("support-bot");
    assert_eq!(support.max_latency_ms, Some(2_000));
    assert_eq!(support.max_cost_micros, Some(50_000));
    assert_eq!(
        support.latency_violations,
        of("support-bot")
            .filter(|r| r.timings.total_ms > 2_000)
            .count() as u64
    );
    assert_eq!(
        support.cost_violations,
        of("support-bot").filter(|r| r.cost_micros > 50_000).count() as u64
    );
    assert!(support.latency_violations > 0 && support.cost_violations > 0);
    assert_eq!(
        support.worst_ms,
        of("support-bot").map(|r| r.timings.total_ms).max().unwrap()
    );
    assert_eq!(o("invoice-agent").latency_violations, 0);
    assert_eq!(
        o("doc-summarizer").cost_violations,
        of("doc-summarizer")
            .filter(|r| r.cost_micros > 20_000)
            .count() as u64
    );
}

#[test]
fn circuit_breakers() {
    let c = case();
    let got = &c.report.incidents.breakers;
    let names: Vec<(&str, &str)> = got
        .iter()
        .map(|b| (b.provider.as_str(), b.model.as_str()))
        .collect();
    // Most openings first, then the longest open.
    assert_eq!(
        names,
        vec![
            ("openai", "gpt-4o"),
            ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-sonnet")
        ]
    );
    // Openings recounted from the fixture's transitions, per period.
    let p = fixture::period();
    let openings = |period: Period, model: &str| {
        fixture::breaker_transitions()
            .iter()
            .filter(|t| period.contains(t.0) && t.2 == model)
            .filter(|t| (t.3, t.4) == (Circuit::Closed, Circuit::Open))
            .count() as u64
    };
    for b in got {
        assert_eq!(b.openings.current, openings(p, &b.model), "{}", b.model);
        assert_eq!(
            b.openings.previous,
            openings(p.previous(), &b.model),
            "{}",
            b.model
        );
    }
    let (gpt, mini, sonnet) = (&got[0], &got[1], &got[2]);
    assert_eq!(
        (gpt.openings.current, gpt.openings.previous),
        (1, 1),
        "gpt-4o opened once in each month"
    );
    // Open from 13:05 to 13:40, through a failed probe at 13:06.
    assert_eq!(
        (gpt.reopenings, gpt.recoveries, gpt.open_ms),
        (1, 1, (35 * MINUTE) as u64)
    );
    assert_eq!(
        (gpt.first_open_ms, gpt.last_open_ms),
        (
            Some(OUTAGE_HOUR + 5 * MINUTE),
            Some(OUTAGE_HOUR + 6 * MINUTE)
        )
    );
    assert!(!gpt.open_at_end);
    // Opened 10 minutes before the end, still open.
    assert_eq!(
        (mini.openings.current, mini.open_ms, mini.open_at_end),
        (1, (10 * MINUTE) as u64, true)
    );
    // Opened in September, closed at 00:30 on October 1st: 30 minutes of October.
    assert_eq!(
        (
            sonnet.openings.current,
            sonnet.openings.previous,
            sonnet.recoveries,
            sonnet.open_ms,
            sonnet.first_open_ms
        ),
        (0, 1, 1, (30 * MINUTE) as u64, None)
    );
    assert!(!sonnet.open_at_end);
}

#[test]
fn near_misses() {
    let c = case();
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in &c.now {
        let mut kinds = BTreeSet::new();
        for d in &r.decisions {
            let counts = d.stage == "filter"
                || (["policy", "limits", "budget"].contains(&d.stage.as_str())
                    && d.outcome == "deny")
                || (d.stage == "detection" && d.outcome == "block");
            if counts {
                kinds.insert(format!("{}:{}", d.stage, d.outcome));
            }
        }
        for k in kinds {
            let who = r
                .account
                .clone()
                .unwrap_or_else(|| "(unauthenticated)".into());
            *want.entry((k, who)).or_default() += 1;
        }
    }
    let got: BTreeMap<(String, String), u64> = c
        .report
        .near_misses
        .rows
        .iter()
        .map(|m| ((m.kind.clone(), m.principal.clone()), m.count))
        .collect();
    assert_eq!(got, want);
    let kinds: BTreeSet<&str> = c
        .report
        .near_misses
        .by_kind
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "budget:deny",
            "detection:block",
            "filter:deny",
            "filter:flag",
            "limits:deny",
            "policy:deny"
        ])
    );
    for (kind, n) in &c.report.near_misses.by_kind {
        assert_eq!(
            *n,
            want.iter()
                .filter(|((k, _), _)| k == kind)
                .map(|(_, n)| n)
                .sum::<u64>()
        );
    }
    // Budgets at 80 % or more: invoice-agent is over its 150, acme near its 180.
    let alerts: BTreeSet<(&str, &str)> = c
        .report
        .near_misses
        .budgets
        .iter()
        .map(|b| (b.scope, b.name.as_str()))
        .collect();
    let mut expect = BTreeSet::new();
    for (scope, name, budget) in [
        ("workflow", "support-bot", 400),
        ("workflow", "invoice-agent", 150),
        ("account", "acme", 180),
        ("account", "globex", 1000),
        ("account", "initech", 100),
        ("account", "umbrella", 100),
    ] {
        let spent = if scope == "workflow" {
            spend(&c.now, |r| r.workflow.as_deref() == Some(name))
        } else {
            spend(&c.now, |r| r.account.as_deref() == Some(name))
        };
        if spent * 100 >= budget * 1_000_000 * 80 {
            expect.insert((scope, name));
        }
    }
    assert_eq!(alerts, expect);
    assert!(
        alerts.contains(&("workflow", "invoice-agent")) && alerts.contains(&("account", "acme"))
    );
}

#[test]
fn model_drift() {
    let c = case();
    let refusal = |r: &AuditRecord| match &r.response_body {
        Body::Full(raw) => raw.get().contains("\"finish_reason\":\"content_filter\""),
        _ => {
            (r.status == 400 || r.status == 403)
                && r.decisions.iter().any(|d| d.stage == "upstream")
        }
    };
    let figures = |rs: &[AuditRecord], model: &str| {
        let of: Vec<_> = rs
            .iter()
            .filter(|r| r.route.as_ref().is_some_and(|x| x.response_model == model))
            .collect();
        let lat: Vec<u64> = of
            .iter()
            .filter(|r| r.status < 400)
            .map(|r| r.timings.total_ms)
            .collect();
        let n = of.len() as f64;
        let usage: Vec<u64> = of
            .iter()
            .filter_map(|r| r.usage.map(|u| u.output_tokens))
            .collect();
        (
            of.len() as u64,
            nearest_rank(lat.clone(), 50.0),
            nearest_rank(lat, 95.0),
            of.iter().filter(|r| r.status >= 500).count() as f64 / n,
            of.iter().filter(|r| refusal(r)).count() as f64 / n,
            usage.iter().sum::<u64>() as f64 / usage.len() as f64,
        )
    };
    assert_eq!(c.report.models.len(), 3);
    for m in &c.report.models {
        for (rs, f) in [(&c.now, Some(m.current)), (&c.before, m.previous)] {
            let f = f.unwrap();
            let (n, p50, p95, err, refu, out) = figures(rs, &m.model);
            assert_eq!(f.requests, n, "{}", m.model);
            assert_eq!((f.p50_ms, f.p95_ms), (p50, p95), "{}", m.model);
            assert!((f.error_rate - err).abs() < 1e-12);
            assert!((f.refusal_rate - refu).abs() < 1e-12);
            assert!((f.mean_output_tokens.unwrap() - out).abs() < 1e-9);
        }
    }
    let claude = c
        .report
        .models
        .iter()
        .find(|m| m.model == "claude-sonnet")
        .unwrap();
    assert!(claude.current.p50_ms.unwrap() > 2 * claude.previous.unwrap().p50_ms.unwrap() * 9 / 10);
    assert!(
        claude
            .changes
            .iter()
            .any(|c| c.starts_with("p50 latency +")),
        "{:?}",
        claude.changes
    );
    assert!(claude.current.refusal_rate > 0.0);
    let gpt = c
        .report
        .models
        .iter()
        .find(|m| m.model == "gpt-4o")
        .unwrap();
    assert!(gpt.current.refusal_rate > 0.0);
    assert!(
        !gpt.changes.iter().any(|c| c.contains("latency")),
        "{:?}",
        gpt.changes
    );
}

#[test]
fn both_renderings_carry_every_section_and_key_figures() {
    let c = case();
    let md = moat_report::markdown(&c.report);
    let html = moat_report::html(&c.report);
    for heading in [
        "1. Inventory",
        "2. Spend",
        "3. Anomalies and detection",
        "4. Incidents",
        "5. Near misses",
        "6. Model drift",
    ] {
        assert!(md.contains(&format!("## {heading}")), "md lacks {heading}");
        assert!(
            html.contains(&format!("<h2>{heading}</h2>")),
            "html lacks {heading}"
        );
    }
    assert!(md.contains("# Governance review: 2026-10-01 – 2026-10-31"));
    assert!(
        md.contains("| 2026-10-14 13:00 | openai |"),
        "outage hour in md"
    );
    assert!(
        md.contains(
            "| openai / gpt-4o | 1 | 1 | 1 | 1 | 35 min 00 s | 2026-10-14 13:05 | 2026-10-14 13:06 |"
        ),
        "{md}"
    );
    assert!(md.contains("| openai / gpt-4o-mini | 1 | 0 | 0 | 0 | 10 min 00 s (still open) |"));
    assert!(md.contains("**1 circuit breaker(s) still open at the period's end.**"));
    assert!(html.contains("<strong>1</strong> circuit breaker(s) still open"));
    let requests = c.report.summary.requests.current;
    assert!(
        md.contains(&group(requests)),
        "md names {requests} requests"
    );
    // Self-contained: no scripts, no external fetches.
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        !html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http")
    );
    assert_eq!(html.matches("<svg").count(), 3);
}

#[test]
fn empty_periods_say_none() {
    let report = moat_report::report(fixture::report_config(), fixture::period(), &[]);
    let md = moat_report::markdown(&report);
    assert!(md.contains("None."));
    assert_eq!(report.summary.requests.current, 0);
    assert!(report.models.is_empty() && report.detection.is_empty());
    let html = moat_report::html(&report);
    assert!(html.contains("<h2>6. Model drift</h2>"));
}

fn group(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|c| c.iter().collect())
        .collect();
    groups.join(",")
}
