//! `moat serve` and `moat config check`.

use crate::cli::ServeArgs;
use anyhow::Context;
use moat_config::{Config, ProcessEnv};
use moat_proxy::AppState;
use moat_store::SqliteStore;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Loads and validates a config file; every error is reported at once.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    let config =
        moat_config::load(path, &ProcessEnv).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    // The PostgreSQL backend exists (`moat-store-postgres`) but is not wired in yet; refuse
    // rather than fall back to a SQLite file the operator did not name.
    if config.store.url.is_some() {
        anyhow::bail!(
            "{}: [store] url (PostgreSQL) is not supported by this moat yet; use [store] path",
            path.display()
        );
    }
    Ok(config)
}

/// Opens the config's SQLite store (keys, spend, workflows, the audit log).
pub fn open_store(config: &Config) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&config.store.path)
        .with_context(|| format!("opening store {}", config.store.path.display()))
}

/// `moat config check`: prints what the config defines, or every error in it and in the pattern
/// files its filters name (which `serve` would load at startup).
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match moat_config::load(path, &ProcessEnv) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Err(errors) = moat_guard::Guard::from_config(&config) {
        let n = errors.errors.len();
        let plural = if n == 1 { "" } else { "s" };
        eprintln!(
            "{errors}\n{n} error{plural} in the pattern files of {}",
            path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Err(e) = moat_proxy::detector_config(&config.detection.model) {
        let line = e.line.map(|l| format!("{l}:")).unwrap_or_default();
        eprintln!(
            "{}:{line} {}: {}\n1 error in {}",
            path.display(),
            e.field,
            e.message,
            path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    println!(
        "{}: ok ({} providers, {} models, {}, {}, listen {}, detection {})",
        path.display(),
        config.providers.len(),
        config.models.len(),
        count(config.filters.len(), "filter"),
        count(config.tiers.len() + 1, "tier"),
        config.server.listen,
        config.detection.mode.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

/// `moat serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(&args.config)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    serve_config(config, None).await?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the store, restores the budget spend saved in it, binds the listener and serves until
/// SIGTERM or Ctrl-C, saving the spend as it goes and once more at the end. `on_ready` runs once
/// the listener is bound, with its address.
pub async fn serve_config(
    config: Config,
    on_ready: Option<Box<dyn FnOnce(std::net::SocketAddr) + Send>>,
) -> anyhow::Result<()> {
    // One serving gateway per store: it is the audit chain's only writer. Held until the
    // process ends; CLI commands do not take it, so they still work while it serves.
    let _serving = if config.store.path == Path::new(":memory:") {
        None
    } else {
        Some(
            SqliteStore::lock_for_serving(&config.store.path)
                .with_context(|| format!("cannot serve from {}", config.store.path.display()))?,
        )
    };
    let store = Arc::new(open_store(&config)?);
    // A store that cannot be written stops the start, before anything is answered.
    store.check_writable().await.with_context(|| {
        format!(
            "the store {} cannot be written",
            config.store.path.display()
        )
    })?;
    let audit_keys = if config.audit.enabled {
        let keys = crate::audit_key::load_or_create(&config)?;
        tracing::info!(public_key = %keys.public_hex(), "audit key loaded");
        keys
    } else {
        crate::audit_key::ephemeral()
    };
    let audit_keys = Arc::new(audit_keys);
    let listen = config.server.listen;
    let grace = config.server.shutdown_grace;
    let config_max = config.server.max_connections;
    // The one SQLite file keeps the keys and the budget spend, so a restart forgets neither.
    let state = AppState::new(config, store.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_spend_store(store.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_workflow_store(store.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_audit_store_keyed(store.clone(), audit_keys)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_admin_key_store(store);
    // Every connection holds a file descriptor: the connection caps, not a soft limit of 1024,
    // should decide how many clients are served.
    match moat_listen::raise_fd_limit() {
        Ok((before, after)) => tracing::info!(
            before,
            after,
            max_connections = config_max,
            "file descriptor limit"
        ),
        Err(e) => tracing::warn!(error = %e, "could not raise the file descriptor limit"),
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "moat listening");
    if let Some(f) = on_ready {
        f(addr);
    }
    moat_proxy::serve(listener, Arc::new(state), grace, shutdown_signal()).await?;
    tracing::info!("moat stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
