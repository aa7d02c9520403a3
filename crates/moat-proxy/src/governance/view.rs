//! The inventory and spend as the admin API and the CLI show them: JSON rows, amounts in
//! micro-units and in dollars.

use super::Governance;
use moat_config::{Budget, Limits, WorkflowConfig};
use moat_core::Money;
use moat_policy::budget::SpendRow;
use serde_json::{json, Value};

impl Governance {
    /// Every registered workflow with its labels, limits, budget, objectives and the spend of
    /// its current windows, in config order.
    pub fn inventory(&self) -> Vec<Value> {
        let spend = self.ledger.spent();
        self.inventory
            .all()
            .iter()
            .map(|(w, source)| {
                let mut row = workflow_row(w, &spend);
                row["source"] = json!(source.as_str());
                row
            })
            .collect()
    }

    /// Settled spend per key, workflow and account in the current windows.
    pub fn spend(&self) -> Vec<Value> {
        let mut rows = self.ledger.spent();
        rows.sort_by(|a, b| {
            (a.scope, &a.id, a.period as u8, a.window_start_ms).cmp(&(
                b.scope,
                &b.id,
                b.period as u8,
                b.window_start_ms,
            ))
        });
        rows.iter().map(spend_row).collect()
    }

    /// The ledger's rows, for persistence.
    pub fn spend_rows(&self) -> Vec<SpendRow> {
        self.ledger.spent()
    }

    /// Loads settled spend saved by an earlier run (rows of windows that have ended are kept
    /// out by the ledger's own sweep).
    pub fn restore_spend(&self, rows: impl IntoIterator<Item = SpendRow>) {
        self.ledger.restore(rows);
    }
}

fn workflow_row(w: &WorkflowConfig, spend: &[SpendRow]) -> Value {
    let spent: Vec<Value> = spend
        .iter()
        .filter(|r| r.scope == moat_policy::limits::Scope::Workflow && *r.id == *w.name)
        .map(spend_row)
        .collect();
    json!({
        "object": "workflow",
        "name": w.name,
        "owner": w.owner,
        "description": w.description,
        "criticality": w.criticality.as_str(),
        "sensitivity": w.sensitivity.as_str(),
        "models": w.models,
        "writes": w.writes,
        "limits": limits(&w.limits),
        "budget": budget(&w.budget),
        "objectives": {
            "max_latency_ms": w.objectives.max_latency.map(|d| d.as_millis() as u64),
            "max_cost_per_request": w.objectives.max_cost_per_request.map(amount),
            "route_around": w.objectives.route_around,
        },
        "spend": spent,
    })
}

fn spend_row(r: &SpendRow) -> Value {
    json!({
        "scope": r.scope.as_str(),
        "id": &*r.id,
        "period": r.period.as_str(),
        "window_start": rfc3339(r.window_start_ms),
        "spent": amount(r.spent),
    })
}

fn limits(l: &Limits) -> Value {
    json!({
        "requests_per_minute": l.requests_per_minute,
        "tokens_per_minute": l.tokens_per_minute,
        "concurrency": l.concurrency,
    })
}

fn budget(b: &Budget) -> Value {
    json!({
        "daily": b.daily.map(amount),
        "weekly": b.weekly.map(amount),
        "monthly": b.monthly.map(amount),
        "soft_percent": b.soft_percent,
    })
}

/// An amount as exact micro-units and as a dollar string.
pub fn amount(m: Money) -> Value {
    json!({ "micros": m.0, "usd": dollars(m) })
}

/// Micro-units as a decimal string with at least two decimals, exactly: `4.99`, `0.000125`.
pub fn dollars(m: Money) -> String {
    let sign = if m.0 < 0 { "-" } else { "" };
    let v = m.0.unsigned_abs();
    let frac = format!("{:06}", v % 1_000_000);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.len() < 2 {
        format!("{frac:0<2}")
    } else {
        frac.to_string()
    };
    format!("{sign}{}.{frac}", v / 1_000_000)
}

fn rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::dollars;
    use moat_core::Money;

    #[test]
    fn dollars_are_exact() {
        assert_eq!(dollars(Money(4_990_000)), "4.99");
        assert_eq!(dollars(Money(125)), "0.000125");
        assert_eq!(dollars(Money(0)), "0.00");
        assert_eq!(dollars(Money(25_000_000)), "25.00");
        assert_eq!(dollars(Money(-1_500_000)), "-1.50");
    }
}
