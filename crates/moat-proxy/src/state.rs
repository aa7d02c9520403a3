//! Everything a request needs, built once from the config and shared by all requests.

use crate::detection::Detection;
use crate::governance::Governance;
use crate::routing::Routes;
use crate::upstream::Provider;
use moat_config::{Config, ConfigError};
use moat_core::{Clock, SystemClock};
use moat_guard::{Guard, GuardError};
use moat_policy::KeyHash;
use moat_store::{KeyCache, KeyStore, SpendStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// The gateway's shared state: config and what is derived from it, side by side so they never
/// disagree.
pub struct AppState {
    /// The validated config.
    pub config: Arc<Config>,
    /// Key lookup with its cache.
    pub keys: Arc<KeyCache>,
    /// Key management for the admin API; its changes make `keys` forget the key.
    pub(crate) key_service: moat_admin::KeyService,
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
    /// The distillation detector: features, the board of actions, the worker's queue.
    pub detection: Detection,
    /// Workflows, routing rules, limits, budgets and prices.
    pub governance: Governance,
    /// Retries, backoff, the retry budget and timeouts by criticality.
    pub failover: Arc<crate::failover::Failover>,
    /// Workflow latency and cost objectives: incidents and routing around.
    pub guardrails: Arc<crate::objectives::Guardrails>,
    /// SHA-256 of the admin token, when the admin API is on.
    pub(crate) admin_token: Option<KeyHash>,
    /// Where budget spend is kept across restarts; `None` keeps it in memory only.
    /// The audit log's writer, when an audit store is attached and `audit.enabled`.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// Where workflows registered at run time are kept; `None` when only the config's exist.
    pub(crate) workflow_store: Option<Arc<dyn moat_store::WorkflowStore>>,
    /// The admin keys with their roles; `None` leaves the admin API to `[admin] token` alone.
    pub(crate) admin_keys: Option<Arc<dyn moat_store::AdminKeyStore>>,
    /// The audit log's store, read by the admin API; set with the writer (`audit`).
    pub(crate) audit_store: Option<Arc<dyn moat_store::AuditStore>>,
    pub(crate) spend_store: Option<Arc<dyn SpendStore>>,
    /// Per-address limits on failed authentications, data plane and admin API.
    pub(crate) refusals: crate::auth::Refusals,
}

/// Why the state could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A filter's pattern file cannot be read or compiled.
    #[error("cannot load the filters:\n{0}")]
    Guard(#[from] GuardError),
    /// `[detection.model]` does not fit the detector, or the detector cannot start.
    #[error("cannot start the detector: {0}")]
    Detection(ConfigError),
    /// The built-in price table does not load (a build defect).
    #[error("cannot load the price table: {0}")]
    Prices(#[from] moat_policy::price::PriceError),
    /// The audit log's tail cannot be read, so the chain cannot be continued.
    #[error("cannot open the audit log: {0}")]
    Audit(moat_store::StoreError),
    /// The stored workflows cannot be read. Starting anyway would treat their keys as
    /// unregistered.
    #[error("cannot load the stored workflows: {0}")]
    Workflows(moat_store::StoreError),
    /// The saved budget spend cannot be read. Starting anyway would grant every budget afresh.
    #[error("cannot load the saved budget spend: {0}")]
    Spend(StoreError),
}

impl From<ConfigError> for StateError {
    fn from(e: ConfigError) -> Self {
        StateError::Detection(e)
    }
}

impl AppState {
    /// Builds the state for `config` over `store`. Fails when a filter's pattern file cannot be
    /// read or compiled (the error names every such file and line), or when `[detection.model]`
    /// does not fit the detector's settings.
    pub fn new(config: Config, store: Arc<dyn KeyStore>) -> Result<AppState, StateError> {
        Self::with_clock(config, store, Arc::new(SystemClock))
    }

    /// As [`AppState::new`], with an injected clock.
    pub fn with_clock(
        config: Config,
        store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, StateError> {
        let guard = Guard::from_config(&config)?;
        let detection = Detection::new(&config.detection)?;
        let admin_token = config
            .admin
            .token
            .as_ref()
            .map(|t| moat_policy::hash_key(t.expose()));
        // Install the metrics recorder before the first request records anything.
        let _ = crate::telemetry::prometheus();
        let mut providers = HashMap::new();
        for p in &config.providers {
            providers.insert(p.name.clone(), Arc::new(Provider::new(p, &config.failover)));
        }
        let routes = Routes::new(&config, &providers);
        let governance = Governance::new(&config, Arc::clone(&clock))?;
        let ttl = config.keys.cache_ttl;
        let keys = Arc::new(KeyCache::new(Arc::clone(&store), ttl, Arc::clone(&clock)));
        let cache = Arc::clone(&keys);
        let key_service = moat_admin::KeyService::new(Arc::clone(&store), Arc::clone(&clock))
            .on_change(Arc::new(move |id| cache.forget(id)));
        Ok(AppState {
            keys,
            key_service,
            store,
            routes,
            guard,
            started_at: clock.now_secs(),
            detection,
            governance,
            guardrails: Arc::new(crate::objectives::Guardrails::new(Arc::clone(&clock))),
            failover: Arc::new(crate::failover::Failover::new(
                &config.failover,
                Arc::clone(&clock),
            )),
            admin_token,
            spend_store: None,
            refusals: crate::auth::Refusals::new(config.server.auth_failures_per_minute),
            workflow_store: None,
            admin_keys: None,
            audit_store: None,
            audit: None,
            clock,
            config: Arc::new(config),
        })
    }

    /// Keeps budget spend in `spend` across restarts: loads the spend of the windows still
    /// current into the ledger now (after pruning windows older than last month), and
    /// [`serve`](crate::serve) saves it every [`SPEND_SAVE_INTERVAL`](crate::SPEND_SAVE_INTERVAL)
    /// and once more after draining. Fails if the
    /// saved spend cannot be read, rather than grant every budget afresh.
    pub async fn with_spend_store(
        mut self,
        spend: Arc<dyn SpendStore>,
    ) -> Result<AppState, StateError> {
        crate::spend::restore(&self.governance, spend.as_ref(), self.clock.now_ms())
            .await
            .map_err(StateError::Spend)?;
        self.spend_store = Some(spend);
        Ok(self)
    }

    /// Adds the workflows registered at run time in `store` to the inventory now, and lets the
    /// admin API register and remove them; [`serve`](crate::serve) reads the store again every
    /// [`WORKFLOW_REFRESH_INTERVAL`](crate::WORKFLOW_REFRESH_INTERVAL). Fails if the store cannot
    /// be read, rather than treat those workflows' keys as unregistered.
    pub async fn with_workflow_store(
        mut self,
        store: Arc<dyn moat_store::WorkflowStore>,
    ) -> Result<AppState, StateError> {
        let taken = crate::workflows::reload(&self, store.as_ref())
            .await
            .map_err(StateError::Workflows)?;
        tracing::info!(workflows = taken, "loaded the stored workflows");
        self.workflow_store = Some(store);
        Ok(self)
    }

    /// [`AppState::with_audit_store_keyed`] with an audit key drawn for this process only (its
    /// checkpoints, heads and digests cannot be checked after it ends): for tests and
    /// in-memory stores. `moat serve` passes the key file's.
    pub async fn with_audit_store(
        self,
        store: Arc<dyn moat_store::AuditStore>,
    ) -> Result<AppState, StateError> {
        let keys = moat_audit::AuditKeys::from_seed(rand::random());
        self.with_audit_store_keyed(store, Arc::new(keys)).await
    }

    /// Writes an audit record of every request to `store` (unless `audit.enabled = false`),
    /// continuing its hash chain after checking its checkpoints (and witness) against `keys`;
    /// starts the writer task.
    pub async fn with_audit_store_keyed(
        mut self,
        store: Arc<dyn moat_store::AuditStore>,
        keys: Arc<moat_audit::AuditKeys>,
    ) -> Result<AppState, StateError> {
        if self.config.audit.enabled {
            let poster = self
                .config
                .audit
                .witness
                .as_ref()
                .and_then(|w| w.url.as_ref())
                .map(|_| {
                    Arc::new(crate::audit::WitnessPoster::new())
                        as Arc<dyn crate::audit::HeadPoster>
                });
            let (log, _task) = crate::audit::AuditLog::start(
                Arc::clone(&store),
                self.config.audit.clone(),
                Arc::clone(&self.clock),
                keys,
                poster,
            )
            .await
            .map_err(StateError::Audit)?;
            self.audit = Some(log);
            self.audit_store = Some(store);
        }
        Ok(self)
    }

    /// Lets the admin keys in `store` (`moat admin-keys create`) open the admin API, each with
    /// its role, beside `[admin] token`. They are read from the store on every admin call, so a
    /// key created or revoked takes effect at once.
    pub fn with_admin_key_store(mut self, store: Arc<dyn moat_store::AdminKeyStore>) -> AppState {
        self.admin_keys = Some(store);
        self
    }
}
