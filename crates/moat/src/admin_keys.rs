//! `moat admin-keys create|list|revoke`: the admin API's keys, each with a role, in the config's
//! store. A running gateway over the same store reads them on every admin call.

use crate::cli::{AdminKeysCommand, CreateAdminKeyArgs};
use crate::serve::load_config;
use anyhow::Context;
use moat_core::{Clock, SystemClock};
use moat_store::{generate_admin_key, AdminKeyRecord, AdminKeyStore, AdminRole, SqliteStore};
use serde_json::json;
use std::process::ExitCode;

/// Runs an admin-keys subcommand.
pub async fn run(command: AdminKeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminKeysCommand::Create(args) => {
            let store = open(&args.config)?;
            let (record, key) = create(&store, &args, SystemClock.now_secs()).await?;
            if args.json {
                println!(
                    "{}",
                    json!({"id": record.id, "key": key, "role": record.role.as_str(), "name": record.name})
                );
            } else {
                println!(
                    "Created admin key {} ({}) for {}.",
                    record.id, record.role, record.name
                );
                println!("Key (shown once, store it now): {key}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminKeysCommand::List(args) => {
            let keys = open(&args.config)?.list_admin_keys().await?;
            if args.json {
                for k in &keys {
                    println!("{}", key_json(k));
                }
            } else {
                print!("{}", table(&keys));
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminKeysCommand::Revoke(args) => {
            let store = open(&args.config)?;
            if store
                .revoke_admin_key(&args.id, SystemClock.now_secs())
                .await?
            {
                println!("Revoked admin key {}.", args.id);
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: no admin key with id {}", args.id);
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

/// Creates an admin key in `store` at `now` (Unix seconds); returns its record and the key itself.
async fn create(
    store: &dyn AdminKeyStore,
    args: &CreateAdminKeyArgs,
    now: i64,
) -> anyhow::Result<(AdminKeyRecord, String)> {
    let role =
        AdminRole::parse(&args.role).with_context(|| format!("unknown role {:?}", args.role))?;
    anyhow::ensure!(!args.name.trim().is_empty(), "--name must not be empty");
    let generated = generate_admin_key(args.name.trim(), role, now);
    store.insert_admin_key(&generated.record).await?;
    Ok((generated.record, generated.key.expose().clone()))
}

fn state(k: &AdminKeyRecord) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    }
}

fn table(keys: &[AdminKeyRecord]) -> String {
    let mut out = format!("{:<14} {:<10} {:<8} NAME\n", "ID", "ROLE", "STATE");
    for k in keys {
        out.push_str(&format!(
            "{:<14} {:<10} {:<8} {}\n",
            k.id,
            k.role.as_str(),
            state(k),
            k.name
        ));
    }
    out
}

fn key_json(k: &AdminKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id, "name": k.name, "role": k.role.as_str(),
        "created_at": k.created_at, "revoked_at": k.revoked_at, "state": state(k),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn args(role: &str, name: &str) -> CreateAdminKeyArgs {
        CreateAdminKeyArgs {
            config: "unused.toml".into(),
            role: role.into(),
            name: name.into(),
            json: false,
        }
    }

    #[tokio::test]
    async fn created_keys_are_stored_hashed_listed_without_secrets_and_revoked() {
        let store = SqliteStore::open_in_memory().unwrap();
        let (record, key) = create(&store, &args("auditor", " alice "), 100)
            .await
            .unwrap();
        assert!(key.starts_with(&format!("moatadm_{}_", record.id)));
        assert_eq!(
            (record.role, record.name.as_str()),
            (AdminRole::Auditor, "alice")
        );
        assert!(moat_policy::hash_key(&key).matches(&record.hash));
        let listed = store.list_admin_keys().await.unwrap();
        assert_eq!(listed, vec![record.clone()]);
        let shown = format!("{}{}", table(&listed), key_json(&listed[0]));
        assert!(!shown.contains(&key), "the key itself is never listed");
        assert!(shown.contains("auditor") && shown.contains("active"));

        assert!(store.revoke_admin_key(&record.id, 200).await.unwrap());
        let listed = store.list_admin_keys().await.unwrap();
        assert_eq!(key_json(&listed[0])["state"], "revoked");
        assert!(create(&store, &args("auditor", "  "), 100).await.is_err());
    }
}
