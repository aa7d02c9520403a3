//! `moat keys create|list|revoke`: virtual keys in the config's store.

use crate::cli::{CreateKeyArgs, KeysCommand};
use crate::serve::load_config;
use anyhow::Context;
use moat_core::{Clock, SystemClock};
use moat_policy::{generate_key, KeyRecord};
use moat_store::{KeyStore, SqliteStore};
use serde_json::json;
use std::process::ExitCode;

/// Runs a keys subcommand.
pub async fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => {
            let store = open(&args.config)?;
            let created = create(&store, &args).await?;
            if args.json {
                println!("{}", json!({"id": created.0, "key": created.1}));
            } else {
                println!("Created key {} for account {}.", created.0, args.account);
                println!("Key (shown once, store it now): {}", created.1);
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List(args) => {
            let keys = open(&args.config)?.list_keys().await?;
            let now = SystemClock.now_secs();
            if args.json {
                for k in &keys {
                    println!("{}", key_json(k, now));
                }
            } else {
                println!(
                    "{:<14} {:<16} {:<16} {:<8} MODELS",
                    "ID", "ACCOUNT", "WORKFLOW", "STATE"
                );
                for k in &keys {
                    let models = if k.models.is_empty() {
                        "*".to_string()
                    } else {
                        k.models.join(",")
                    };
                    let workflow = k.workflow.as_deref().unwrap_or("-");
                    println!(
                        "{:<14} {:<16} {:<16} {:<8} {}",
                        k.id,
                        k.account,
                        workflow,
                        state(k, now),
                        models
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke(args) => {
            let store = open(&args.config)?;
            if store.revoke_key(&args.id, SystemClock.now_secs()).await? {
                println!("Revoked key {}.", args.id);
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: no key with id {}", args.id);
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn open(config: &std::path::Path) -> anyhow::Result<SqliteStore> {
    let config = load_config(config)?;
    SqliteStore::open(&config.store.path)
        .with_context(|| format!("opening store {}", config.store.path.display()))
}

/// Creates a key in `store`; returns its id and the key itself.
pub async fn create(
    store: &dyn KeyStore,
    args: &CreateKeyArgs,
) -> anyhow::Result<(String, String)> {
    if let Some(workflow) = &args.workflow {
        moat_config::check_workflow_name(workflow)
            .map_err(|why| anyhow::anyhow!("--workflow {why}"))?;
    }
    let now = SystemClock.now_secs();
    let generated = generate_key();
    let expires_at = match args.expires_in {
        Some(d) => Some(
            now.saturating_add(i64::try_from(d.as_secs()).context("--expires-in is too long")?),
        ),
        None => None,
    };
    let record = KeyRecord {
        workflow: args.workflow.clone(),
        models: args
            .models
            .iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect(),
        cidrs: args.cidr.clone(),
        expires_at,
        ..generated.record(&args.account, now)
    };
    store.insert_key(&record).await?;
    Ok((generated.id, generated.key.expose().clone()))
}

fn state(k: &KeyRecord, now: i64) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn key_json(k: &KeyRecord, now: i64) -> serde_json::Value {
    json!({
        "id": k.id, "account": k.account, "workflow": k.workflow, "models": k.models,
        "cidrs": k.cidrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "created_at": k.created_at, "expires_at": k.expires_at, "revoked_at": k.revoked_at,
        "state": state(k, now),
    })
}
