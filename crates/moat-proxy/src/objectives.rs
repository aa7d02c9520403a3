//! Latency and cost objectives of workflows: violations become incidents (logged as
//! `moat::incident`, counted, kept in memory for the admin API, and returned to the request's
//! record, which appends them to the audit log), and, for a workflow with `route_around`, steer
//! its later requests away from the targets at fault.
//!
//! Latency is measured from arrival to the last byte (the request record's clock). A target
//! that ran slow for a workflow goes to the end of that workflow's plans for [`SLOW_FOR_MS`]; a
//! target whose estimated cost for a request is over the objective is dropped from its plan
//! while another target remains.

use crate::routing::Target;
use moat_config::WorkflowConfig;
use moat_core::{Clock, Money};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// How long a target that broke a workflow's latency objective stays at the end of its plans.
pub const SLOW_FOR_MS: i64 = 5 * 60 * 1000;
/// Incidents kept in memory for the admin API (the oldest go first).
const KEPT: usize = 1000;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A request took longer than its workflow's `max_latency`.
    LatencyObjective,
    /// A request cost more than its workflow's `max_cost_per_request`.
    CostObjective,
}

impl IncidentKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::LatencyObjective => "latency",
            IncidentKind::CostObjective => "cost",
        }
    }
}

/// One objective violation.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// When, Unix ms.
    pub at_ms: i64,
    /// Which objective.
    pub kind: IncidentKind,
    /// The workflow whose objective it is.
    pub workflow: String,
    /// The request.
    pub request_id: String,
    /// The provider that answered (empty when none did).
    pub provider: String,
    /// The provider's model that answered.
    pub model: String,
    /// What was measured: milliseconds or micro-units.
    pub value: i64,
    /// The objective, in the same unit.
    pub objective: i64,
}

/// Incidents so far and the targets each workflow is steering away from.
pub struct Guardrails {
    clock: Arc<dyn Clock>,
    incidents: Mutex<VecDeque<Incident>>,
    /// (workflow, provider, model) -> until when (Unix ms) the target goes last.
    slow: Mutex<HashMap<(String, String, String), i64>>,
}

/// What a request must meet, carried on its record until it ends.
pub struct Watch {
    guardrails: Arc<Guardrails>,
    workflow: String,
    limits: moat_config::Objectives,
}

impl Guardrails {
    /// No incidents yet.
    pub fn new(clock: Arc<dyn Clock>) -> Guardrails {
        Guardrails {
            clock,
            incidents: Mutex::new(VecDeque::new()),
            slow: Mutex::new(HashMap::new()),
        }
    }

    /// The incidents kept, oldest first.
    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents.lock().iter().cloned().collect()
    }

    /// A watch for a request of `workflow`, if it has objectives.
    pub fn watch(self: &Arc<Self>, workflow: &WorkflowConfig) -> Option<Watch> {
        let o = &workflow.objectives;
        (o.max_latency.is_some() || o.max_cost_per_request.is_some()).then(|| Watch {
            guardrails: Arc::clone(self),
            workflow: workflow.name.clone(),
            limits: *o,
        })
    }

    /// For a workflow that routes around: targets that ran slow lately go last (in their order),
    /// and targets whose `estimate` is over the cost objective are dropped while another remains.
    pub fn steer(
        &self,
        workflow: &WorkflowConfig,
        plan: &mut Vec<Target>,
        estimate: impl Fn(&Target) -> Option<Money>,
    ) {
        let o = &workflow.objectives;
        if !o.route_around {
            return;
        }
        if let Some(max) = o.max_cost_per_request {
            let within = |t: &Target| estimate(t).is_none_or(|c| c <= max);
            if plan.iter().any(within) {
                plan.retain(within);
            }
        }
        if o.max_latency.is_some() {
            let now = self.clock.now_ms();
            let slow = self.slow.lock();
            if slow.is_empty() {
                return;
            }
            let is_slow = |t: &Target| {
                let key = (
                    workflow.name.clone(),
                    t.provider.name.to_string(),
                    t.model.to_string(),
                );
                slow.get(&key).is_some_and(|until| *until > now)
            };
            // A stable partition: fast targets keep their order, slow ones follow in theirs.
            let (fast, slow_ones): (Vec<Target>, Vec<Target>) =
                plan.drain(..).partition(|t| !is_slow(t));
            plan.extend(fast);
            plan.extend(slow_ones);
        }
    }

    fn record(&self, incident: Incident) {
        metrics::counter!("moat_objective_violations_total", "objective" => incident.kind.as_str())
            .increment(1);
        tracing::warn!(
            target: "moat::incident",
            kind = incident.kind.as_str(),
            workflow = %incident.workflow,
            request_id = %incident.request_id,
            provider = %incident.provider,
            model = %incident.model,
            value = incident.value,
            objective = incident.objective,
            "workflow objective violated"
        );
        let mut kept = self.incidents.lock();
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(incident);
    }
}

impl Incident {
    /// The incident as the audit log records it.
    pub fn audit(&self) -> moat_audit::Incident {
        let (provider, model) = (self.provider.clone(), self.model.clone());
        match self.kind {
            IncidentKind::LatencyObjective => moat_audit::Incident::LatencyObjective {
                provider,
                model,
                value_ms: self.value,
                objective_ms: self.objective,
            },
            IncidentKind::CostObjective => moat_audit::Incident::CostObjective {
                provider,
                model,
                value_micros: self.value,
                objective_micros: self.objective,
            },
        }
    }
}

impl Watch {
    /// Checks the finished request against the objectives: `elapsed` from arrival to the last
    /// byte, `cost` as settled, the target that answered (empty when none did). Returns the
    /// violations, already logged, counted and kept.
    pub fn finish(
        self,
        request_id: &str,
        provider: &str,
        model: &str,
        elapsed: Duration,
        cost: Money,
    ) -> Vec<Incident> {
        let now = self.guardrails.clock.now_ms();
        let incident = |kind, value: i64, objective: i64| Incident {
            at_ms: now,
            kind,
            workflow: self.workflow.clone(),
            request_id: request_id.to_string(),
            provider: provider.to_string(),
            model: model.to_string(),
            value,
            objective,
        };
        let mut found = Vec::new();
        if let Some(max) = self.limits.max_latency {
            if elapsed > max {
                let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                found.push(incident(
                    IncidentKind::LatencyObjective,
                    ms(elapsed),
                    ms(max),
                ));
                if self.limits.route_around && !provider.is_empty() {
                    let key = (
                        self.workflow.clone(),
                        provider.to_string(),
                        model.to_string(),
                    );
                    self.guardrails.slow.lock().insert(key, now + SLOW_FOR_MS);
                }
            }
        }
        if let Some(max) = self.limits.max_cost_per_request {
            if cost > max {
                found.push(incident(IncidentKind::CostObjective, cost.0, max.0));
            }
        }
        for i in &found {
            self.guardrails.record(i.clone());
        }
        found
    }
}
