//! Policy routing: which `[[routing_rules]]` entry applies to a request, and what it decides.
//!
//! Rules are tried in config order and the first whose every condition holds decides; no match
//! leaves the request to its model's own route. The same evaluation serves the request path
//! ([`Rules::decide`], no allocation) and `moat route explain` ([`Rules::explain`], which says
//! for each rule why it did or did not match).

use moat_config::{Criticality, RoutingRule, Sensitivity, WorkflowConfig};

/// What a request is, as far as routing rules can see.
pub struct Facts<'a> {
    /// The key's account.
    pub account: &'a str,
    /// The account's tier (`default` when in none).
    pub tier: &'a str,
    /// The key's workflow, when it is registered; a key naming a workflow the inventory does
    /// not have counts as unregistered.
    pub workflow: Option<&'a WorkflowConfig>,
    /// The model the client asked for.
    pub model: &'a str,
    /// A request header's value by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}

impl Facts<'_> {
    /// The workflow's criticality; traffic without a registered workflow counts as `medium`.
    pub fn criticality(&self) -> Criticality {
        self.workflow
            .map_or(Criticality::default(), |w| w.criticality)
    }

    /// The workflow's sensitivity; traffic without a registered workflow counts as `internal`.
    pub fn sensitivity(&self) -> Sensitivity {
        self.workflow
            .map_or(Sensitivity::default(), |w| w.sensitivity)
    }
}

/// The routing decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'r> {
    /// The rule that matched, if any.
    pub rule: Option<&'r RoutingRule>,
    /// The model to route to instead of the one asked for.
    pub use_model: Option<&'r str>,
    /// Only providers with one of these tags may serve the request (empty: any).
    pub only_tags: &'r [String],
    /// Refuse the request with this message.
    pub deny: Option<&'r str>,
}

impl<'r> Decision<'r> {
    /// The model to route: the rule's `use_model`, else `asked`.
    pub fn model<'x>(&self, asked: &'x str) -> &'x str
    where
        'r: 'x,
    {
        self.use_model.unwrap_or(asked)
    }
}

/// One rule's verdict in an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The rule's name.
    pub rule: String,
    /// Whether every condition held.
    pub matched: bool,
    /// Why: the conditions that held, or the first that did not.
    pub why: String,
}

/// The routing rules, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<RoutingRule>,
}

impl Rules {
    /// The rules in config order.
    pub fn new(rules: Vec<RoutingRule>) -> Self {
        Self { rules }
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first matching rule's decision, or the request's own model untouched.
    pub fn decide(&self, facts: &Facts<'_>) -> Decision<'_> {
        let rule = self
            .rules
            .iter()
            .find(|r| first_failure(r, facts).is_none());
        decision(rule)
    }

    /// The decision and, rule by rule up to the one that matched, why.
    pub fn explain(&self, facts: &Facts<'_>) -> (Decision<'_>, Vec<Step>) {
        let mut steps = Vec::new();
        for rule in &self.rules {
            match first_failure(rule, facts) {
                None => {
                    steps.push(Step {
                        rule: rule.name.clone(),
                        matched: true,
                        why: matched_because(rule, facts),
                    });
                    return (decision(Some(rule)), steps);
                }
                Some(failed) => steps.push(Step {
                    rule: rule.name.clone(),
                    matched: false,
                    why: not_matched_because(failed, rule, facts),
                }),
            }
        }
        (decision(None), steps)
    }
}

fn decision(rule: Option<&RoutingRule>) -> Decision<'_> {
    Decision {
        rule,
        use_model: rule.and_then(|r| r.use_model.as_deref()),
        only_tags: rule.map_or(&[], |r| r.only_providers_tagged.as_slice()),
        deny: rule.and_then(|r| r.deny.as_deref()),
    }
}

/// A condition of a rule's `when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Criticality,
    Sensitivity,
    Tier,
    Workflow,
    Account,
    Model,
    Unregistered,
    Writes,
    Header(usize),
}

/// The first condition of `rule` that `facts` fail, or `None` when all hold.
fn first_failure(rule: &RoutingRule, facts: &Facts<'_>) -> Option<Cond> {
    let w = &rule.when;
    let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    if !w.criticality.is_empty() && !w.criticality.contains(&facts.criticality()) {
        return Some(Cond::Criticality);
    }
    if !w.sensitivity.is_empty() && !w.sensitivity.contains(&facts.sensitivity()) {
        return Some(Cond::Sensitivity);
    }
    if !listed(&w.tiers, facts.tier) {
        return Some(Cond::Tier);
    }
    if !w.workflows.is_empty()
        && !facts
            .workflow
            .is_some_and(|x| listed(&w.workflows, &x.name))
    {
        return Some(Cond::Workflow);
    }
    if !listed(&w.accounts, facts.account) {
        return Some(Cond::Account);
    }
    if !listed(&w.models, facts.model) {
        return Some(Cond::Model);
    }
    if w.unregistered
        .is_some_and(|u| u != facts.workflow.is_none())
    {
        return Some(Cond::Unregistered);
    }
    if w.writes
        .is_some_and(|x| x != facts.workflow.is_some_and(|wf| wf.writes))
    {
        return Some(Cond::Writes);
    }
    for (i, (name, value)) in w.headers.iter().enumerate() {
        if (facts.header)(name) != Some(value.as_str()) {
            return Some(Cond::Header(i));
        }
    }
    None
}

fn matched_because(rule: &RoutingRule, facts: &Facts<'_>) -> String {
    let w = &rule.when;
    let mut parts = Vec::new();
    if !w.criticality.is_empty() {
        parts.push(format!("criticality is {}", facts.criticality().as_str()));
    }
    if !w.sensitivity.is_empty() {
        parts.push(format!("sensitivity is {}", facts.sensitivity().as_str()));
    }
    if !w.tiers.is_empty() {
        parts.push(format!("tier is {}", facts.tier));
    }
    if !w.workflows.is_empty() || w.unregistered == Some(false) {
        if let Some(wf) = facts.workflow {
            parts.push(format!("workflow is {}", wf.name));
        }
    }
    if !w.accounts.is_empty() {
        parts.push(format!("account is {}", facts.account));
    }
    if !w.models.is_empty() {
        parts.push(format!("model is {}", facts.model));
    }
    if w.unregistered == Some(true) {
        parts.push("the key has no registered workflow".into());
    }
    if let Some(writes) = w.writes {
        parts.push(format!("workflow writes: {writes}"));
    }
    for (name, value) in &w.headers {
        parts.push(format!("header {name} is {value:?}"));
    }
    if parts.is_empty() {
        "it has no conditions: it matches every request".into()
    } else {
        parts.join(", ")
    }
}

fn not_matched_because(failed: Cond, rule: &RoutingRule, facts: &Facts<'_>) -> String {
    let w = &rule.when;
    let names = |list: &[String]| list.join(", ");
    match failed {
        Cond::Criticality => format!(
            "criticality is {}, the rule wants {}",
            facts.criticality().as_str(),
            w.criticality
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Cond::Sensitivity => format!(
            "sensitivity is {}, the rule wants {}",
            facts.sensitivity().as_str(),
            w.sensitivity
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Cond::Tier => format!("tier is {}, the rule wants {}", facts.tier, names(&w.tiers)),
        Cond::Workflow => format!(
            "workflow is {}, the rule wants {}",
            facts.workflow.map_or("(none)", |x| x.name.as_str()),
            names(&w.workflows)
        ),
        Cond::Account => format!(
            "account is {}, the rule wants {}",
            facts.account,
            names(&w.accounts)
        ),
        Cond::Model => format!(
            "model is {}, the rule wants {}",
            facts.model,
            names(&w.models)
        ),
        Cond::Unregistered => match facts.workflow {
            Some(wf) => format!("the key has the registered workflow {}", wf.name),
            None => "the key has no registered workflow".into(),
        },
        Cond::Writes => format!(
            "workflow writes: {}, the rule wants {}",
            facts.workflow.is_some_and(|wf| wf.writes),
            w.writes.unwrap_or_default()
        ),
        Cond::Header(i) => {
            let (name, value) = w.headers.get(i).map_or(("", ""), |(n, v)| (n, v));
            match (facts.header)(name) {
                Some(got) => format!("header {name} is {got:?}, the rule wants {value:?}"),
                None => format!("header {name} is absent, the rule wants {value:?}"),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_config::RuleMatch;

    fn rule(name: &str, when: RuleMatch) -> RoutingRule {
        RoutingRule {
            name: name.into(),
            when,
            use_model: None,
            only_providers_tagged: vec![],
            deny: None,
        }
    }

    fn workflow(c: Criticality, s: Sensitivity) -> WorkflowConfig {
        let mut w = WorkflowConfig::new("w", "team");
        w.criticality = c;
        w.sensitivity = s;
        w
    }

    fn facts<'a>(
        wf: Option<&'a WorkflowConfig>,
        model: &'a str,
        header: &'a dyn Fn(&str) -> Option<&'a str>,
    ) -> Facts<'a> {
        Facts {
            account: "acme",
            tier: "default",
            workflow: wf,
            model,
            header,
        }
    }

    fn rules() -> Rules {
        let mut restricted = rule(
            "restricted-stays-home",
            RuleMatch {
                sensitivity: vec![Sensitivity::Restricted],
                ..RuleMatch::default()
            },
        );
        restricted.only_providers_tagged = vec!["self_hosted".into()];
        let mut drafts = rule(
            "drafts-go-small",
            RuleMatch {
                criticality: vec![Criticality::Low],
                ..RuleMatch::default()
            },
        );
        drafts.use_model = Some("small".into());
        let mut unregistered = rule(
            "register-first",
            RuleMatch {
                unregistered: Some(true),
                models: vec!["big".into()],
                ..RuleMatch::default()
            },
        );
        unregistered.deny = Some("register your workflow to use big".into());
        Rules::new(vec![restricted, drafts, unregistered])
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = rules();
        let restricted_low = workflow(Criticality::Low, Sensitivity::Restricted);
        let d = rules.decide(&facts(Some(&restricted_low), "big", &|_| None));
        assert_eq!(d.rule.unwrap().name, "restricted-stays-home");
        assert_eq!(
            (d.model("big"), d.only_tags),
            ("big", &["self_hosted".to_string()][..])
        );
        let low = workflow(Criticality::Low, Sensitivity::Internal);
        let d = rules.decide(&facts(Some(&low), "big", &|_| None));
        assert_eq!(
            (d.rule.unwrap().name.as_str(), d.model("big")),
            ("drafts-go-small", "small")
        );
        let d = rules.decide(&facts(None, "big", &|_| None));
        assert_eq!(d.deny, Some("register your workflow to use big"));
        let high = workflow(Criticality::High, Sensitivity::Public);
        let d = rules.decide(&facts(Some(&high), "big", &|_| None));
        assert_eq!((d.rule, d.model("big"), d.deny), (None, "big", None));
    }

    #[test]
    fn explain_says_why_each_rule_did_or_did_not_match() {
        let rules = rules();
        let (d, steps) = rules.explain(&facts(None, "big", &|_| None));
        assert_eq!(d.deny, Some("register your workflow to use big"));
        let why: Vec<_> = steps.iter().map(|s| (s.matched, s.why.as_str())).collect();
        assert_eq!(
            why,
            [
                (false, "sensitivity is internal, the rule wants restricted"),
                (false, "criticality is medium, the rule wants low"),
                (true, "model is big, the key has no registered workflow"),
            ]
        );
    }

    #[test]
    fn header_conditions_compare_exact_values() {
        let mut r = rule(
            "batch",
            RuleMatch {
                headers: vec![("x-moat-priority".into(), "batch".into())],
                ..RuleMatch::default()
            },
        );
        r.use_model = Some("small".into());
        let rules = Rules::new(vec![r]);
        let batch = |name: &str| (name == "x-moat-priority").then_some("batch");
        let f = facts(None, "big", &batch);
        assert_eq!(rules.decide(&f).model("big"), "small");
        let (_, steps) = rules.explain(&facts(None, "big", &|_| None));
        assert_eq!(
            steps[0].why,
            "header x-moat-priority is absent, the rule wants \"batch\""
        );
    }
}
