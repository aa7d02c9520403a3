//! Routes: from the model name a client asks for to the ordered list of targets to try.

use crate::upstream::Provider;
use moat_config::Config;
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
}

impl Routes {
    /// Resolves the config's models against built providers. Config validation guarantees every
    /// provider and fallback exists; a missing one is skipped rather than trusted.
    pub fn new(config: &Config, providers: &HashMap<String, Arc<Provider>>) -> Routes {
        let mut models = HashMap::new();
        for m in &config.models {
            let via: Arc<str> = Arc::from(m.name.as_str());
            let targets = m
                .targets
                .iter()
                .filter_map(|t| {
                    Some(Target {
                        provider: Arc::clone(providers.get(&t.provider)?),
                        model: Arc::from(t.model.as_str()),
                        weight: t.weight.max(1),
                        via_model: Arc::clone(&via),
                    })
                })
                .collect();
            models.insert(
                m.name.clone(),
                Route {
                    targets,
                    fallbacks: m.fallbacks.clone(),
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
