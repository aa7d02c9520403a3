//! The validated config: plain structs with public fields, which code may also build directly.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use moat_core::{Protocol, Secret};

/// A whole validated moat config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The listening socket and request limits.
    pub server: ServerConfig,
    /// Where moat keeps its state.
    pub store: StoreConfig,
    /// How API keys are looked up.
    pub keys: KeysConfig,
    /// The upstreams moat can call, in file order; names are unique.
    pub providers: Vec<ProviderConfig>,
    /// The model names clients may ask for, in file order; names are unique.
    pub models: Vec<ModelConfig>,
}

impl Config {
    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The model called `name` (the name clients ask for).
    pub fn model(&self, name: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// `[server]`: the listening socket and request limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on; default `127.0.0.1:4000`.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (never 0); default 32 MiB.
    pub max_body_bytes: usize,
    /// On shutdown, how long in-flight requests and streams may still run; default 30s.
    pub shutdown_grace: Duration,
    /// Longest time allowed to read one request body; default 60s.
    pub read_timeout: Duration,
    /// While an upstream stream is silent, a `: keep-alive` comment goes to the client this often,
    /// so proxies and clients do not drop a stream whose model is thinking; default 15s.
    pub stream_keepalive: Duration,
}

impl ServerConfig {
    /// The default listening address.
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 4000);
    /// The default body limit: 32 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
    /// The default shutdown grace period.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// The default request body read timeout.
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default keep-alive interval of streams.
    pub const DEFAULT_STREAM_KEEPALIVE: Duration = Duration::from_secs(15);
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: Self::DEFAULT_LISTEN,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            stream_keepalive: Self::DEFAULT_STREAM_KEEPALIVE,
        }
    }
}

/// `[store]`: where moat keeps keys, usage and audit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// SQLite database file. When read from a file, a relative path has been resolved against the
    /// config file's directory; `:memory:` is kept as it is.
    pub path: PathBuf,
}

/// `[keys]`: how API keys are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysConfig {
    /// How long a looked-up key stays cached (0 disables the cache); default 5s.
    pub cache_ttl: Duration,
}

impl KeysConfig {
    /// The default key cache lifetime.
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Self::DEFAULT_CACHE_TTL,
        }
    }
}

/// `[[providers]]`: one upstream server moat can call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Unique, non-empty name that targets refer to.
    pub name: String,
    /// The protocol the upstream speaks.
    pub kind: Protocol,
    /// `http://` or `https://` URL as the provider's own SDK takes it, without a trailing slash.
    pub base_url: String,
    /// Credential sent upstream; `None` for servers that need none (an empty value counts as none).
    pub api_key: Option<Secret<String>>,
    /// Longest time to open a connection; default 5s.
    pub connect_timeout: Duration,
    /// Longest wait from sending the request until the response headers; default 60s.
    pub first_byte_timeout: Duration,
    /// Longest silence between two body chunks of a response; default 60s.
    pub idle_timeout: Duration,
    /// Extra headers sent upstream on every request, sorted by name.
    pub headers: Vec<(String, String)>,
}

impl ProviderConfig {
    /// The default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default time to first byte (response headers).
    pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default longest silence between body chunks.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

    /// A provider with no key, no extra headers and the default timeouts.
    pub fn new(name: impl Into<String>, kind: Protocol, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            base_url: base_url.into(),
            api_key: None,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            first_byte_timeout: Self::DEFAULT_FIRST_BYTE_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            headers: Vec::new(),
        }
    }
}

/// `[[models]]`: a model name clients ask for, and where its requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Unique, non-empty name clients put in `model`.
    pub name: String,
    /// Where requests go, chosen by weight; never empty.
    pub targets: Vec<TargetConfig>,
    /// Other model names to try, in order, when every target fails; never this model itself.
    pub fallbacks: Vec<String>,
}

/// One place a model's requests can go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// Name of a configured provider.
    pub provider: String,
    /// The model name sent to that provider.
    pub model: String,
    /// Relative share of requests (at least 1); default 1.
    pub weight: u32,
}

impl TargetConfig {
    /// A target with weight 1.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            weight: 1,
        }
    }
}
