//! `moat keys create|list|revoke|rotate`: virtual keys in the config's store, through the same
//! key service as the admin API.

use crate::cli::{CreateKeyArgs, KeysCommand, RotateKeyArgs};
use crate::serve::load_config;
use anyhow::Context;
use moat_admin::{KeyService, KeyView, NewKey};
use moat_core::SystemClock;
use moat_store::{KeyStore, SqliteStore};
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs a keys subcommand.
pub async fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => {
            let store = open(&args.config)?;
            let created = create(store, &args).await?;
            if args.json {
                println!("{}", json!({"id": created.0, "key": created.1}));
            } else {
                println!("Created key {} for account {}.", created.0, args.account);
                println!("Key (shown once, store it now): {}", created.1);
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List(args) => {
            let keys = service(open(&args.config)?).list().await?;
            if args.json {
                for k in &keys {
                    println!("{}", json!(k));
                }
            } else {
                print_table(&keys);
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke(args) => {
            let store = open(&args.config)?;
            match service(store).revoke(&args.id).await {
                Ok(_) => {
                    println!("Revoked key {}.", args.id);
                    Ok(ExitCode::SUCCESS)
                }
                Err(moat_admin::KeyError::NotFound(_)) => {
                    eprintln!("error: no key with id {}", args.id);
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        KeysCommand::Rotate(args) => rotate(args).await,
    }
}

/// Creates a key in `store` through the key service; returns its id and the key itself.
pub async fn create(
    store: Arc<dyn KeyStore>,
    args: &CreateKeyArgs,
) -> anyhow::Result<(String, String)> {
    let new = NewKey {
        account: args.account.clone(),
        workflow: args.workflow.clone(),
        models: args.models.clone(),
        cidrs: args.cidr.clone(),
        expires_in: args.expires_in,
    };
    let issued = service(store).create(new).await?;
    Ok((issued.view.id, issued.key.expose().clone()))
}

async fn rotate(args: RotateKeyArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.config)?;
    let issued = match service(store).rotate(&args.id, args.grace).await {
        Ok(issued) => issued,
        Err(e @ (moat_admin::KeyError::NotFound(_) | moat_admin::KeyError::Revoked(_))) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let until = issued.old_valid_until.unwrap_or_default();
    if args.json {
        let body =
            json!({"id": issued.view.id, "key": issued.key.expose(), "old_key_valid_until": until});
        println!("{body}");
    } else {
        println!("Rotated key {}.", issued.view.id);
        println!(
            "New key (shown once, store it now): {}",
            issued.key.expose()
        );
        println!("The old key works until {} (Unix {until}).", rfc3339(until));
    }
    Ok(ExitCode::SUCCESS)
}

/// The key service over a store the CLI opened. It has no cache to tell: a running gateway sees
/// a revocation within `keys.cache_ttl`, and a rotation's new secret at once.
fn service(store: Arc<dyn KeyStore>) -> KeyService {
    KeyService::new(store, Arc::new(SystemClock))
}

fn open(config: &std::path::Path) -> anyhow::Result<Arc<dyn KeyStore>> {
    let config = load_config(config)?;
    let store = SqliteStore::open(&config.store.path)
        .with_context(|| format!("opening store {}", config.store.path.display()))?;
    Ok(Arc::new(store))
}

fn print_table(keys: &[KeyView]) {
    println!(
        "{:<14} {:<16} {:<16} {:<8} {:<22} MODELS",
        "ID", "ACCOUNT", "WORKFLOW", "STATE", "OLD SECRET UNTIL"
    );
    for k in keys {
        let models = if k.models.is_empty() {
            "*".to_string()
        } else {
            k.models.join(",")
        };
        let workflow = k.workflow.as_deref().unwrap_or("-");
        let grace = k.grace_until.map_or_else(|| "-".to_string(), rfc3339);
        println!(
            "{:<14} {:<16} {:<16} {:<8} {:<22} {}",
            k.id,
            k.account,
            workflow,
            k.state.as_str(),
            grace,
            models
        );
    }
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}
