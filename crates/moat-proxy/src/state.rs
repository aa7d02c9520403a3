//! Everything a request needs, built once from the config and shared by all requests.

use crate::auth::KeyCache;
use crate::routing::Routes;
use crate::upstream::Provider;
use moat_config::Config;
use moat_core::{Clock, SystemClock};
use moat_guard::{Guard, GuardError};
use moat_store::KeyStore;
use std::collections::HashMap;
use std::sync::Arc;

/// The gateway's shared state: config and what is derived from it, side by side so they never
/// disagree.
pub struct AppState {
    /// The validated config.
    pub config: Arc<Config>,
    /// Key lookup with its cache.
    pub keys: KeyCache,
    /// The key store, for readiness checks.
    pub store: Arc<dyn KeyStore>,
    /// Model routes.
    pub routes: Routes,
    /// Compiled filters and the tiers' parameter policies.
    pub guard: Guard,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// When the gateway started, Unix seconds (the `created` of listed models).
    pub started_at: i64,
}

impl AppState {
    /// Builds the state for `config` over `store`. Fails when a filter's pattern file cannot be
    /// read or compiled; the error names every such file and line.
    pub fn new(config: Config, store: Arc<dyn KeyStore>) -> Result<AppState, GuardError> {
        Self::with_clock(config, store, Arc::new(SystemClock))
    }

    /// As [`AppState::new`], with an injected clock.
    pub fn with_clock(
        config: Config,
        store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, GuardError> {
        let guard = Guard::from_config(&config)?;
        // Install the metrics recorder before the first request records anything.
        let _ = crate::telemetry::prometheus();
        let mut providers = HashMap::new();
        for p in &config.providers {
            providers.insert(p.name.clone(), Arc::new(Provider::new(p)));
        }
        let routes = Routes::new(&config, &providers);
        Ok(AppState {
            keys: KeyCache::new(Arc::clone(&store), config.keys.cache_ttl),
            store,
            routes,
            guard,
            started_at: clock.now_secs(),
            clock,
            config: Arc::new(config),
        })
    }
}
