//! Configs that are valid: defaults, every optional field, interpolation and path resolution.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_config::{parse, Config, KeysConfig, MapEnv, ServerConfig, TargetConfig};
use moat_core::Protocol;

fn ok(text: &str, env: &MapEnv) -> Config {
    match parse(text, "moat.toml", Path::new("/etc/moat"), env) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

const MINIMAL: &str = "[store]\npath = \"moat.db\"\n";

#[test]
fn a_store_path_alone_is_a_complete_config() {
    let config = ok(MINIMAL, &MapEnv::default());
    assert_eq!(config.server, ServerConfig::default());
    assert_eq!(config.keys, KeysConfig::default());
    assert!(config.providers.is_empty());
    assert!(config.models.is_empty());
}

#[test]
fn defaults_are_the_documented_ones() {
    let s = ServerConfig::default();
    assert_eq!(s.listen.to_string(), "127.0.0.1:4000");
    assert_eq!(s.max_body_bytes, 33_554_432);
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert_eq!(s.read_timeout, Duration::from_secs(60));
    assert_eq!(s.stream_keepalive, Duration::from_secs(15));
    assert_eq!(s.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.idle_timeout, Duration::from_secs(60));
    assert_eq!(s.max_connections, 10_000);
    assert_eq!(s.max_connections_per_address, 256);
    assert_eq!(s.http2_max_concurrent_streams, 100);
    assert_eq!(s.auth_failures_per_minute, 30);
    assert_eq!(KeysConfig::default().cache_ttl, Duration::from_secs(5));
}

#[test]
fn store_paths_resolve_against_the_config_directory() {
    let env = MapEnv::new([("DB", "/var/lib/moat/moat.db")]);
    for (written, resolved) in [
        ("moat.db", "/etc/moat/moat.db"),
        ("data/moat.db", "/etc/moat/data/moat.db"),
        ("../moat.db", "/etc/moat/../moat.db"),
        ("/var/moat.db", "/var/moat.db"),
        ("${DB}", "/var/lib/moat/moat.db"),
        (":memory:", ":memory:"),
    ] {
        let config = ok(&format!("[store]\npath = \"{written}\"\n"), &env);
        assert_eq!(config.store.path, PathBuf::from(resolved), "{written}");
    }
}

#[test]
fn every_optional_field_is_read() {
    let text = r#"
[server]
listen = "0.0.0.0:8080"
max_body_bytes = 1024
shutdown_grace = "0s"
read_timeout = "1m 30s"
stream_keepalive = "5s"
header_read_timeout = "3s"
idle_timeout = "2m"
max_connections = 500
max_connections_per_address = 20
http2_max_concurrent_streams = 8
auth_failures_per_minute = 0

[store]
path = "/data/moat.db"

[keys]
cache_ttl = "250ms"

[[providers]]
name = "vllm"
kind = "openai"
base_url = "http://[::1]:8000/v1/"
connect_timeout = "2s"
first_byte_timeout = "3m"
idle_timeout = "45s"
headers = { "x-extra" = "v", "X-Team" = "${TEAM:-core}" }

[[models]]
name = "llama"
targets = [
  { provider = "vllm", model = "llama-3.1-8b", weight = 3 },
  { provider = "vllm", model = "llama-3.1-8b-fp8" },
]
"#;
    let config = ok(text, &MapEnv::default());
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.server.shutdown_grace, Duration::ZERO);
    assert_eq!(config.server.read_timeout, Duration::from_secs(90));
    assert_eq!(config.server.stream_keepalive, Duration::from_secs(5));
    assert_eq!(config.server.header_read_timeout, Duration::from_secs(3));
    assert_eq!(config.server.idle_timeout, Duration::from_secs(120));
    assert_eq!(config.server.max_connections, 500);
    assert_eq!(config.server.max_connections_per_address, 20);
    assert_eq!(config.server.http2_max_concurrent_streams, 8);
    assert_eq!(config.server.auth_failures_per_minute, 0);
    assert_eq!(config.store.path, PathBuf::from("/data/moat.db"));
    assert_eq!(config.keys.cache_ttl, Duration::from_millis(250));

    let p = config.provider("vllm").unwrap();
    assert_eq!(p.kind, Protocol::OpenAi);
    assert_eq!(p.base_url, "http://[::1]:8000/v1");
    assert_eq!(p.api_key, None);
    assert_eq!(p.connect_timeout, Duration::from_secs(2));
    assert_eq!(p.first_byte_timeout, Duration::from_secs(180));
    assert_eq!(p.idle_timeout, Duration::from_secs(45));
    assert_eq!(
        p.headers,
        vec![
            ("X-Team".to_string(), "core".to_string()),
            ("x-extra".to_string(), "v".to_string())
        ]
    );

    let m = config.model("llama").unwrap();
    assert_eq!(
        m.targets,
        vec![
            TargetConfig {
                provider: "vllm".into(),
                model: "llama-3.1-8b".into(),
                weight: 3
            },
            TargetConfig::new("vllm", "llama-3.1-8b-fp8"),
        ]
    );
}

#[test]
fn table_and_inline_forms_are_the_same() {
    let tables = r#"
[store]
path = "moat.db"
[[providers]]
name = "p"
kind = "anthropic"
base_url = "https://a.example"
[providers.headers]
x-a = "1"
[[models]]
name = "m"
[[models.targets]]
provider = "p"
model = "x"
"#;
    let inline = r#"
store = { path = "moat.db" }
providers = [{ name = "p", kind = "anthropic", base_url = "https://a.example", headers = { x-a = "1" } }]
models = [{ name = "m", targets = [{ provider = "p", model = "x" }] }]
"#;
    assert_eq!(
        ok(tables, &MapEnv::default()),
        ok(inline, &MapEnv::default())
    );
}

#[test]
fn string_values_are_interpolated_after_parsing() {
    let text = r#"
[server]
listen = "${HOST:-127.0.0.1}:${PORT}"
[store]
path = "moat.db"
[[providers]]
name = "p"
kind = "${KIND}"
base_url = "${URL}"
api_key = "$${literal}-${KEY}"
"#;
    // A value that looks like TOML stays a plain string.
    let env = MapEnv::new([
        ("PORT", "9000"),
        ("KIND", "anthropic"),
        ("URL", "https://x.example\"\nkind = \"openai"),
        ("KEY", "k"),
    ]);
    let err = parse(text, "moat.toml", Path::new(""), &env).unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!(err.errors[0].field, "providers[0].base_url");

    let env = MapEnv::new([
        ("PORT", "9000"),
        ("KIND", "anthropic"),
        ("URL", "https://x.example"),
        ("KEY", "k"),
    ]);
    let config = ok(text, &env);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9000");
    let p = &config.providers[0];
    assert_eq!(p.kind, Protocol::Anthropic);
    assert_eq!(p.base_url, "https://x.example");
    assert_eq!(p.api_key.as_ref().unwrap().expose(), "${literal}-k");
}

#[test]
fn an_empty_api_key_means_none() {
    let text = r#"
[store]
path = "moat.db"
[[providers]]
name = "local"
kind = "openai"
base_url = "http://localhost:11434/v1"
api_key = "${OLLAMA_KEY:-}"
"#;
    assert_eq!(ok(text, &MapEnv::default()).providers[0].api_key, None);
    let env = MapEnv::new([("OLLAMA_KEY", "abc")]);
    let config = ok(text, &env);
    assert_eq!(
        config.providers[0].api_key.as_ref().unwrap().expose(),
        "abc"
    );
    // Debug never shows the key.
    assert!(!format!("{config:?}").contains("abc"));
}

#[test]
fn fallback_chains_without_cycles_are_fine() {
    let text = r#"
[store]
path = "moat.db"
[[providers]]
name = "p"
kind = "openai"
base_url = "https://x.example"
[[models]]
name = "a"
targets = [{ provider = "p", model = "a" }]
fallbacks = ["b", "c"]
[[models]]
name = "b"
targets = [{ provider = "p", model = "b" }]
fallbacks = ["c"]
[[models]]
name = "c"
targets = [{ provider = "p", model = "c" }]
"#;
    let config = ok(text, &MapEnv::default());
    assert_eq!(config.model("a").unwrap().fallbacks, vec!["b", "c"]);
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let config = ok(&format!("\u{feff}{MINIMAL}"), &MapEnv::default());
    assert_eq!(config.store.path, PathBuf::from("/etc/moat/moat.db"));
}

#[test]
fn filters_params_and_tiers_are_read() {
    use moat_config::{AppliesTo, FilterAction, ParamsConfig};
    let text = r#"
[store]
path = "moat.db"

[[filters]]
name = "extraction"
file = "rules/extraction.txt"
action = "block"

[[filters]]
name = "watch"
file = "${RULES}/watch.txt"
action = "flag"
applies_to = ["user"]
tiers = ["default", "research"]
workflows = ["support-bot"]

[params]
max_top_logprobs = 2
max_tokens = 32768

[[tiers]]
name = "research"
accounts = ["acct_123", "acct_456"]
[tiers.params]
allow_logit_bias_with_logprobs = true
max_top_logprobs = "unlimited"

[[tiers]]
name = "internal"
"#;
    let config = ok(text, &MapEnv::new([("RULES", "/srv/rules")]));
    assert_eq!(config.filters.len(), 2);
    let f = &config.filters[0];
    assert_eq!(f.name, "extraction");
    assert_eq!(f.file, PathBuf::from("/etc/moat/rules/extraction.txt"));
    assert_eq!(f.action, FilterAction::Block);
    assert_eq!(f.applies_to, AppliesTo::default());
    assert!(f.tiers.is_empty() && f.workflows.is_empty());
    let w = &config.filters[1];
    assert_eq!(w.file, PathBuf::from("/srv/rules/watch.txt"));
    assert_eq!(w.action, FilterAction::Flag);
    assert_eq!(
        w.applies_to,
        AppliesTo {
            system: false,
            user: true
        }
    );
    assert_eq!(w.tiers, ["default", "research"]);
    assert_eq!(w.workflows, ["support-bot"]);

    let base = ParamsConfig {
        max_top_logprobs: Some(2),
        max_tokens: Some(32768),
        ..ParamsConfig::default()
    };
    assert_eq!(config.params, base);
    assert_eq!(config.tiers.len(), 2);
    assert_eq!(config.tiers[0].name, "research");
    assert_eq!(config.tiers[0].accounts, ["acct_123", "acct_456"]);
    // Omitted fields inherit [params]; "unlimited" lifts a cap.
    assert_eq!(
        config.tiers[0].params,
        ParamsConfig {
            allow_logit_bias_with_logprobs: true,
            max_top_logprobs: None,
            ..base.clone()
        }
    );
    assert_eq!(config.tiers[1].params, base);
    assert!(config.tiers[1].accounts.is_empty());
}

#[test]
fn without_guard_sections_the_safe_defaults_apply() {
    let config = ok(MINIMAL, &MapEnv::default());
    assert!(config.filters.is_empty());
    assert!(config.tiers.is_empty());
    let p = config.params;
    assert_eq!(
        (p.max_top_logprobs, p.max_n, p.max_tokens),
        (Some(5), Some(8), None)
    );
    assert!(!p.allow_logit_bias_with_logprobs && !p.allow_prompt_logprobs && !p.strip_reasoning);
}
