//! `moat workflows list` and `moat route explain`: the inventory and a dry run of policy routing,
//! read from the config file and its store (no gateway needs to run).

use crate::cli::{AddWorkflowArgs, ExplainArgs, ListWorkflowsArgs, RemoveWorkflowArgs};
use crate::serve::{load_config, open_store};
use anyhow::{bail, Context};
use moat_config::{Config, Unregistered, WorkflowConfig};
use moat_policy::routing::{Facts, Rules};
use moat_proxy::governance::view::dollars;
use moat_store::{KeyStore, SqliteStore, WorkflowSpec, WorkflowStore};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// `moat workflows list`.
pub async fn workflows(args: ListWorkflowsArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(&args.config)?;
    let store = open_store(&config)?;
    let declared = config.workflows.len();
    add_stored(&mut config, &store).await?;
    let keys = store.list_keys().await?;
    let mut by_workflow: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unregistered = Vec::new();
    for k in &keys {
        match k
            .workflow
            .as_deref()
            .filter(|w| config.workflow(w).is_some())
        {
            Some(w) => by_workflow.entry(w).or_default().push(&k.id),
            None => unregistered.push(k.id.as_str()),
        }
    }
    if args.json {
        for (i, w) in config.workflows.iter().enumerate() {
            let keys = by_workflow
                .get(w.name.as_str())
                .cloned()
                .unwrap_or_default();
            let mut row = workflow_json(w, &keys);
            row["source"] = json!(if i < declared { "config" } else { "store" });
            println!("{row}");
        }
        println!(
            "{}",
            json!({"unregistered_keys": unregistered, "policy": config.governance.unregistered.as_str()})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<28} {:<8} {:<12} {:<6} {:>4} {:>7} {:>9} {:>10} {:>10}  {:<7} MODELS",
        "WORKFLOW",
        "OWNER",
        "CRIT",
        "SENSITIVITY",
        "WRITES",
        "KEYS",
        "RPM",
        "TPM",
        "DAILY",
        "MONTHLY",
        "SOURCE"
    );
    for (i, w) in config.workflows.iter().enumerate() {
        let source = if i < declared { "config" } else { "store" };
        let keys = by_workflow.get(w.name.as_str()).map_or(0, Vec::len);
        let num = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        let money =
            |m: Option<moat_core::Money>| m.map_or("-".to_string(), |m| format!("${}", dollars(m)));
        let models = if w.models.is_empty() {
            "*".to_string()
        } else {
            w.models.join(",")
        };
        println!(
            "{:<20} {:<28} {:<8} {:<12} {:<6} {:>4} {:>7} {:>9} {:>10} {:>10}  {:<7} {}",
            w.name,
            w.owner,
            w.criticality.as_str(),
            w.sensitivity.as_str(),
            if w.writes { "yes" } else { "no" },
            keys,
            num(w.limits.requests_per_minute),
            num(w.limits.tokens_per_minute),
            money(w.budget.daily),
            money(w.budget.monthly),
            source,
            models
        );
    }
    let policy = config.governance.unregistered.as_str();
    println!(
        "\nunregistered: {} key(s) with no registered workflow (policy: {policy}){}",
        unregistered.len(),
        if unregistered.is_empty() {
            String::new()
        } else {
            format!(": {}", unregistered.join(", "))
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn workflow_json(w: &WorkflowConfig, keys: &[&str]) -> serde_json::Value {
    json!({
        "name": w.name,
        "owner": w.owner,
        "description": w.description,
        "criticality": w.criticality.as_str(),
        "sensitivity": w.sensitivity.as_str(),
        "writes": w.writes,
        "models": w.models,
        "keys": keys,
        "requests_per_minute": w.limits.requests_per_minute,
        "tokens_per_minute": w.limits.tokens_per_minute,
        "concurrency": w.limits.concurrency,
        "budget_micros": {
            "daily": w.budget.daily.map(|m| m.0),
            "weekly": w.budget.weekly.map(|m| m.0),
            "monthly": w.budget.monthly.map(|m| m.0),
        },
    })
}

/// `moat route explain`.
pub async fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(&args.config)?;
    let store = open_store(&config)?;
    add_stored(&mut config, &store).await?;
    let key = store
        .get_key(&args.key)
        .await?
        .with_context(|| format!("no key with id {} in the store", args.key))?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once('=') else {
            bail!("--header {h}: expected NAME=VALUE");
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let tier = config
        .tiers
        .iter()
        .find(|t| t.accounts.contains(&key.account))
        .map_or("default", |t| t.name.as_str());
    let workflow = key.workflow.as_deref().and_then(|w| config.workflow(w));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let facts = Facts {
        account: &key.account,
        tier,
        workflow,
        model: &args.model,
        header: &header,
    };
    let rules = Rules::new(config.routing_rules.clone());
    let (decision, steps) = rules.explain(&facts);

    let mut refusal: Option<String> = None;
    if workflow.is_none() && config.governance.unregistered == Unregistered::Deny {
        refusal = Some(
            "refused: the key has no registered workflow and unregistered traffic is denied".into(),
        );
    }
    if let Some(w) = workflow {
        if !w.models.is_empty() && !w.models.contains(&args.model) {
            refusal.get_or_insert(format!(
                "refused: workflow {} is not registered for model {}",
                w.name, args.model
            ));
        }
    }
    if !moat_policy::may_use_model(&key, &args.model) {
        refusal.get_or_insert(format!(
            "refused: key {} may not call model {}",
            key.id, args.model
        ));
    }
    if let (Some(message), Some(rule)) = (decision.deny, decision.rule) {
        refusal.get_or_insert(format!("refused by rule {}: {message}", rule.name));
    }
    let model = decision.model(&args.model);
    let route = route_of(&config, model, decision.only_tags);
    if refusal.is_none() && config.model(model).is_none() {
        refusal = Some(format!("refused: model {model} is not configured"));
    }
    if refusal.is_none() && !route.iter().any(|t| t.allowed) {
        refusal = Some(format!(
            "refused: no target is on a provider tagged {}",
            decision.only_tags.join(" or ")
        ));
    }

    if args.json {
        let out = json!({
            "key": key.id,
            "account": key.account,
            "tier": tier,
            "workflow": workflow.map(|w| json!({"name": w.name, "criticality": w.criticality.as_str(), "sensitivity": w.sensitivity.as_str(), "writes": w.writes})),
            "model": args.model,
            "rules": steps.iter().map(|s| json!({"rule": s.rule, "matched": s.matched, "why": s.why})).collect::<Vec<_>>(),
            "matched_rule": decision.rule.map(|r| r.name.as_str()),
            "routed_model": model,
            "only_providers_tagged": decision.only_tags,
            "targets": route.iter().map(|t| json!({"model": t.model, "provider": t.provider, "provider_model": t.provider_model, "weight": t.weight, "fallback": t.fallback, "allowed": t.allowed})).collect::<Vec<_>>(),
            "refused": refusal,
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let wf = match workflow {
        Some(w) => format!(
            "workflow {} ({}, {})",
            w.name,
            w.criticality.as_str(),
            w.sensitivity.as_str()
        ),
        None => match &key.workflow {
            Some(w) => format!("workflow {w} (not registered: medium, internal)"),
            None => "no workflow (unregistered: medium, internal)".into(),
        },
    };
    println!(
        "request: key {} of account {} (tier {tier}), {wf}, model {}",
        key.id, key.account, args.model
    );
    if steps.is_empty() {
        println!("rules: none configured");
    }
    for (i, s) in steps.iter().enumerate() {
        let verdict = if s.matched { "MATCH" } else { "no" };
        println!("  {}. {:<32} {:<5}  {}", i + 1, s.rule, verdict, s.why);
    }
    if steps.len() < config.routing_rules.len() {
        println!("  (later rules are not tried: the first match decides)");
    }
    match decision.rule {
        Some(r) => println!(
            "decision: rule {} -> model {model}{}",
            r.name,
            tags_note(decision.only_tags)
        ),
        None => println!("decision: no rule matched -> model {model} as asked"),
    }
    println!("route:");
    for t in &route {
        let role = if t.fallback { "fallback" } else { "target" };
        let state = if t.allowed {
            "eligible"
        } else {
            "excluded (provider lacks the required tag)"
        };
        println!(
            "  {role:<8} {} -> {}/{} (weight {})  {state}",
            t.model, t.provider, t.provider_model, t.weight
        );
    }
    match refusal {
        Some(r) => println!("result: {r}"),
        None => println!("result: served by the first eligible target that answers"),
    }
    Ok(ExitCode::SUCCESS)
}

fn tags_note(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(", only providers tagged {}", tags.join(" or "))
    }
}

/// One target of a route as the explanation shows it.
struct RouteTarget {
    model: String,
    provider: String,
    provider_model: String,
    weight: u32,
    fallback: bool,
    allowed: bool,
}

fn route_of(config: &Config, model: &str, only_tags: &[String]) -> Vec<RouteTarget> {
    let Some(m) = config.model(model) else {
        return Vec::new();
    };
    let chain = std::iter::once((m, false)).chain(
        m.fallbacks
            .iter()
            .filter_map(|f| config.model(f))
            .map(|f| (f, true)),
    );
    let mut out = Vec::new();
    for (m, fallback) in chain {
        for t in &m.targets {
            let tags = config
                .provider(&t.provider)
                .map_or(&[][..], |p| p.tags.as_slice());
            out.push(RouteTarget {
                model: m.name.clone(),
                provider: t.provider.clone(),
                provider_model: t.model.clone(),
                weight: t.weight,
                fallback,
                allowed: only_tags.is_empty() || tags.iter().any(|t| only_tags.contains(t)),
            });
        }
    }
    out
}

/// `moat workflows add`.
pub async fn add(args: AddWorkflowArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    if config.workflow(&args.name).is_some() {
        bail!(
            "workflow {} is declared in the config file; change it there",
            args.name
        );
    }
    let spec = WorkflowSpec {
        name: args.name.clone(),
        owner: args.owner,
        description: args.description,
        criticality: args.criticality,
        sensitivity: args.sensitivity,
        models: args.models,
        writes: args.writes,
        limits: moat_config::LimitsSpec {
            requests_per_minute: args.rpm,
            tokens_per_minute: args.tpm,
            concurrency: args.concurrency,
        },
        budget: moat_config::BudgetSpec {
            daily: args.daily,
            weekly: args.weekly,
            monthly: args.monthly,
            soft_percent: None,
        },
        objectives: Default::default(),
    };
    if let Err(problems) = spec.to_config() {
        bail!("invalid workflow:\n  {}", problems.join("\n  "));
    }
    let store = open_store(&config)?;
    let existed = store
        .list_workflows()
        .await?
        .iter()
        .any(|w| w.name == spec.name);
    store
        .put_workflow(&spec, moat_core::Clock::now_ms(&moat_core::SystemClock))
        .await?;
    let verb = if existed { "Replaced" } else { "Registered" };
    println!("{verb} workflow {} (owner {}).", spec.name, spec.owner);
    Ok(ExitCode::SUCCESS)
}

/// `moat workflows remove`.
pub async fn remove(args: RemoveWorkflowArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    if config.workflow(&args.name).is_some() {
        bail!(
            "workflow {} is declared in the config file; remove it there",
            args.name
        );
    }
    if open_store(&config)?.delete_workflow(&args.name).await? {
        println!(
            "Removed workflow {}; its keys are now unregistered traffic.",
            args.name
        );
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("no workflow {} in the store", args.name)
    }
}

/// Appends the store's valid workflows that the config file does not declare (what a gateway
/// on this store would use), after the config file's.
pub(crate) async fn add_stored(config: &mut Config, store: &SqliteStore) -> anyhow::Result<()> {
    let mut stored = store.list_workflows().await?;
    stored.sort_by(|a, b| a.name.cmp(&b.name));
    for spec in stored {
        if config.workflow(&spec.name).is_some() {
            continue;
        }
        match spec.to_config() {
            Ok(w) => config.workflows.push(w),
            Err(problems) => eprintln!(
                "warning: stored workflow {} is invalid and ignored: {}",
                spec.name,
                problems.join("; ")
            ),
        }
    }
    Ok(())
}
