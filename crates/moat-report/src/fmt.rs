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

/// What the audit log cannot tell yet, said in the incidents section.
pub const BREAKER_NOTE: &str = "Circuit-breaker openings are not in the audit log yet, so this \
report cannot list them; see the gateway's `moat_breaker_*` metrics and logs.";

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
    }
}
