//! Routes: from the model name a client asks for to the ordered list of targets to try, and the
//! circuit breaker of every target.

use crate::upstream::Provider;
use moat_config::Config;
use moat_policy::resilience::{Breaker, BreakerConfig};
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;

/// One place a request may be sent: a provider and the model name it knows.
#[derive(Clone)]
pub struct Target {
    /// The provider.
    pub provider: Arc<Provider>,
    /// The provider's model name.
    pub model: Arc<str>,
    /// Relative share of traffic among the targets of one model.
    pub weight: u32,
    /// The configured model this target belongs to (differs from the requested one on a fallback).
    pub via_model: Arc<str>,
    /// The circuit breaker of this provider and model, shared by every route that names them;
    /// `None` when breakers are off (`failure_threshold = 0`).
    pub breaker: Option<Arc<Breaker>>,
}

/// Every configured model's targets and fallbacks, resolved once at start-up.
pub struct Routes {
    models: HashMap<String, Route>,
    /// Model names in config order, for `/v1/models`.
    pub names: Vec<String>,
}

struct Route {
    targets: Vec<Target>,
    fallbacks: Vec<String>,
    context_fallback: Option<String>,
}

impl Routes {
    /// Resolves the config's models against built providers, with one breaker per provider and
    /// model from `[failover.breaker]`. Config validation guarantees every provider and fallback
    /// exists; a missing one is skipped rather than trusted.
    pub fn new(config: &Config, providers: &HashMap<String, Arc<Provider>>) -> Routes {
        let b = &config.failover.breaker;
        let breaker_config = (b.failure_threshold > 0).then(|| BreakerConfig {
            failure_threshold: b.failure_threshold,
            open_ms: u64::try_from(b.open_for.as_millis()).unwrap_or(u64::MAX),
            half_open_probes: b.close_after,
        });
        let mut breakers: HashMap<(String, String), Arc<Breaker>> = HashMap::new();
        let mut models = HashMap::new();
        for m in &config.models {
            let via: Arc<str> = Arc::from(m.name.as_str());
            let targets = m
                .targets
                .iter()
                .filter_map(|t| {
                    let breaker = breaker_config.map(|c| {
                        let key = (t.provider.clone(), t.model.clone());
                        Arc::clone(
                            breakers
                                .entry(key)
                                .or_insert_with(|| Arc::new(Breaker::new(c))),
                        )
                    });
                    Some(Target {
                        provider: Arc::clone(providers.get(&t.provider)?),
                        model: Arc::from(t.model.as_str()),
                        weight: t.weight.max(1),
                        via_model: Arc::clone(&via),
                        breaker,
                    })
                })
                .collect();
            models.insert(
                m.name.clone(),
                Route {
                    targets,
                    fallbacks: m.fallbacks.clone(),
                    context_fallback: m.context_fallback.clone(),
                },
            );
        }
        Routes {
            models,
            names: config.models.iter().map(|m| m.name.clone()).collect(),
        }
    }

    /// Whether a model of this name is configured.
    pub fn contains(&self, model: &str) -> bool {
        self.models.contains_key(model)
    }

    /// The targets to try for `model`, in order: one of its targets picked by weight, its other
    /// targets, then each fallback model's targets the same way. `None` if the model is unknown.
    pub fn plan(&self, model: &str) -> Option<Vec<Target>> {
        let route = self.models.get(model)?;
        let mut rng = rand::thread_rng();
        let mut plan = weighted_order(&route.targets, &mut rng);
        for fallback in &route.fallbacks {
            if let Some(next) = self.models.get(fallback) {
                plan.extend(weighted_order(&next.targets, &mut rng));
            }
        }
        Some(plan)
    }

    /// The plan of `model`'s `context_fallback` (the larger-context model to use when the request
    /// is too long for every target), keeping only providers tagged one of `only_tags` when a
    /// routing rule requires it. `None` when there is none, or none the rule allows.
    pub fn context_plan(&self, model: &str, only_tags: &[String]) -> Option<Vec<Target>> {
        let larger = self.models.get(model)?.context_fallback.as_deref()?;
        let mut plan = self.plan(larger)?;
        if !only_tags.is_empty() {
            plan.retain(|t| t.provider.tags.iter().any(|tag| only_tags.contains(tag)));
        }
        (!plan.is_empty()).then_some(plan)
    }
}

/// The targets with the first drawn by weight and the rest in config order.
fn weighted_order(targets: &[Target], rng: &mut impl Rng) -> Vec<Target> {
    let total: u64 = targets.iter().map(|t| u64::from(t.weight)).sum();
    if targets.len() < 2 || total == 0 {
        return targets.to_vec();
    }
    let mut draw = rng.gen_range(0..total);
    let first = targets
        .iter()
        .position(|t| {
            let w = u64::from(t.weight);
            if draw < w {
                true
            } else {
                draw -= w;
                false
            }
        })
        .unwrap_or(0);
    let mut out = Vec::with_capacity(targets.len());
    out.push(targets[first].clone());
    out.extend(
        targets
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != first)
            .map(|(_, t)| t.clone()),
    );
    out
}
