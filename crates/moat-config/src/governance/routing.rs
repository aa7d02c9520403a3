//! `[[routing_rules]]`, and the checks between the governance sections and the rest.

use std::collections::{BTreeMap, HashMap, HashSet};

use toml::Spanned;

use crate::context::{is_header_name, is_header_value, Ctx};
use crate::document::{key_name, Element};
use crate::error::Errors;
use crate::governance::raw::{RawRule, RawWhen};
use crate::governance::types::{RoutingRule, RuleMatch};
use crate::governance::{criticalities, sensitivities, AccountDraft, PriceDraft, WorkflowDraft};
use crate::references::first_definitions;
use crate::sections::{name_ref, named, ModelDraft, NameRef, ProviderDraft};

/// A rule, plus where its name and each reference are written.
pub(crate) struct RuleDraft {
    pub config: RoutingRule,
    pub name: Option<NameRef>,
    pub use_model: Option<NameRef>,
    pub tags: Vec<NameRef>,
    pub workflows: Vec<NameRef>,
    pub tiers: Vec<NameRef>,
    pub models: Vec<NameRef>,
}

/// One `[[routing_rules]]` element.
pub(crate) fn rule(ctx: &mut Ctx<'_>, e: &Element<RawRule>) -> RuleDraft {
    let raw = &e.value;
    let name = name_ref(ctx, e, "name", raw.name.as_ref());
    let mut draft = RuleDraft {
        config: RoutingRule {
            name: name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
            when: RuleMatch::default(),
            use_model: None,
            only_providers_tagged: Vec::new(),
            deny: None,
        },
        name,
        use_model: None,
        tags: Vec::new(),
        workflows: Vec::new(),
        tiers: Vec::new(),
        models: Vec::new(),
    };
    if let Some(when) = &raw.when {
        when_of(ctx, when, &e.field("when"), &mut draft);
    }
    if let Some(v) = &raw.use_model {
        draft.use_model = named(ctx, v, e.field("use_model"));
        draft.config.use_model = draft.use_model.as_ref().map(|m| m.name.clone());
    }
    for (i, t) in raw.only_providers_tagged.iter().flatten().enumerate() {
        let field = format!("{}[{i}]", e.field("only_providers_tagged"));
        if let Some(tag) = named(ctx, t, field) {
            draft.config.only_providers_tagged.push(tag.name.clone());
            draft.tags.push(tag);
        }
    }
    if raw
        .only_providers_tagged
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        let message =
            "an empty list would refuse every request: name at least one tag, or use `deny`";
        ctx.errors.push(
            e.key_span("only_providers_tagged"),
            e.field("only_providers_tagged"),
            message,
        );
    }
    if let Some(v) = &raw.deny {
        draft.config.deny = ctx.name(v, &e.field("deny"));
        if draft.config.use_model.is_some() || !draft.config.only_providers_tagged.is_empty() {
            let message = "a rule that denies cannot also route: remove `use_model` and `only_providers_tagged`, or `deny`";
            ctx.errors.push(Some(v.span()), e.field("deny"), message);
        }
    }
    let has_action =
        raw.use_model.is_some() || raw.only_providers_tagged.is_some() || raw.deny.is_some();
    if !has_action && !e.already_reported("use_model") && !e.already_reported("deny") {
        let message = "a rule needs an action: `use_model`, `only_providers_tagged` or `deny`";
        ctx.errors.push(e.span.clone(), e.path.clone(), message);
    }
    draft
}

fn when_of(ctx: &mut Ctx<'_>, raw: &RawWhen, path: &str, draft: &mut RuleDraft) {
    let field = |k: &str| format!("{path}.{k}");
    let when = &mut draft.config.when;
    if let Some(list) = &raw.criticality {
        when.criticality = criticalities(ctx, list, &field("criticality"));
    }
    if let Some(list) = &raw.sensitivity {
        when.sensitivity = sensitivities(ctx, list, &field("sensitivity"));
    }
    let names = |ctx: &mut Ctx<'_>, list: &Option<Vec<Spanned<String>>>, key: &str| {
        let mut out = Vec::new();
        for (i, v) in list.iter().flatten().enumerate() {
            if let Some(n) = named(ctx, v, format!("{}[{i}]", field(key))) {
                out.push(n);
            }
        }
        out
    };
    draft.workflows = names(ctx, &raw.workflows, "workflows");
    draft.tiers = names(ctx, &raw.tiers, "tiers");
    draft.models = names(ctx, &raw.models, "models");
    let accounts = names(ctx, &raw.accounts, "accounts");
    let when = &mut draft.config.when;
    when.workflows = draft.workflows.iter().map(|n| n.name.clone()).collect();
    when.tiers = draft.tiers.iter().map(|n| n.name.clone()).collect();
    when.models = draft.models.iter().map(|n| n.name.clone()).collect();
    when.accounts = accounts.into_iter().map(|n| n.name).collect();
    when.unregistered = raw.unregistered.as_ref().map(|b| *b.get_ref());
    when.writes = raw.writes.as_ref().map(|b| *b.get_ref());
    if let Some(headers) = &raw.headers {
        when.headers = headers_of(ctx, &field("headers"), headers);
    }
}

fn headers_of(
    ctx: &mut Ctx<'_>,
    path: &str,
    headers: &BTreeMap<String, Spanned<String>>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let field = format!("{path}.{}", key_name(name));
        if !is_header_name(name) {
            let message = "invalid header name: use letters, digits and - (an HTTP token)";
            ctx.errors.push(Some(value.span()), field.clone(), message);
            continue;
        }
        let Some(v) = ctx.string(value, &field) else {
            continue;
        };
        if is_header_value(&v) {
            out.push((name.to_ascii_lowercase(), v));
        } else {
            let message = "header value must not contain line breaks or other control characters";
            ctx.errors.push(Some(value.span()), field, message);
        }
    }
    out
}

/// What the governance checks need to know about the rest of the file.
pub(crate) struct Known<'a> {
    pub providers: &'a [ProviderDraft],
    pub models: &'a [ModelDraft],
    pub all_models_named: bool,
    pub tiers: HashSet<String>,
    pub all_tiers_named: bool,
}

/// Duplicate names, and references to models, workflows, tiers and provider tags that do not exist.
pub(crate) fn check(
    errors: &mut Errors<'_>,
    known: &Known<'_>,
    workflows: &[WorkflowDraft],
    all_workflows_named: bool,
    accounts: &[AccountDraft],
    prices: &[PriceDraft],
    rules: &[RuleDraft],
) {
    let model_names: HashSet<&str> = known
        .models
        .iter()
        .filter_map(|m| m.name.as_ref().map(|n| n.name.as_str()))
        .collect();
    let unknown_model = |r: &NameRef, errors: &mut Errors<'_>| {
        if known.all_models_named && !model_names.contains(r.name.as_str()) {
            let message = format!("unknown model \"{}\"", r.name);
            errors.push(r.span.clone(), r.field.clone(), message);
        }
    };
    let workflow_names = first_definitions(errors, workflows.iter().map(|w| &w.name), "workflow");
    for w in workflows {
        for m in &w.models {
            unknown_model(m, errors);
        }
    }
    first_definitions(errors, accounts.iter().map(|a| &a.name), "account");
    first_definitions(errors, prices.iter().map(|p| &p.name), "price model");
    first_definitions(errors, rules.iter().map(|r| &r.name), "routing rule");
    let tags: HashMap<&str, ()> = known
        .providers
        .iter()
        .flat_map(|p| p.config.tags.iter().map(|t| (t.as_str(), ())))
        .collect();
    for r in rules {
        for m in r.models.iter().chain(&r.use_model) {
            unknown_model(m, errors);
        }
        for w in &r.workflows {
            if all_workflows_named && !workflow_names.contains_key(w.name.as_str()) {
                let message = format!("unknown workflow \"{}\"", w.name);
                errors.push(w.span.clone(), w.field.clone(), message);
            }
        }
        for t in &r.tiers {
            if known.all_tiers_named && t.name != "default" && !known.tiers.contains(&t.name) {
                let message = format!("unknown tier \"{}\"", t.name);
                errors.push(t.span.clone(), t.field.clone(), message);
            }
        }
        for t in &r.tags {
            if !tags.contains_key(t.name.as_str()) {
                let message = format!(
                    "no provider has the tag \"{}\": the rule would refuse every request it matches (add `tags = [\"{}\"]` to a provider)",
                    t.name, t.name
                );
                errors.push(t.span.clone(), t.field.clone(), message);
            }
        }
    }
    for m in known.models {
        if let Some(r) = &m.context_fallback {
            if m.name.as_ref().is_some_and(|n| n.name == r.name) {
                errors.push(
                    r.span.clone(),
                    r.field.clone(),
                    "a model cannot be its own context fallback",
                );
            } else {
                unknown_model(r, errors);
            }
        }
    }
}
