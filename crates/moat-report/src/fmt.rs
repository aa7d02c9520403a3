//! Number formatting shared by both renderers: thousands separators, money, percentages.

/// `12,345`.
pub fn int(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|c| c.iter().collect())
        .collect();
    groups.join(",")
}

/// Micro-units as currency units with two decimals: `1,234.57`.
pub fn money(micros: i64) -> String {
    let cents = (micros as f64 / 10_000.0).round() as i64;
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", int(cents / 100), cents % 100)
}

/// A signed percentage change, `+12.3 %`, or `new` when there was nothing before.
pub fn change(percent: Option<f64>, now_nonzero: bool) -> String {
    match percent {
        Some(p) => format!("{p:+.1} %"),
        None if now_nonzero => "new".to_string(),
        None => "–".to_string(),
    }
}

/// A percentage, `81.2 %`.
pub fn percent(p: f64) -> String {
    format!("{p:.1} %")
}

/// A rate (0..=1) as a percentage with two decimals, `1.25 %`.
pub fn rate(r: f64) -> String {
    format!("{:.2} %", r * 100.0)
}

/// Milliseconds, `1,234 ms`, or `–`.
pub fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{} ms", int(v)))
}

/// Rows of a long table shown before "and N more".
pub const MAX_ROWS: usize = 30;

/// The section headings, in order, shared by both renderers.
pub const SECTIONS: [&str; 6] = [
    "1. Inventory",
    "2. Spend",
    "3. Anomalies and detection",
    "4. Incidents",
    "5. Near misses",
    "6. Model drift",
];

/// How the circuit-breaker figures are counted, as printed.
pub const BREAKERS: &str = "Each provider's model has a circuit breaker. An opening is the \
breaker going from closed to open after consecutive failures; while open, the gateway skips the \
target and falls back. When the open time is over one probe is let through: a failed probe \
reopens the breaker, a successful one closes it (a recovery). Time open runs from an opening to \
the recovery that followed: from the period's start for a breaker already open then, to the \
period's end for one still open. Read from the audit log's incident records, one per \
transition.";

/// The circuit-breaker table's columns: heading and whether it holds numbers.
pub const BREAKER_COLUMNS: [(&str, bool); 8] = [
    ("Target", false),
    ("Openings", true),
    ("Previous", true),
    ("Probes failed", true),
    ("Recoveries", true),
    ("Time open", true),
    ("First opened", false),
    ("Last opened", false),
];

/// The time-open column of [`BREAKER_COLUMNS`].
pub const BREAKER_TIME_OPEN: usize = 5;

/// One breaker's cells, as plain text, in [`BREAKER_COLUMNS`] order.
pub fn breaker_cells(b: &crate::report::BreakerRow) -> Vec<String> {
    let when = |t: Option<i64>| t.map_or_else(|| "–".to_string(), crate::period::minute_label);
    let open = if b.open_at_end {
        format!("{} (still open)", span(b.open_ms))
    } else {
        span(b.open_ms)
    };
    vec![
        format!("{} / {}", b.provider, b.model),
        int(b.openings.current),
        int(b.openings.previous),
        int(b.reopenings),
        int(b.recoveries),
        open,
        when(b.first_open_ms),
        when(b.last_open_ms),
    ]
}

/// A duration, coarsest units first: `45 s`, `12 min 05 s`, `3 h 07 min`, `2 d 4 h`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{} d {h} h", int(d))
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {sec:02} s")
    } else {
        format!("{sec} s")
    }
}

/// How model drift is measured, as printed.
pub const DRIFT: &str = "Latency is the total time (arrival to last byte) of the requests a \
model answered successfully (status < 400); p50 and p95 are nearest-rank percentiles \
(the smallest value with at least 50 % / 95 % of the values at or below it). Error rate: 5xx \
answers per request routed to the model. Mean output tokens: over requests with settled usage. \
Changes are called out at ±25 % (latency, output tokens) or ±2 percentage points (error and \
refusal rates).";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(money(1_234_567_890), "1,234.57");
        assert_eq!(money(-5_000), "-0.01");
        assert_eq!(change(Some(25.04), true), "+25.0 %");
        assert_eq!(change(None, true), "new");
        assert_eq!(span(999), "0 s");
        assert_eq!(span(45_000), "45 s");
        assert_eq!(span(12 * 60_000 + 5_000), "12 min 05 s");
        assert_eq!(span(3 * 3_600_000 + 7 * 60_000 + 59_000), "3 h 07 min");
        assert_eq!(span(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }
}
