//! The validated config: plain structs with public fields, which code may also build directly.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use moat_core::{Protocol, Secret};

use crate::governance::types::{
    AccountConfig, FailoverConfig, GovernanceConfig, PriceConfig, RoutingRule, WorkflowConfig,
};

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
    /// Blocked-pattern filters, in file order; names are unique.
    pub filters: Vec<FilterConfig>,
    /// The parameter policy of the `default` tier.
    pub params: ParamsConfig,
    /// Account tiers with their own parameter policy; names are unique.
    pub tiers: Vec<TierConfig>,
    /// The distillation detector and what its verdicts do.
    pub detection: DetectionConfig,
    /// The admin API.
    pub admin: AdminConfig,
    /// Defaults for keys and accounts, and the policy for unregistered traffic.
    pub governance: GovernanceConfig,
    /// Registered workflows, in file order; names are unique.
    pub workflows: Vec<WorkflowConfig>,
    /// Accounts with limits or budgets of their own; names are unique.
    pub accounts: Vec<AccountConfig>,
    /// Operator prices, overriding the built-in price table; models are unique.
    pub prices: Vec<PriceConfig>,
    /// Policy routing rules, in the order they are tried.
    pub routing_rules: Vec<RoutingRule>,
    /// Retries, backoff, breakers and timeouts.
    pub failover: FailoverConfig,
    /// The hash-chained audit log.
    pub audit: crate::AuditConfig,
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

    /// The workflow called `name`.
    pub fn workflow(&self, name: &str) -> Option<&WorkflowConfig> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The account entry called `name`, if it has one.
    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
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
    /// Peers whose `X-Forwarded-For` is believed: when the peer is in one of these networks, the
    /// client address is the right-most entry of `X-Forwarded-For` outside them. Default none.
    pub trusted_proxies: Vec<IpNet>,
    /// A connection must start a request (HTTP/1: send a whole request head) within this long of
    /// opening or of its previous answer, else it is closed; default 10s.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long; default 60s.
    pub idle_timeout: Duration,
    /// Open client connections at most; past it new ones are closed at once; default 10000.
    pub max_connections: usize,
    /// Open connections per client address at most (IPv6: per /64; `trusted_proxies` are
    /// exempt); default 256.
    pub max_connections_per_address: usize,
    /// Concurrent HTTP/2 streams per connection at most; default 100.
    pub http2_max_concurrent_streams: u32,
    /// Failed authentications (missing, malformed or unknown key) per client address per
    /// minute, on the data plane and the admin API each; past it the address gets 429. 0: no
    /// limit. Default 30.
    pub auth_failures_per_minute: u32,
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
    /// The default header-read timeout.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default idle timeout of connections.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default cap on open connections.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// The largest `max_connections` accepted.
    pub const MAX_MAX_CONNECTIONS: usize = 1_000_000;
    /// The default cap on open connections per client address.
    pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
    /// The default cap on concurrent HTTP/2 streams per connection.
    pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
    /// The default number of failed authentications per address per minute.
    pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 30;
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: Self::DEFAULT_LISTEN,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            stream_keepalive: Self::DEFAULT_STREAM_KEEPALIVE,
            trusted_proxies: Vec::new(),
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: Self::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            http2_max_concurrent_streams: Self::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            auth_failures_per_minute: Self::DEFAULT_AUTH_FAILURES_PER_MINUTE,
        }
    }
}

/// `[store]`: where moat keeps keys, usage and audit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// SQLite database file. When read from a file, a relative path has been resolved against the
    /// config file's directory; `:memory:` is kept as it is. Empty when `url` is set.
    pub path: PathBuf,
    /// PostgreSQL URL (`postgres://` or `postgresql://`), set instead of `path`; kept secret
    /// because it may hold a password.
    pub url: Option<Secret<String>>,
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
    /// Labels routing rules select providers by, such as `self_hosted` or `approved`.
    pub tags: Vec<String>,
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
            tags: Vec::new(),
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
    /// A model with a larger context window to send the request to when every target refuses it
    /// for its length (instead of retrying, which cannot help).
    pub context_fallback: Option<String>,
}

impl ModelConfig {
    /// A model with these targets, no fallbacks and no context fallback.
    pub fn new(name: impl Into<String>, targets: Vec<TargetConfig>) -> Self {
        Self {
            name: name.into(),
            targets,
            fallbacks: Vec::new(),
            context_fallback: None,
        }
    }
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

/// What a filter does when one of its patterns matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    /// Refuse the request (403) before it goes upstream.
    Block,
    /// Let it through, counted, logged and recorded as a flag for the detector.
    Flag,
}

impl FilterAction {
    /// `block` or `flag`, as written in the config and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterAction::Block => "block",
            FilterAction::Flag => "flag",
        }
    }
}

/// Which texts of a request a filter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliesTo {
    /// System texts (system and developer messages, instructions, Anthropic `system`).
    pub system: bool,
    /// User-side turns: user messages and tool results.
    pub user: bool,
}

impl Default for AppliesTo {
    fn default() -> Self {
        Self {
            system: true,
            user: true,
        }
    }
}

/// `[[filters]]`: a blocked-pattern list and what to do on a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterConfig {
    /// Unique, non-empty name; the `filter` label of metrics and the name clients see.
    pub name: String,
    /// The pattern file; a relative path has been resolved against the config file's directory.
    pub file: PathBuf,
    /// Block or flag.
    pub action: FilterAction,
    /// Which texts it reads; default both.
    pub applies_to: AppliesTo,
    /// Account tiers it applies to (`default` included); with `workflows`, empty both means
    /// every request, otherwise a request in any listed tier or any listed workflow.
    pub tiers: Vec<String>,
    /// Key workflows it applies to.
    pub workflows: Vec<String>,
}

impl FilterConfig {
    /// A global filter on both system and user texts.
    pub fn new(name: impl Into<String>, file: impl Into<PathBuf>, action: FilterAction) -> Self {
        Self {
            name: name.into(),
            file: file.into(),
            action,
            applies_to: AppliesTo::default(),
            tiers: Vec::new(),
            workflows: Vec::new(),
        }
    }
}

/// `[params]` and `[tiers.params]`: which request parameters a tier may use. The defaults are
/// the safe ones for untrusted clients: no logit bias together with log probabilities, no prompt
/// log probabilities, at most 5 top log probabilities and 8 choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsConfig {
    /// Largest `top_logprobs`; `None` for no cap. Default 5.
    pub max_top_logprobs: Option<u64>,
    /// Largest `n`; `None` for no cap. Default 8.
    pub max_n: Option<u64>,
    /// Largest output cap (`max_tokens` and its aliases); `None` (the default) for no cap.
    pub max_tokens: Option<u64>,
    /// Whether `logit_bias` may come with `logprobs` or `top_logprobs` (the combination that
    /// lets a client read logits out token by token). Default false.
    pub allow_logit_bias_with_logprobs: bool,
    /// Whether prompt log probabilities (`echo` with `logprobs`, `prompt_logprobs`) are allowed.
    /// Default false.
    pub allow_prompt_logprobs: bool,
    /// Refuse requests that ask for reasoning output (`thinking`, `reasoning`,
    /// `reasoning_effort`). Default false.
    pub strip_reasoning: bool,
}

impl ParamsConfig {
    /// The default cap on `top_logprobs`.
    pub const DEFAULT_MAX_TOP_LOGPROBS: u64 = 5;
    /// The default cap on `n`.
    pub const DEFAULT_MAX_N: u64 = 8;
}

impl Default for ParamsConfig {
    fn default() -> Self {
        Self {
            max_top_logprobs: Some(Self::DEFAULT_MAX_TOP_LOGPROBS),
            max_n: Some(Self::DEFAULT_MAX_N),
            max_tokens: None,
            allow_logit_bias_with_logprobs: false,
            allow_prompt_logprobs: false,
            strip_reasoning: false,
        }
    }
}

/// `[[tiers]]`: a named group of accounts with its own parameter policy. Accounts in no tier are
/// in the tier `default`, whose policy is `[params]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierConfig {
    /// Unique name, never `default`.
    pub name: String,
    /// The accounts in it; an account is in at most one tier.
    pub accounts: Vec<String>,
    /// Its policy: `[tiers.params]` with every omitted field taken from `[params]`.
    pub params: ParamsConfig,
}

impl TierConfig {
    /// The name of the tier of accounts that are in no `[[tiers]]`.
    pub const DEFAULT: &'static str = "default";
}

/// What the gateway does with the distillation detector's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetectionMode {
    /// No features are computed and no events are sent.
    Off,
    /// Accounts are scored; would-be actions are logged and counted, none is enforced.
    #[default]
    Monitor,
    /// Accounts are scored and their actions enforced.
    Enforce,
}

impl DetectionMode {
    /// `off`, `monitor` or `enforce`, as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionMode::Off => "off",
            DetectionMode::Monitor => "monitor",
            DetectionMode::Enforce => "enforce",
        }
    }
}

/// `[detection]`: the distillation detector and what its verdicts do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionConfig {
    /// Off, monitor (the default) or enforce.
    pub mode: DetectionMode,
    /// Accounts never actioned (licensed distillers, known evaluation customers): still scored,
    /// and reported as what would have been done to them.
    pub allowlist: Vec<String>,
    /// Events the detector may have waiting; past this the request path drops them (counted).
    /// Default 65536.
    pub queue: usize,
    /// End users (ids chosen by clients) the detector and the board keep in total; past it the
    /// least recently seen unflagged end user of the account holding the most is evicted.
    /// Default 100,000.
    pub max_end_users: usize,
    /// End users kept per account; past it the account's least recently seen unflagged end
    /// user is evicted. Default 20,000; at most `max_end_users`.
    pub max_end_users_per_account: usize,
    /// Score thresholds of each action and the actions' settings.
    pub actions: ActionsConfig,
    /// `[detection.model]`: the detector's own settings, passed through as written.
    pub model: DetectorModel,
}

impl DetectionConfig {
    /// The default event queue bound.
    pub const DEFAULT_QUEUE: usize = 65_536;
    /// The largest event queue bound accepted.
    pub const MAX_QUEUE: usize = 1 << 24;
    /// The default bound on end users kept in total.
    pub const DEFAULT_MAX_END_USERS: usize = 100_000;
    /// The default bound on end users kept per account.
    pub const DEFAULT_MAX_END_USERS_PER_ACCOUNT: usize = 20_000;
    /// The largest bound on end users accepted (about 26 GB of end-user state at worst).
    pub const MAX_END_USERS: usize = 10_000_000;
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            mode: DetectionMode::default(),
            allowlist: Vec::new(),
            queue: Self::DEFAULT_QUEUE,
            max_end_users: Self::DEFAULT_MAX_END_USERS,
            max_end_users_per_account: Self::DEFAULT_MAX_END_USERS_PER_ACCOUNT,
            actions: ActionsConfig::default(),
            model: DetectorModel::default(),
        }
    }
}

/// `[detection.actions]`: from which verdict score (0..1; 0.5 is the detector's threshold) each
/// action applies, and what throttle and degrade mean. Each action includes the ones below it:
/// a degraded account is also throttled.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionsConfig {
    /// Score from which requests are rate limited to `throttle_rpm`; default 0.5.
    pub throttle_at: f64,
    /// Score from which requests are degraded; default 0.6.
    pub degrade_at: f64,
    /// Score from which requests are refused; default 0.7.
    pub block_at: f64,
    /// Requests per minute a throttled account or end user gets; default 6.
    pub throttle_rpm: u32,
    /// The output cap of degraded requests; default 256.
    pub degrade_max_tokens: u64,
}

// Thresholds are validated to lie in (0, 1], so none is NaN and equality is an equivalence.
impl Eq for ActionsConfig {}

impl ActionsConfig {
    /// The default throttle threshold: the detector's own.
    pub const DEFAULT_THROTTLE_AT: f64 = 0.5;
    /// The default degrade threshold.
    pub const DEFAULT_DEGRADE_AT: f64 = 0.6;
    /// The default block threshold.
    pub const DEFAULT_BLOCK_AT: f64 = 0.7;
    /// The default rate of throttled accounts.
    pub const DEFAULT_THROTTLE_RPM: u32 = 6;
    /// The default output cap of degraded requests.
    pub const DEFAULT_DEGRADE_MAX_TOKENS: u64 = 256;
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            throttle_at: Self::DEFAULT_THROTTLE_AT,
            degrade_at: Self::DEFAULT_DEGRADE_AT,
            block_at: Self::DEFAULT_BLOCK_AT,
            throttle_rpm: Self::DEFAULT_THROTTLE_RPM,
            degrade_max_tokens: Self::DEFAULT_DEGRADE_MAX_TOKENS,
        }
    }
}

/// `[detection.model]` as written: the detector's settings (threshold, drift, weights...). This
/// crate does not know them; the gateway deserializes the table into the detector's config at
/// startup and names this table's line if a field is unknown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DetectorModel {
    /// The table; empty when the section is absent (the detector's defaults).
    pub table: toml::Table,
    /// The line of the `[detection.model]` header, for errors found later.
    pub line: Option<usize>,
}

// Non-finite numbers are refused when the table is read, so equality is an equivalence.
impl Eq for DetectorModel {}

/// `[admin]`: the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminConfig {
    /// The bearer token of `/admin/v1/...`; `None` (the default) turns the admin API off (404).
    pub token: Option<Secret<String>>,
}

impl AdminConfig {
    /// The shortest token accepted.
    pub const MIN_TOKEN_LEN: usize = 16;
    /// The fewest guesses (as a power of ten) an attacker must expect to need for the token, by
    /// zxcvbn's estimate: 10^14, about 46 bits, decades of guessing at 44,000 attempts a second.
    /// A random 16-character token scores 16; `admin-token-0123456789` scores 12.
    pub const MIN_TOKEN_GUESSES_LOG10: f64 = 14.0;
    /// How many characters of a token the estimate reads (zxcvbn's time grows with length).
    const ESTIMATED_CHARS: usize = 72;

    /// zxcvbn's estimate of the guesses needed for `token`, as a power of ten.
    pub fn token_guesses_log10(token: &str) -> f64 {
        let head: String = token.chars().take(Self::ESTIMATED_CHARS).collect();
        zxcvbn::zxcvbn(&head, &[]).guesses_log10()
    }
}
