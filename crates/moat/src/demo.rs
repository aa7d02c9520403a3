//! `moat demo`: the gateway in front of the built-in simulated provider, with a temporary store and
//! a ready key, offline and without a config file of the user's.

use crate::cli::{CreateKeyArgs, DemoArgs};
use crate::serve::{load_config, serve_config};
use anyhow::Context;
use moat_store::SqliteStore;
use moat_testkit::{SimOptions, SimUpstream};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

/// The key the simulated provider expects: proves the gateway sends the provider's key, not the
/// client's.
const SIM_UPSTREAM_KEY: &str = "sim-upstream-key";

/// Model names the demo serves, and what each shows.
const DEMO_MODELS: &[(&str, &str)] = &[
    (
        "gpt-4o-mini",
        "OpenAI-kind provider; falls back to claude-haiku",
    ),
    (
        "claude-haiku",
        "Anthropic-kind provider (OpenAI clients get it translated)",
    ),
    (
        "gpt-4.1",
        "OpenAI-kind provider, no fallback (fields it cannot honour are refused)",
    ),
    ("text-embedding-3-small", "embeddings, OpenAI-kind provider"),
];

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let sim = SimUpstream::start_with(SimOptions {
        api_key: Some(SIM_UPSTREAM_KEY.into()),
        ..SimOptions::default()
    })
    .await
    .context("starting the simulated provider")?;
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("moat-demo-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let config_path = dir.join("moat.toml");
    std::fs::write(&config_path, demo_config(&sim, args.listen))
        .with_context(|| format!("writing {}", config_path.display()))?;
    let config = load_config(&config_path)?;
    let store: std::sync::Arc<dyn moat_store::KeyStore> =
        std::sync::Arc::new(SqliteStore::open(&config.store.path)?);
    let key_args = CreateKeyArgs {
        config: config_path.clone(),
        account: "demo".into(),
        workflow: None,
        models: vec![],
        cidr: vec![],
        expires_in: None,
        json: false,
    };
    let (_, key) = crate::keys::create(std::sync::Arc::clone(&store), &key_args).await?;
    drop(store);

    let json = args.json;
    let announce = move |addr: SocketAddr| {
        let base = format!("http://{addr}");
        if json {
            let models: Vec<&str> = DEMO_MODELS.iter().map(|(m, _)| *m).collect();
            println!(
                "{}",
                json!({"base_url": format!("{base}/v1"), "anthropic_base_url": base, "key": key,
                       "config": config_path, "models": models})
            );
        } else {
            println!("{}", banner(&base, &key, &config_path));
        }
    };
    serve_config(config, Some(Box::new(announce))).await?;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The demo's config: two providers (one per protocol) on the simulator, four models.
fn demo_config(sim: &SimUpstream, listen: SocketAddr) -> String {
    format!(
        r#"# Written by `moat demo`: the gateway in front of moat's built-in simulated provider.
[server]
listen = "{listen}"
shutdown_grace = "5s"

[store]
path = "moat.db"

[keys]
cache_ttl = "1s"

[[providers]]
name = "sim-openai"
kind = "openai"
base_url = "{openai}"
api_key = "{SIM_UPSTREAM_KEY}"

[[providers]]
name = "sim-anthropic"
kind = "anthropic"
base_url = "{anthropic}"
api_key = "{SIM_UPSTREAM_KEY}"

[[models]]
name = "gpt-4o-mini"
targets = [{{ provider = "sim-openai", model = "sim-gpt-4o-mini" }}]
fallbacks = ["claude-haiku"]

[[models]]
name = "claude-haiku"
targets = [{{ provider = "sim-anthropic", model = "sim-claude-haiku" }}]

[[models]]
name = "gpt-4.1"
targets = [{{ provider = "sim-openai", model = "sim-gpt-4.1" }}]

[[models]]
name = "text-embedding-3-small"
targets = [{{ provider = "sim-openai", model = "sim-embedding" }}]

# The simulated models cost what the models they stand in for cost (USD per million tokens),
# so budgets and the spend view count them.
[[prices]]
model = "sim-gpt-4o-mini"
input = 0.15
output = 0.60

[[prices]]
model = "sim-gpt-4.1"
input = 2.00
output = 8.00

[[prices]]
model = "sim-claude-haiku"
input = 0.80
output = 4.00

# Two registered workflows to try governance with: `moat keys create --workflow demo-agent`.
# The demo's own key belongs to none (unregistered traffic is allowed by default).
[[workflows]]
name = "demo-agent"
owner = "you@example.com"
description = "An agent limited to 60 requests a minute and a dollar a day"
criticality = "medium"
sensitivity = "internal"
limits = {{ requests_per_minute = 60 }}
budget = {{ daily = 1.00 }}

[[workflows]]
name = "demo-penny"
owner = "you@example.com"
description = "A workflow whose daily budget (a thousandth of a cent) no request fits in"
criticality = "low"
sensitivity = "public"
budget = {{ daily = 0.00001 }}
"#,
        openai = sim.openai_base_url(),
        anthropic = sim.anthropic_base_url(),
    )
}

fn banner(base: &str, key: &str, config: &Path) -> String {
    let config = config.display();
    let models: String = DEMO_MODELS
        .iter()
        .map(|(m, what)| format!("    {m:<24} {what}\n"))
        .collect();
    format!(
        r#"moat demo is running (simulated provider, nothing leaves this machine).

  Base URL (OpenAI SDKs):     {base}/v1
  Base URL (Anthropic SDKs):  {base}
  Key:                        {key}
  Config:                     {config}
  Models:
{models}
Try it:

  curl {base}/v1/chat/completions \
    -H "Authorization: Bearer {key}" -H "content-type: application/json" \
    -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hello"}}]}}'

  curl {base}/v1/messages \
    -H "x-api-key: {key}" -H "anthropic-version: 2023-06-01" -H "content-type: application/json" \
    -d '{{"model": "claude-haiku", "max_tokens": 64, "messages": [{{"role": "user", "content": "Hello"}}]}}'

  python3 -c 'from openai import OpenAI; c = OpenAI(base_url="{base}/v1", api_key="{key}"); print(c.chat.completions.create(model="claude-haiku", messages=[{{"role":"user","content":"Hello"}}]).choices[0].message.content)'

  python3 -c 'import anthropic; c = anthropic.Anthropic(base_url="{base}", api_key="{key}"); print(c.messages.create(model="gpt-4o-mini", max_tokens=64, messages=[{{"role":"user","content":"Hello"}}]).content[0].text)'

Press Ctrl-C to stop."#
    )
}
