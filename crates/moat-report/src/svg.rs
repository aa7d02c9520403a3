//! Inline SVG charts for the HTML report: spend by workflow against the previous period and the
//! budget, requests and errors per day, and latency percentiles per model. Each returns one
//! `<svg>` element sized by its `viewBox`, so it scales with the page.

use std::fmt::Write;

use crate::fmt::{int, money};
use crate::period::date_label;
use crate::report::{DayRow, ModelRow, SpendRow};

/// Colours, shared with the page's CSS.
const NOW: &str = "#2563eb";
const BEFORE: &str = "#cbd5e1";
const BUDGET: &str = "#0f172a";
const ERROR: &str = "#dc2626";
const P95: &str = "#93c5fd";
const MUTED: &str = "#64748b";
const GRID: &str = "#e2e8f0";

/// Horizontal bars: each row's spend this period (blue) over the previous period's (grey), with
/// a tick at its budget allowance.
pub fn spend_bars(rows: &[SpendRow]) -> String {
    let rows: Vec<&SpendRow> = rows
        .iter()
        .filter(|r| r.spend_micros.current > 0 || r.spend_micros.previous > 0)
        .take(12)
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let max = rows
        .iter()
        .flat_map(|r| {
            [
                r.spend_micros.current,
                r.spend_micros.previous,
                r.budget_micros.unwrap_or(0),
            ]
        })
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (left, width, row_h) = (170.0, 560.0, 38.0);
    let height = 34.0 + row_h * rows.len() as f64;
    let x = |v: i64| left + width * (v as f64 / max);
    let mut s = open(
        860.0,
        height,
        "Spend by workflow: this period, previous period and budget",
    );
    legend(
        &mut s,
        left,
        14.0,
        &[
            (NOW, "this period"),
            (BEFORE, "previous"),
            (BUDGET, "budget"),
        ],
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" class="lbl">{}</text>"#,
            left - 10.0,
            y + 15.0,
            esc(&clip(&r.name, 22))
        );
        bar(
            &mut s,
            left,
            y + 3.0,
            x(r.spend_micros.current) - left,
            14.0,
            NOW,
        );
        bar(
            &mut s,
            left,
            y + 19.0,
            x(r.spend_micros.previous) - left,
            7.0,
            BEFORE,
        );
        if let Some(b) = r.budget_micros {
            let bx = x(b);
            let _ = write!(
                s,
                r#"<line x1="{bx:.1}" x2="{bx:.1}" y1="{:.1}" y2="{:.1}" stroke="{BUDGET}" stroke-width="2"/>"#,
                y,
                y + 29.0
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" class="val">{}</text>"#,
            x(r.spend_micros.current) + 8.0,
            y + 15.0,
            money(r.spend_micros.current)
        );
    }
    s.push_str("</svg>");
    s
}

/// Two aligned bar charts over the period's days: requests (top) and errors (bottom, red).
pub fn daily(days: &[DayRow]) -> String {
    if days.is_empty() {
        return String::new();
    }
    let (left, width, top_h, bottom_h) = (60.0, 780.0, 170.0, 70.0);
    let n = days.len() as f64;
    let step = width / n;
    let bar_w = (step * 0.72).max(1.0);
    let max_req = nice(days.iter().map(|d| d.requests).max().unwrap_or(0));
    let max_err = nice(days.iter().map(|d| d.errors).max().unwrap_or(0));
    let top_y = 24.0;
    let bottom_y = top_y + top_h + 34.0;
    let height = bottom_y + bottom_h + 30.0;
    let mut s = open(860.0, height, "Requests and errors per day");
    axis(&mut s, left, width, top_y, top_h, max_req, "requests");
    axis(
        &mut s,
        left,
        width,
        bottom_y,
        bottom_h,
        max_err,
        "errors (5xx)",
    );
    for (i, d) in days.iter().enumerate() {
        let x = left + step * i as f64 + (step - bar_w) / 2.0;
        let h = top_h * d.requests as f64 / max_req as f64;
        bar(&mut s, x, top_y + top_h - h, bar_w, h, NOW);
        let h = bottom_h * d.errors as f64 / max_err as f64;
        bar(&mut s, x, bottom_y + bottom_h - h, bar_w, h, ERROR);
        let every = (days.len() / 8).max(1);
        if i % every == 0 {
            let label = date_label(d.day_ms);
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
                x + bar_w / 2.0,
                bottom_y + bottom_h + 18.0,
                esc(label.get(5..).unwrap_or(&label))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Per model, two rows (this period, previous): a bar to p95 (light) with a bar to p50 (dark)
/// over it.
pub fn latency(models: &[ModelRow]) -> String {
    if models.is_empty() {
        return String::new();
    }
    let max = nice(
        models
            .iter()
            .flat_map(|m| [m.current.p95_ms, m.previous.and_then(|p| p.p95_ms)])
            .flatten()
            .max()
            .unwrap_or(0),
    );
    let (left, width, group_h) = (190.0, 560.0, 52.0);
    let height = 40.0 + group_h * models.len() as f64 + 20.0;
    let mut s = open(860.0, height, "Latency p50 and p95 per model");
    legend(
        &mut s,
        left,
        14.0,
        &[
            (NOW, "p50 this period"),
            (P95, "p95 this period"),
            (MUTED, "p50 previous"),
            (BEFORE, "p95 previous"),
        ],
    );
    let x = |v: u64| width * v as f64 / max as f64;
    let bottom = 30.0 + group_h * models.len() as f64;
    for k in 0..=4u32 {
        let gx = left + width * f64::from(k) / 4.0;
        let _ = write!(
            s,
            r#"<line x1="{gx:.1}" x2="{gx:.1}" y1="28" y2="{bottom:.1}" stroke="{GRID}"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" class="tick">{} ms</text>"#,
            bottom + 16.0,
            int(max * u64::from(k) / 4)
        );
    }
    for (i, m) in models.iter().enumerate() {
        let y = 32.0 + group_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" class="lbl">{}</text>"#,
            left - 10.0,
            y + 20.0,
            esc(&clip(&m.model, 24))
        );
        let rows = [
            (m.current.p50_ms, m.current.p95_ms, NOW, P95, 0.0),
            (
                m.previous.and_then(|p| p.p50_ms),
                m.previous.and_then(|p| p.p95_ms),
                MUTED,
                BEFORE,
                20.0,
            ),
        ];
        for (p50, p95, dark, light, dy) in rows {
            if let Some(v) = p95 {
                bar(&mut s, left, y + dy, x(v), 16.0, light);
            }
            if let Some(v) = p50 {
                bar(&mut s, left, y + dy + 4.0, x(v), 8.0, dark);
            }
            if let (Some(a), Some(b)) = (p50, p95) {
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" class="val">{} / {} ms</text>"#,
                    left + x(b) + 8.0,
                    y + dy + 12.5,
                    int(a),
                    int(b)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// `&`, `<`, `>` and quotes escaped for HTML text and attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn open(width: f64, height: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    )
}

fn bar(s: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str) {
    if w > 0.0 && h > 0.0 {
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="2" fill="{fill}"/>"#
        );
    }
}

fn legend(s: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    let mut at = x;
    for (colour, label) in items {
        let _ = write!(
            s,
            r#"<rect x="{at:.1}" y="{:.1}" width="12" height="10" rx="2" fill="{colour}"/><text x="{:.1}" y="{y:.1}" class="tick">{}</text>"#,
            y - 9.0,
            at + 17.0,
            esc(label)
        );
        at += 30.0 + 7.0 * label.len() as f64;
    }
}

/// Gridlines and a labelled y axis from 0 to `max`.
fn axis(s: &mut String, left: f64, width: f64, top: f64, height: f64, max: u64, label: &str) {
    for k in 0..=2u64 {
        let y = top + height - height * k as f64 / 2.0;
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            left + width,
            left - 8.0,
            y + 4.0,
            int(max * k / 2)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{left}" y="{:.1}" class="tick">{}</text>"#,
        top - 8.0,
        esc(label)
    );
}

/// A round axis maximum at or above `v`: 1, 2 or 5 times a power of ten (at least 1).
fn nice(v: u64) -> u64 {
    let mut scale = 1u64;
    while let Some(next) = scale.checked_mul(10) {
        for m in [1, 2, 5] {
            if m * scale >= v {
                return (m * scale).max(1);
            }
        }
        scale = next;
    }
    v.max(1)
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima_and_escaping() {
        assert_eq!(nice(0), 1);
        assert_eq!(nice(7), 10);
        assert_eq!(nice(1_234), 2_000);
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
