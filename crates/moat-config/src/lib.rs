//! moat's configuration: one TOML file, `${VAR}` interpolation, and a validated [`Config`].
//!
//! Reading happens in three steps, so that a user with three mistakes sees three lines:
//! 1. `document`: parse the TOML, then deserialize each section and each `[[providers]]` /
//!    `[[models]]` element separately into raw serde types (`deny_unknown_fields`), reporting a
//!    field that does not fit and reading the rest of its table.
//! 2. `sections`: interpolate environment variables into string values (after parsing, so a
//!    value can never inject TOML) and check each field.
//! 3. `references`: check names across sections (duplicates, unknown providers and models,
//!    fallback cycles); `guard` does the same for filters and tiers (duplicate names, an account
//!    in two tiers, filters naming unknown tiers); `detection` reads `[detection]` and `[admin]`.
//!
//! Every error names a line and a field; [`parse`] returns a [`Config`] only when there are none.
//!
//! ```
//! # use moat_config::{parse, MapEnv};
//! let text = r#"
//! [store]
//! path = "moat.db"
//! [[providers]]
//! name = "local"
//! kind = "openai"
//! base_url = "http://localhost:11434/v1"
//! [[models]]
//! name = "llama"
//! targets = [{ provider = "local", model = "llama3.1" }]
//! "#;
//! let config = parse(text, "moat.toml", "/etc/moat".as_ref(), &MapEnv::default()).unwrap();
//! assert_eq!(config.model("llama").unwrap().targets[0].provider, "local");
//! ```

mod audit;
mod context;
mod detection;
mod document;
mod env;
mod error;
mod governance;
mod guard;
mod raw;
mod references;
mod sections;
mod store;
mod types;

use std::path::Path;

pub use audit::{AuditConfig, BodiesConfig, BodyPolicy, Durability, WitnessConfig};
pub use env::{Env, MapEnv, ProcessEnv};
pub use error::{mask_url_secrets, ConfigError, ConfigErrors};
pub use governance::spec::{BudgetSpec, LimitsSpec, ObjectivesSpec, WorkflowSpec};
pub use governance::types::{
    AccountConfig, BreakerConfig, Budget, Criticality, FailoverConfig, GovernanceConfig, Limits,
    Objectives, PriceConfig, RoutingRule, RuleMatch, Sensitivity, Timeouts, Unregistered,
    WorkflowConfig,
};
pub use governance::{check_workflow_name, MAX_WORKFLOW_NAME_LEN};
pub use types::{
    ActionsConfig, AdminConfig, AppliesTo, Config, DetectionConfig, DetectionMode, DetectorModel,
    FilterAction, FilterConfig, KeysConfig, ModelConfig, ParamsConfig, ProviderConfig,
    ServerConfig, StoreConfig, TargetConfig, TierConfig,
};

/// Reads and validates the config file at `path`; relative paths inside resolve against its directory.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let error = ConfigError {
            line: None,
            field: String::new(),
            message: format!("cannot read the config file: {e}"),
        };
        ConfigErrors::new(origin.clone(), vec![error])
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse(&text, &origin, base_dir, env)
}

/// Validates config `text`. `origin` names the file in messages; `base_dir` is where relative
/// paths resolve.
pub fn parse(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: &dyn Env,
) -> Result<Config, ConfigErrors> {
    // Editors on Windows may save a byte-order mark; TOML does not allow one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut ctx = context::Ctx::new(text, env, base_dir);
    let Some(doc) = document::read(text, &mut ctx.errors) else {
        return Err(ConfigErrors::new(origin, ctx.errors.into_vec()));
    };

    let server = sections::server(&mut ctx, doc.server.as_ref());
    let store = store::store(&mut ctx, doc.store.as_ref());
    let keys = sections::keys(&mut ctx, doc.keys.as_ref());
    let providers: Vec<_> = doc
        .providers
        .iter()
        .map(|p| sections::provider(&mut ctx, p))
        .collect();
    let models: Vec<_> = doc
        .models
        .iter()
        .map(|m| sections::model(&mut ctx, m))
        .collect();
    let all_providers_named = doc.all_providers_read && providers.iter().all(|p| p.name.is_some());
    let all_models_named = doc.all_models_read && models.iter().all(|m| m.name.is_some());
    references::check(
        &mut ctx.errors,
        &providers,
        all_providers_named,
        &models,
        all_models_named,
    );
    let filters: Vec<_> = doc
        .filters
        .iter()
        .map(|f| guard::filter(&mut ctx, f))
        .collect();
    let params = guard::params(&mut ctx, doc.params.as_ref());
    let tiers: Vec<_> = doc
        .tiers
        .iter()
        .map(|t| guard::tier(&mut ctx, t, &params))
        .collect();
    let all_tiers_named = doc.all_tiers_read && tiers.iter().all(|t| t.name.is_some());
    guard::check(&mut ctx.errors, &filters, &tiers, all_tiers_named);
    let detection = detection::detection(
        &mut ctx,
        doc.detection.as_ref(),
        doc.detection_actions.as_ref(),
        doc.detection_model.as_ref(),
    );
    let admin = detection::admin(&mut ctx, doc.admin.as_ref());

    let governance = governance::governance(&mut ctx, doc.governance.as_ref());
    let workflows: Vec<_> = doc
        .workflows
        .iter()
        .map(|w| governance::workflow(&mut ctx, w))
        .collect();
    let accounts: Vec<_> = doc
        .accounts
        .iter()
        .map(|a| governance::account(&mut ctx, a))
        .collect();
    let prices: Vec<_> = doc
        .prices
        .iter()
        .map(|p| governance::price(&mut ctx, p))
        .collect();
    let rules: Vec<_> = doc
        .routing_rules
        .iter()
        .map(|r| governance::rule(&mut ctx, r))
        .collect();
    let failover = governance::failover(&mut ctx, doc.failover.as_ref());
    let audit = audit::audit(&mut ctx, doc.audit.as_ref());
    let known = governance::Known {
        providers: &providers,
        models: &models,
        all_models_named,
        tiers: tiers
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.name.clone()))
            .collect(),
        all_tiers_named,
    };
    let all_workflows_named = doc.all_workflows_read && workflows.iter().all(|w| w.name.is_some());
    governance::check(
        &mut ctx.errors,
        &known,
        &workflows,
        all_workflows_named,
        &accounts,
        &prices,
        &rules,
    );

    if !ctx.errors.is_empty() {
        return Err(ConfigErrors::new(origin, ctx.errors.into_vec()));
    }
    Ok(Config {
        server,
        store,
        keys,
        providers: providers.into_iter().map(|p| p.config).collect(),
        models: models.into_iter().map(|m| m.config).collect(),
        filters: filters.into_iter().map(|f| f.config).collect(),
        params,
        tiers: tiers.into_iter().map(|t| t.config).collect(),
        detection,
        admin,
        governance,
        workflows: workflows.into_iter().map(|w| w.config).collect(),
        accounts: accounts.into_iter().map(|a| a.config).collect(),
        prices: prices.into_iter().map(|p| p.config).collect(),
        routing_rules: rules.into_iter().map(|r| r.config).collect(),
        failover,
        audit,
    })
}
