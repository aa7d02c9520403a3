//! Test harness: the real gateway on port 0 in front of the simulated provider on port 0.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_config::{
    AdminConfig, Config, DetectionConfig, KeysConfig, ModelConfig, ParamsConfig, ProviderConfig,
    ServerConfig, StoreConfig, TargetConfig,
};
use moat_core::{Clock, Protocol, Secret, SystemClock};
use moat_policy::{generate_key, KeyRecord};
use moat_proxy::{AppState, Gateway};
use moat_store::{KeyStore, MemoryStore};
use moat_testkit::{SimOptions, SimUpstream};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The provider key the simulator demands; clients never know it.
pub const UPSTREAM_KEY: &str = "upstream-secret";

pub struct Harness {
    pub sim: SimUpstream,
    pub gateway: Gateway,
    pub store: Arc<MemoryStore>,
    pub key: String,
    pub http: reqwest::Client,
}

#[derive(Default)]
pub struct KeyScope {
    pub models: Vec<String>,
    pub cidrs: Vec<&'static str>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key's account; `acct` when not set.
    pub account: Option<&'static str>,
    pub workflow: Option<&'static str>,
    /// The key's creation time, Unix seconds; 0 when not set.
    pub created_at: Option<i64>,
}

fn provider(name: &str, kind: Protocol, base_url: String) -> ProviderConfig {
    let mut p = ProviderConfig::new(name, kind, base_url);
    p.api_key = Some(Secret::new(UPSTREAM_KEY.to_string()));
    p.first_byte_timeout = Duration::from_millis(1500);
    p.idle_timeout = Duration::from_millis(800);
    p.connect_timeout = Duration::from_millis(500);
    p
}

pub fn model(name: &str, provider: &str, target: &str, fallbacks: &[&str]) -> ModelConfig {
    let mut m = ModelConfig::new(name, vec![TargetConfig::new(provider, target)]);
    m.fallbacks = fallbacks.iter().map(|s| s.to_string()).collect();
    m
}

/// The harness config: `gpt` (OpenAI-kind), `claude` (Anthropic-kind), `emb`, `primary` that falls
/// back to `claude`, and `dead` that points at a closed port.
pub fn config(sim: &SimUpstream, dead_port: u16) -> Config {
    Config {
        server: ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            stream_keepalive: Duration::from_millis(100),
            trusted_proxies: vec![],
            ..ServerConfig::default()
        },
        store: StoreConfig {
            path: "unused.db".into(),
            url: None,
        },
        keys: KeysConfig {
            cache_ttl: Duration::ZERO,
        },
        providers: vec![
            provider("oa", Protocol::OpenAi, sim.openai_base_url()),
            provider("an", Protocol::Anthropic, sim.anthropic_base_url()),
            provider(
                "down",
                Protocol::OpenAi,
                format!("http://127.0.0.1:{dead_port}/v1"),
            ),
        ],
        models: vec![
            model("gpt", "oa", "sim-gpt", &[]),
            model("claude", "an", "sim-claude", &[]),
            model("emb", "oa", "sim-emb", &[]),
            model("primary", "oa", "sim-primary", &["claude"]),
            model("dead", "down", "nothing", &[]),
            model("dead-then-gpt", "down", "nothing", &["gpt"]),
        ],
        filters: vec![],
        params: ParamsConfig::default(),
        tiers: vec![],
        detection: DetectionConfig::default(),
        admin: AdminConfig::default(),
        governance: Default::default(),
        workflows: vec![],
        accounts: vec![],
        prices: vec![],
        routing_rules: vec![],
        failover: Default::default(),
        audit: Default::default(),
    }
}

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Harness {
        Self::start_with_clock(edit, Arc::new(SystemClock)).await
    }

    /// As [`Harness::start_with`], with the gateway reading time from `clock`.
    pub async fn start_with_clock(
        edit: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
    ) -> Harness {
        Self::launch(edit, clock, Arc::new(MemoryStore::new()), Stores::KeysOnly).await
    }

    /// Starts the sim and a gateway over `store`, attaching the stores `stores` names, and
    /// creates the default key.
    async fn launch(
        edit: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
        store: Arc<MemoryStore>,
        stores: Stores,
    ) -> Harness {
        let sim = Self::sim().await;
        let mut config = config(&sim, closed_port());
        edit(&mut config);
        let mut state = AppState::with_clock(config, store.clone(), clock).unwrap();
        if stores == Stores::Persistent {
            state = state.with_spend_store(store.clone()).await.unwrap();
        }
        if stores != Stores::KeysOnly {
            state = state
                .with_workflow_store(store.clone())
                .await
                .unwrap()
                .with_audit_store_keyed(store.clone(), Arc::new(audit_keys()))
                .await
                .unwrap();
        }
        if stores == Stores::AdminKeys {
            state = state.with_admin_key_store(store.clone());
        }
        Self::serve(sim, state, store).await
    }

    /// The simulated upstream every harness forwards to, holding [`UPSTREAM_KEY`].
    async fn sim() -> SimUpstream {
        SimUpstream::start_with(SimOptions {
            api_key: Some(UPSTREAM_KEY.into()),
            ..SimOptions::default()
        })
        .await
        .unwrap()
    }

    /// Serves `state` on a free port and creates the default key.
    async fn serve(sim: SimUpstream, state: AppState, store: Arc<MemoryStore>) -> Harness {
        let gateway = Gateway::start(state, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut h = Harness {
            sim,
            gateway,
            store,
            key: String::new(),
            http,
        };
        h.key = h.create_key(KeyScope::default()).await;
        h
    }

    pub async fn create_key(&self, scope: KeyScope) -> String {
        let g = generate_key();
        let record = KeyRecord {
            models: scope.models,
            cidrs: scope.cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            expires_at: scope.expires_at,
            revoked_at: scope.revoked_at,
            workflow: scope.workflow.map(str::to_string),
            ..g.record(
                scope.account.unwrap_or("acct"),
                scope.created_at.unwrap_or(0),
            )
        };
        self.store.insert_key(&record).await.unwrap();
        g.key.expose().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gateway.addr(), path)
    }

    /// POST as an OpenAI client (Bearer).
    pub async fn openai(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST as an OpenAI client (Bearer) with another key.
    pub async fn openai_as(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST as an Anthropic client with another key.
    pub async fn anthropic_as(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST as an OpenAI client (Bearer) with another key and extra headers.
    pub async fn openai_with(
        &self,
        key: &str,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut r = self.http.post(self.url(path)).bearer_auth(key).json(body);
        for (name, value) in headers {
            r = r.header(*name, *value);
        }
        r.send().await.unwrap()
    }

    /// GET an admin path with a bearer token (none when `token` is `None`).
    pub async fn admin(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    /// The gateway's /metrics text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POST as an Anthropic client (x-api-key, anthropic-version).
    pub async fn anthropic(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("x-api-key", &self.key)
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Status and JSON body.
pub async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v)
}

/// One SSE event as a test sees it.
#[derive(Debug, Clone)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Reads a whole SSE body and splits it into events (comments dropped).
pub async fn events_of(r: reqwest::Response) -> Vec<Event> {
    let text = r.text().await.unwrap();
    parse_sse(&text)
}

pub fn parse_sse(text: &str) -> Vec<Event> {
    let mut out = vec![];
    for block in text.replace("\r\n", "\n").split("\n\n") {
        let mut event = None;
        let mut data = vec![];
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            }
        }
        if event.is_some() || !data.is_empty() {
            out.push(Event {
                event,
                data: data.join("\n"),
            });
        }
    }
    out
}

impl Harness {
    /// As [`Harness::start_with_clock`], over a given store that keeps both the keys and the budget
    /// spend (`AppState::with_spend_store`): a gateway started again over the same store is a
    /// restart.
    pub async fn start_over_store(
        edit: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
        store: Arc<MemoryStore>,
    ) -> Harness {
        Self::launch(edit, clock, store, Stores::Persistent).await
    }
}

impl Harness {
    /// As [`Harness::start_over_store`], with the store's admin keys (`AdminKeyStore`) opening
    /// the admin API beside `[admin] token`.
    pub async fn start_with_admin_keys(
        edit: impl FnOnce(&mut Config),
        store: Arc<MemoryStore>,
    ) -> Harness {
        Self::launch(edit, Arc::new(SystemClock), store, Stores::AdminKeys).await
    }
}

/// Which stores a harness gateway keeps beyond its keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stores {
    /// Keys only: spend, run-time workflows and the audit log in memory or off.
    KeysOnly,
    /// Spend, workflows and the audit log in the store too: a restart over it continues them.
    Persistent,
    /// Workflows, the audit log and admin keys in the store.
    AdminKeys,
}

/// The audit key of every test gateway, so gateways started over one store continue its chain
/// (a checkpoint another key signed is refused) and tests can check signatures.
pub fn audit_keys() -> moat_audit::AuditKeys {
    moat_audit::AuditKeys::from_seed([7; 32])
}

impl Harness {
    /// A gateway whose keys live in a fresh `MemoryStore` and whose audit log is written to
    /// `audit` (a fault-injecting wrapper, say).
    pub async fn start_with_audit_store(
        edit: impl FnOnce(&mut Config),
        audit: Arc<dyn moat_store::AuditStore>,
    ) -> Harness {
        let sim = Self::sim().await;
        let store = Arc::new(MemoryStore::new());
        let mut config = config(&sim, closed_port());
        edit(&mut config);
        let state = AppState::with_clock(config, store.clone(), Arc::new(SystemClock))
            .unwrap()
            .with_audit_store(audit)
            .await
            .unwrap();
        Self::serve(sim, state, store).await
    }
}
