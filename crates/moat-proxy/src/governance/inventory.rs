//! The workflow inventory: the workflows declared in the config file, fixed for the process's
//! life, and those registered at run time (admin API, `moat workflows add`) and kept in the
//! store, swapped in whole whenever the store's list is read again.
//!
//! A request takes one `Arc` of the inventory's current snapshot of its workflow, so a swap never
//! changes a request halfway.

use moat_config::{WorkflowConfig, WorkflowSpec};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a workflow is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The config file: changed only by editing it and restarting.
    Config,
    /// The store: registered at run time.
    Store,
}

impl Source {
    /// `config` or `store`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Store => "store",
        }
    }
}

/// Every registered workflow.
pub struct Inventory {
    config: Vec<Arc<WorkflowConfig>>,
    current: RwLock<Arc<Snapshot>>,
}

/// One consistent view: config workflows first in file order, then stored ones by name.
#[derive(Default)]
struct Snapshot {
    by_name: HashMap<String, (Arc<WorkflowConfig>, Source)>,
    order: Vec<String>,
}

impl Inventory {
    /// The config file's workflows, and none stored yet.
    pub fn new(config: &[WorkflowConfig]) -> Inventory {
        let config: Vec<Arc<WorkflowConfig>> = config.iter().cloned().map(Arc::new).collect();
        let snapshot = snapshot(&config, Vec::new());
        Inventory {
            config,
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The workflow called `name`, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<WorkflowConfig>> {
        self.current
            .read()
            .by_name
            .get(name)
            .map(|(w, _)| Arc::clone(w))
    }

    /// Where `name` is declared, if it is.
    pub fn source(&self, name: &str) -> Option<Source> {
        self.current.read().by_name.get(name).map(|(_, s)| *s)
    }

    /// Every workflow with its source, config ones first.
    pub fn all(&self) -> Vec<(Arc<WorkflowConfig>, Source)> {
        let snap = Arc::clone(&self.current.read());
        snap.order
            .iter()
            .filter_map(|n| snap.by_name.get(n).cloned())
            .collect()
    }

    /// Replaces the stored workflows with `specs` (the store's whole list). A spec that does not
    /// validate, or that names a workflow of the config file, is skipped with a warning: the
    /// config file wins. Returns how many were taken.
    pub fn replace_stored(&self, specs: &[WorkflowSpec]) -> usize {
        let mut stored = Vec::with_capacity(specs.len());
        for spec in specs {
            if self.config.iter().any(|w| w.name == spec.name) {
                tracing::warn!(workflow = %spec.name, "a stored workflow has the name of one in the config file; the config file's is used");
                continue;
            }
            match spec.to_config() {
                Ok(w) => stored.push(Arc::new(w)),
                Err(errors) => {
                    tracing::warn!(workflow = %spec.name, errors = %errors.join("; "), "a stored workflow does not validate; skipped");
                }
            }
        }
        stored.sort_by(|a, b| a.name.cmp(&b.name));
        let taken = stored.len();
        *self.current.write() = Arc::new(snapshot(&self.config, stored));
        taken
    }

    /// Whether `name` is declared in the config file.
    pub fn in_config(&self, name: &str) -> bool {
        self.config.iter().any(|w| w.name == name)
    }
}

fn snapshot(config: &[Arc<WorkflowConfig>], stored: Vec<Arc<WorkflowConfig>>) -> Snapshot {
    let mut s = Snapshot::default();
    for (w, source) in config
        .iter()
        .cloned()
        .map(|w| (w, Source::Config))
        .chain(stored.into_iter().map(|w| (w, Source::Store)))
    {
        s.order.push(w.name.clone());
        s.by_name.insert(w.name.clone(), (w, source));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn spec(name: &str) -> WorkflowSpec {
        WorkflowSpec::from(&WorkflowConfig::new(name, "team"))
    }

    #[test]
    fn stored_workflows_are_swapped_in_and_the_config_file_wins() {
        let inv = Inventory::new(&[WorkflowConfig::new("declared", "ops")]);
        assert_eq!(inv.source("declared"), Some(Source::Config));
        let mut clash = spec("declared");
        clash.owner = "someone else".into();
        let mut bad = spec("bad");
        bad.criticality = "urgent".into();
        assert_eq!(
            inv.replace_stored(&[spec("zeta"), clash, bad, spec("alpha")]),
            2
        );
        let names: Vec<_> = inv
            .all()
            .iter()
            .map(|(w, s)| (w.name.clone(), *s))
            .collect();
        assert_eq!(
            names,
            [
                ("declared".to_string(), Source::Config),
                ("alpha".to_string(), Source::Store),
                ("zeta".to_string(), Source::Store)
            ]
        );
        assert_eq!(inv.get("declared").unwrap().owner, "ops");
        let held = inv.get("alpha").unwrap();
        inv.replace_stored(&[]);
        assert!(inv.get("alpha").is_none());
        assert_eq!(held.name, "alpha", "a request keeps its snapshot");
    }
}
