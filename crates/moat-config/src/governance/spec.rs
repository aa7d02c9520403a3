//! A workflow as JSON: what the admin API takes and returns for workflows registered at run time,
//! and what the store keeps of them. Read with the same rules as a `[[workflows]]` table (names,
//! labels, positive limits, amounts exact to a micro-unit), reporting every problem at once.

use moat_core::Money;
use serde::{Deserialize, Serialize};

use crate::governance::micros;
use crate::governance::types::{
    Budget, Criticality, Limits, Objectives, Sensitivity, WorkflowConfig,
};

/// A workflow as JSON. Amounts are decimal strings in currency units (`"25.00"`), durations
/// strings such as `"20s"`, labels their config spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// Unique, non-empty name.
    pub name: String,
    /// Who answers for it.
    pub owner: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `low`, `medium` or `high`.
    pub criticality: String,
    /// `public`, `internal`, `confidential` or `restricted`.
    pub sensitivity: String,
    /// Models it may call; empty for any.
    #[serde(default)]
    pub models: Vec<String>,
    /// Whether it acts on the world through tools.
    #[serde(default)]
    pub writes: bool,
    /// Rate limits.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Budgets.
    #[serde(default)]
    pub budget: BudgetSpec,
    /// Latency and cost objectives.
    #[serde(default)]
    pub objectives: ObjectivesSpec,
}

/// Rate limits as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// Budgets as JSON, amounts as decimal strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Per calendar day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<String>,
    /// Per ISO week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<String>,
    /// Per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<String>,
    /// Alert threshold, percent of each budget (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_percent: Option<u8>,
}

/// Objectives as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectivesSpec {
    /// Longest acceptable request, e.g. `"20s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<String>,
    /// Highest acceptable cost of one request, e.g. `"0.25"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_per_request: Option<String>,
    /// Whether violations steer later requests away.
    #[serde(default)]
    pub route_around: bool,
}

impl WorkflowSpec {
    /// The validated workflow, or every problem found, each naming its field.
    pub fn to_config(&self) -> Result<WorkflowConfig, Vec<String>> {
        let mut errors = Vec::new();
        let mut w = WorkflowConfig::new(self.name.trim(), self.owner.trim());
        if let Err(why) = crate::governance::check_workflow_name(&w.name) {
            errors.push(format!("name: {why}"));
        }
        if w.owner.is_empty() {
            errors.push("owner: must not be empty".to_string());
        }
        w.description = self.description.clone().filter(|d| !d.trim().is_empty());
        match Criticality::parse(self.criticality.trim()) {
            Some(c) => w.criticality = c,
            None => errors.push(format!(
                "criticality: unknown criticality \"{}\": expected \"low\", \"medium\" or \"high\"",
                self.criticality
            )),
        }
        match Sensitivity::parse(self.sensitivity.trim()) {
            Some(s) => w.sensitivity = s,
            None => errors.push(format!(
                "sensitivity: unknown sensitivity \"{}\": expected \"public\", \"internal\", \"confidential\" or \"restricted\"",
                self.sensitivity
            )),
        }
        for (i, m) in self.models.iter().enumerate() {
            if m.trim().is_empty() {
                errors.push(format!("models[{i}]: must not be empty"));
            } else {
                w.models.push(m.trim().to_string());
            }
        }
        w.writes = self.writes;
        w.limits = Limits {
            requests_per_minute: positive(
                self.limits.requests_per_minute,
                "limits.requests_per_minute",
                &mut errors,
            ),
            tokens_per_minute: positive(
                self.limits.tokens_per_minute,
                "limits.tokens_per_minute",
                &mut errors,
            ),
            concurrency: positive(
                self.limits.concurrency.map(u64::from),
                "limits.concurrency",
                &mut errors,
            )
            .map(|n| n as u32),
        };
        let amount = |v: &Option<String>, field: &str, errors: &mut Vec<String>| -> Option<Money> {
            let text = v.as_deref()?;
            let clean = text.trim().trim_start_matches('$').replace('_', "");
            match micros(&clean) {
                Ok(0) => {
                    errors.push(format!(
                        "{field}: must be greater than 0 (leave it out for none)"
                    ));
                    None
                }
                Ok(m) => Some(Money(m)),
                Err(why) => {
                    errors.push(format!("{field}: invalid amount \"{text}\": {why}"));
                    None
                }
            }
        };
        w.budget = Budget {
            daily: amount(&self.budget.daily, "budget.daily", &mut errors),
            weekly: amount(&self.budget.weekly, "budget.weekly", &mut errors),
            monthly: amount(&self.budget.monthly, "budget.monthly", &mut errors),
            soft_percent: match self.budget.soft_percent {
                None => Budget::DEFAULT_SOFT_PERCENT,
                Some(p @ 1..=100) => p,
                Some(_) => {
                    errors.push("budget.soft_percent: must be between 1 and 100".to_string());
                    Budget::DEFAULT_SOFT_PERCENT
                }
            },
        };
        let max_latency = match self.objectives.max_latency.as_deref() {
            None => None,
            Some(text) => match humantime::parse_duration(text.trim()) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => {
                    errors.push("objectives.max_latency: must be greater than 0".to_string());
                    None
                }
                Err(e) => {
                    errors.push(format!(
                        "objectives.max_latency: invalid duration \"{text}\": {e}"
                    ));
                    None
                }
            },
        };
        w.objectives = Objectives {
            max_latency,
            max_cost_per_request: amount(
                &self.objectives.max_cost_per_request,
                "objectives.max_cost_per_request",
                &mut errors,
            ),
            route_around: self.objectives.route_around,
        };
        if errors.is_empty() {
            Ok(w)
        } else {
            Err(errors)
        }
    }
}

impl From<&WorkflowConfig> for WorkflowSpec {
    fn from(w: &WorkflowConfig) -> Self {
        let amount = |m: Option<Money>| m.map(dollars);
        WorkflowSpec {
            name: w.name.clone(),
            owner: w.owner.clone(),
            description: w.description.clone(),
            criticality: w.criticality.as_str().to_string(),
            sensitivity: w.sensitivity.as_str().to_string(),
            models: w.models.clone(),
            writes: w.writes,
            limits: LimitsSpec {
                requests_per_minute: w.limits.requests_per_minute,
                tokens_per_minute: w.limits.tokens_per_minute,
                concurrency: w.limits.concurrency,
            },
            budget: BudgetSpec {
                daily: amount(w.budget.daily),
                weekly: amount(w.budget.weekly),
                monthly: amount(w.budget.monthly),
                soft_percent: Some(w.budget.soft_percent),
            },
            objectives: ObjectivesSpec {
                max_latency: w
                    .objectives
                    .max_latency
                    .map(|d| humantime::format_duration(d).to_string()),
                max_cost_per_request: amount(w.objectives.max_cost_per_request),
                route_around: w.objectives.route_around,
            },
        }
    }
}

fn positive(v: Option<u64>, field: &str, errors: &mut Vec<String>) -> Option<u64> {
    match v {
        Some(0) => {
            errors.push(format!(
                "{field}: must be at least 1 (leave it out for no limit)"
            ));
            None
        }
        other => other,
    }
}

/// Micro-units as an exact decimal string: `25`, `0.075`, `0.000001`.
fn dollars(m: Money) -> String {
    let whole = m.0 / 1_000_000;
    let frac = m.0.rem_euclid(1_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_spec_round_trips_through_the_config_type() {
        let json = r#"{"name":"triage","owner":"claims@x.example","criticality":"high",
            "sensitivity":"restricted","models":["qwen"],"writes":true,
            "limits":{"requests_per_minute":300,"concurrency":16},
            "budget":{"daily":"150.00","monthly":"$3000","soft_percent":90},
            "objectives":{"max_latency":"20s","max_cost_per_request":"0.075","route_around":true}}"#;
        let spec: WorkflowSpec = serde_json::from_str(json).unwrap();
        let w = spec.to_config().unwrap();
        assert_eq!(
            (w.criticality, w.sensitivity),
            (Criticality::High, Sensitivity::Restricted)
        );
        assert_eq!(w.budget.daily, Some(Money(150_000_000)));
        assert_eq!(w.budget.monthly, Some(Money(3_000_000_000)));
        assert_eq!(w.objectives.max_cost_per_request, Some(Money(75_000)));
        assert_eq!(w.objectives.max_latency, Some(Duration::from_secs(20)));
        let back = WorkflowSpec::from(&w);
        assert_eq!(back.budget.daily.as_deref(), Some("150"));
        assert_eq!(back.to_config().unwrap(), w);
    }

    #[test]
    fn every_problem_is_named() {
        let spec = WorkflowSpec {
            name: " ".into(),
            owner: "o".into(),
            description: None,
            criticality: "urgent".into(),
            sensitivity: "secret".into(),
            models: vec![],
            writes: false,
            limits: LimitsSpec {
                requests_per_minute: Some(0),
                ..LimitsSpec::default()
            },
            budget: BudgetSpec {
                daily: Some("-1".into()),
                soft_percent: Some(0),
                ..BudgetSpec::default()
            },
            objectives: ObjectivesSpec {
                max_latency: Some("soon".into()),
                ..ObjectivesSpec::default()
            },
        };
        let errors = spec.to_config().unwrap_err();
        assert_eq!(errors.len(), 7, "{errors:#?}");
        assert!(errors[0].starts_with("name:"));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("budget.daily: invalid amount \"-1\"")));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("objectives.max_latency: invalid duration")));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json =
            r#"{"name":"a","owner":"b","criticality":"low","sensitivity":"public","budgett":{}}"#;
        assert!(serde_json::from_str::<WorkflowSpec>(json).is_err());
    }
}
