//! The shipped example config parses into exactly what its comments promise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_config::{load, parse, FilterAction, MapEnv, ParamsConfig, ServerConfig, TargetConfig};
use moat_core::Protocol;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/moat.toml")
}

fn keys() -> MapEnv {
    MapEnv::new([
        ("OPENAI_API_KEY", "sk-openai"),
        ("ANTHROPIC_API_KEY", "sk-ant"),
    ])
}

#[test]
fn example_config_parses() {
    let path = example_path();
    let config = load(&path, &keys()).unwrap();

    assert_eq!(config.server, ServerConfig::default());
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:4000");
    assert_eq!(config.store.path, path.parent().unwrap().join("moat.db"));
    assert_eq!(config.keys.cache_ttl, Duration::from_secs(5));

    assert_eq!(config.providers.len(), 2);
    let openai = config.provider("openai").unwrap();
    assert_eq!(openai.kind, Protocol::OpenAi);
    assert_eq!(openai.base_url, "https://api.openai.com/v1");
    assert_eq!(openai.api_key.as_ref().unwrap().expose(), "sk-openai");
    assert_eq!(openai.connect_timeout, Duration::from_secs(5));
    assert_eq!(openai.first_byte_timeout, Duration::from_secs(60));
    assert_eq!(openai.idle_timeout, Duration::from_secs(60));
    assert!(openai.headers.is_empty());
    let anthropic = config.provider("anthropic").unwrap();
    assert_eq!(anthropic.kind, Protocol::Anthropic);
    assert_eq!(anthropic.base_url, "https://api.anthropic.com");
    assert_eq!(anthropic.api_key.as_ref().unwrap().expose(), "sk-ant");

    assert_eq!(config.models.len(), 2);
    let gpt = config.model("gpt-4o").unwrap();
    assert_eq!(gpt.targets, vec![TargetConfig::new("openai", "gpt-4o")]);
    assert_eq!(gpt.fallbacks, vec!["claude-sonnet".to_string()]);
    let claude = config.model("claude-sonnet").unwrap();
    assert_eq!(
        claude.targets,
        vec![TargetConfig::new("anthropic", "claude-sonnet-4-5")]
    );
    assert!(claude.fallbacks.is_empty());
    assert!(config.model("gpt-5").is_none());

    assert_eq!(config.filters.len(), 1);
    let extraction = &config.filters[0];
    assert_eq!(extraction.name, "extraction");
    assert_eq!(extraction.action, FilterAction::Block);
    assert_eq!(
        extraction.file,
        path.parent().unwrap().join("../rules/extraction.txt")
    );
    assert!(extraction.file.is_file(), "{}", extraction.file.display());
    assert_eq!(config.params, ParamsConfig::default());
    assert!(config.tiers.is_empty());
}

#[test]
fn example_config_names_both_missing_keys() {
    let err = load(&example_path(), &MapEnv::default()).unwrap_err();
    let found: Vec<_> = err
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (Some(36), "providers[0].api_key"),
            (Some(46), "providers[1].api_key")
        ]
    );
    assert!(err.errors[0]
        .message
        .contains("\"OPENAI_API_KEY\" is not set"));
    assert!(err.errors[1]
        .message
        .contains("\"ANTHROPIC_API_KEY\" is not set"));
}

#[test]
fn a_missing_file_is_a_config_error() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-moat.toml");
    let err = load(&path, &keys()).unwrap_err();
    assert_eq!(err.origin, path.display().to_string());
    assert_eq!(err.errors.len(), 1);
    assert_eq!(err.errors[0].line, None);
    assert!(err.errors[0]
        .message
        .starts_with("cannot read the config file"));
}

#[test]
fn the_example_does_not_depend_on_where_it_is_parsed_from() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let config = parse(&text, "moat.toml", Path::new("/srv/moat"), &keys()).unwrap();
    assert_eq!(config.store.path, PathBuf::from("/srv/moat/moat.db"));
}

#[test]
fn the_commented_detection_sections_parse_once_uncommented() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let start = text.find("# [detection]").unwrap();
    let mut uncommented = text[..start].to_string();
    for line in text[start..].lines() {
        let body = line.strip_prefix("# ").unwrap_or(line);
        let key = body.split(" = ").next().unwrap_or("");
        let is_toml = body.starts_with('[')
            || (body.contains(" = ") && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        uncommented.push_str(if is_toml { body } else { line });
        uncommented.push('\n');
    }
    let env = MapEnv::new([
        ("OPENAI_API_KEY", "sk-openai"),
        ("ANTHROPIC_API_KEY", "sk-ant"),
        ("MOAT_ADMIN_TOKEN", "a-long-enough-admin-token"),
    ]);
    let config = parse(&uncommented, "moat.toml", Path::new("/srv/moat"), &env)
        .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    let d = &config.detection;
    assert_eq!(d.mode, moat_config::DetectionMode::Monitor);
    assert_eq!(d.allowlist, ["acct_licensed"]);
    assert_eq!(d.queue, 65_536);
    assert_eq!(d.actions, moat_config::ActionsConfig::default());
    assert_eq!(d.model.table["threshold"].as_float(), Some(10.0));
    assert!(config.admin.token.is_some());
}

#[test]
fn governance_example_parses_into_three_workflows_two_providers_and_its_rules() {
    use moat_config::{Criticality, Sensitivity, Unregistered};
    use moat_core::Money;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/governance.toml");
    let config = load(&path, &keys()).unwrap();

    assert_eq!(config.providers.len(), 2);
    assert_eq!(
        config.provider("vllm").unwrap().tags,
        ["self_hosted", "approved"]
    );
    assert_eq!(
        config.provider("vllm").unwrap().base_url,
        "http://10.0.12.5:8000/v1"
    );
    assert_eq!(config.model("gpt-4.1").unwrap().fallbacks, ["qwen-local"]);
    assert_eq!(
        config
            .model("qwen-local")
            .unwrap()
            .context_fallback
            .as_deref(),
        Some("gpt-4.1")
    );

    let names: Vec<_> = config.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        ["claims-triage", "support-replies", "marketing-drafts"]
    );
    let claims = config.workflow("claims-triage").unwrap();
    assert_eq!(
        (claims.criticality, claims.sensitivity),
        (Criticality::High, Sensitivity::Restricted)
    );
    assert!(claims.writes);
    assert_eq!(claims.limits.concurrency, Some(16));
    assert_eq!(claims.budget.daily, Some(Money(150_000_000)));
    assert_eq!(claims.objectives.max_cost_per_request, Some(Money(250_000)));
    let drafts = config.workflow("marketing-drafts").unwrap();
    assert_eq!(
        (drafts.criticality, drafts.sensitivity),
        (Criticality::Low, Sensitivity::Public)
    );
    assert_eq!(drafts.budget.soft_percent, 50);
    let distinct: std::collections::HashSet<_> = config
        .workflows
        .iter()
        .map(|w| (w.criticality, w.sensitivity))
        .collect();
    assert_eq!(
        distinct.len(),
        3,
        "three workflows of different criticality and sensitivity"
    );

    assert_eq!(config.governance.unregistered, Unregistered::Deny);
    assert_eq!(
        config.governance.account_budget.monthly,
        Some(Money(5_000_000_000))
    );
    assert_eq!(
        config
            .account("insurer-prod")
            .unwrap()
            .limits
            .requests_per_minute,
        Some(1200)
    );
    assert_eq!(config.prices[0].input, 200_000);
    let rules: Vec<_> = config
        .routing_rules
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "restricted-data-stays-on-approved-providers",
            "low-criticality-drafts-go-to-the-mini-model",
            "no-bulk-jobs-on-the-large-model"
        ]
    );
    assert_eq!(
        config.failover.timeouts(Criticality::High).first_token,
        Some(Duration::from_secs(8))
    );
    assert_eq!(
        config.failover.timeouts(Criticality::Low).total,
        Some(Duration::from_secs(600))
    );
    assert_eq!(config.failover.timeouts(Criticality::Medium).total, None);
}
