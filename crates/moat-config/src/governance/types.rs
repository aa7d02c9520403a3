//! Validated governance config: workflows, accounts, limits, budgets, prices, routing rules and
//! failover. Plain structs with public fields, which code may also build directly.

use std::time::Duration;

use moat_core::Money;

/// How much harm a workflow's failure does; it picks the workflow's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Criticality {
    /// Drafts, batch jobs: may wait and may fail.
    Low,
    /// The default, and what traffic without a workflow counts as.
    #[default]
    Medium,
    /// User-facing or acting agents: fail fast, fail over.
    High,
}

impl Criticality {
    /// All values, lowest first.
    pub const ALL: [Criticality; 3] = [Criticality::Low, Criticality::Medium, Criticality::High];

    /// `low`, `medium` or `high`, as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Low => "low",
            Criticality::Medium => "medium",
            Criticality::High => "high",
        }
    }

    /// Reads the config spelling.
    pub fn parse(s: &str) -> Option<Criticality> {
        Criticality::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Index into per-criticality tables (`low` = 0).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The most sensitive data a workflow sends to models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Sensitivity {
    /// Published data.
    Public,
    /// Internal data; the default.
    #[default]
    Internal,
    /// Customer or business data under contract.
    Confidential,
    /// Regulated or secret data: typically only for self-hosted or approved providers.
    Restricted,
}

impl Sensitivity {
    /// All values, least sensitive first.
    pub const ALL: [Sensitivity; 4] = [
        Sensitivity::Public,
        Sensitivity::Internal,
        Sensitivity::Confidential,
        Sensitivity::Restricted,
    ];

    /// `public`, `internal`, `confidential` or `restricted`, as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Public => "public",
            Sensitivity::Internal => "internal",
            Sensitivity::Confidential => "confidential",
            Sensitivity::Restricted => "restricted",
        }
    }

    /// Reads the config spelling.
    pub fn parse(s: &str) -> Option<Sensitivity> {
        Sensitivity::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Rate limits of one key, workflow or account; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens (input and output) per minute.
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
}

impl Limits {
    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        *self == Limits::default()
    }
}

/// Money budgets of one key, workflow or account, per calendar window (UTC); `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Per calendar day.
    pub daily: Option<Money>,
    /// Per ISO week (from Monday 00:00 UTC).
    pub weekly: Option<Money>,
    /// Per calendar month.
    pub monthly: Option<Money>,
    /// Percentage of each hard budget at which an alert fires (1..=100); default 80.
    pub soft_percent: u8,
}

impl Budget {
    /// The default alert threshold.
    pub const DEFAULT_SOFT_PERCENT: u8 = 80;

    /// Whether no budget is set.
    pub fn is_unlimited(&self) -> bool {
        self.daily.is_none() && self.weekly.is_none() && self.monthly.is_none()
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            daily: None,
            weekly: None,
            monthly: None,
            soft_percent: Self::DEFAULT_SOFT_PERCENT,
        }
    }
}

/// A workflow's latency and cost objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Objectives {
    /// Longest acceptable time for a whole request (to the last byte).
    pub max_latency: Option<Duration>,
    /// Highest acceptable cost of one request.
    pub max_cost_per_request: Option<Money>,
    /// Whether violations steer later requests away (targets that ran slow go last for a while;
    /// targets whose worst-case cost is over the objective are skipped while another remains).
    /// Violations are recorded as incidents either way.
    pub route_around: bool,
}

/// `[[workflows]]`: an agent or automation that calls models, as registered by its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowConfig {
    /// Unique, non-empty name; keys name it.
    pub name: String,
    /// Who answers for it (a team or a person).
    pub owner: String,
    /// What it does, for the inventory.
    pub description: Option<String>,
    /// How much harm its failure does.
    pub criticality: Criticality,
    /// The most sensitive data it sends.
    pub sensitivity: Sensitivity,
    /// Models it may call; empty means every model its keys may call.
    pub models: Vec<String>,
    /// Whether it acts on the world (writes, sends, pays) through tools.
    pub writes: bool,
    /// Its rate limits, shared by all of its keys.
    pub limits: Limits,
    /// Its budget, shared by all of its keys.
    pub budget: Budget,
    /// Its latency and cost objectives.
    pub objectives: Objectives,
}

impl WorkflowConfig {
    /// A workflow with defaults: medium criticality, internal data, no limits.
    pub fn new(name: impl Into<String>, owner: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            owner: owner.into(),
            description: None,
            criticality: Criticality::default(),
            sensitivity: Sensitivity::default(),
            models: Vec::new(),
            writes: false,
            limits: Limits::default(),
            budget: Budget::default(),
            objectives: Objectives::default(),
        }
    }
}

/// `[[accounts]]`: limits and budget of one account (the customer or team keys belong to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// The account name, as keys carry it.
    pub name: String,
    /// Its rate limits, shared by all of its keys.
    pub limits: Limits,
    /// Its budget, shared by all of its keys.
    pub budget: Budget,
}

/// What happens to requests from keys that belong to no workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unregistered {
    /// Served, tagged `unregistered` in logs and metrics (the default).
    #[default]
    Allow,
    /// Served, and each one logged as a warning and counted as a governance finding.
    Flag,
    /// Refused with 403.
    Deny,
}

impl Unregistered {
    /// `allow`, `flag` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unregistered::Allow => "allow",
            Unregistered::Flag => "flag",
            Unregistered::Deny => "deny",
        }
    }
}

/// `[governance]`: defaults for every key and the policy for unregistered traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceConfig {
    /// Requests from keys without a workflow.
    pub unregistered: Unregistered,
    /// Limits every key gets on its own.
    pub key_limits: Limits,
    /// Budget every key gets on its own.
    pub key_budget: Budget,
    /// Limits of accounts not listed in `[[accounts]]`.
    pub account_limits: Limits,
    /// Budget of accounts not listed in `[[accounts]]`.
    pub account_budget: Budget,
    /// Output tokens reserved for a request that sets no output cap (for the token limit and
    /// the budget, until the provider reports the real count); default 4096.
    pub default_output_tokens: u64,
    /// Request body bytes one key's requests may hold at once while their bodies are read and
    /// served; past it a request is refused (429) before more of its body is read. A key with
    /// nothing in flight may always send one body up to `server.max_body_bytes`. Default 128 MiB.
    pub key_body_bytes_in_flight: u64,
}

impl GovernanceConfig {
    /// The default output reservation.
    pub const DEFAULT_OUTPUT_TOKENS: u64 = 4096;
    /// The default per-key budget of body bytes in flight (128 MiB: four full default bodies).
    pub const DEFAULT_KEY_BODY_BYTES_IN_FLIGHT: u64 = 128 << 20;
}

impl Default for GovernanceConfig {
    /// Unregistered traffic allowed, no limits, no budgets.
    fn default() -> Self {
        Self {
            unregistered: Unregistered::default(),
            key_limits: Limits::default(),
            key_budget: Budget::default(),
            account_limits: Limits::default(),
            account_budget: Budget::default(),
            default_output_tokens: Self::DEFAULT_OUTPUT_TOKENS,
            key_body_bytes_in_flight: Self::DEFAULT_KEY_BODY_BYTES_IN_FLIGHT,
        }
    }
}

/// `[[prices]]`: an operator's price for one model, overriding the built-in table. Prices are
/// in micro-units of the currency per million tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceConfig {
    /// The model name as the provider reports it (a target's `model`).
    pub model: String,
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens (reasoning included).
    pub output: u64,
    /// Cache reads; default the input price.
    pub cached_input: Option<u64>,
    /// Cache writes; default 1.25 times the input price.
    pub cache_write: Option<u64>,
    /// The model's context window, in tokens.
    pub context_window: Option<u64>,
    /// The model's largest output, in tokens.
    pub max_output: Option<u64>,
}

/// Which requests a routing rule applies to: every listed condition must hold; an empty list or
/// an absent flag does not constrain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleMatch {
    /// The workflow's criticality is one of these.
    pub criticality: Vec<Criticality>,
    /// The workflow's sensitivity is one of these.
    pub sensitivity: Vec<Sensitivity>,
    /// The account's tier is one of these (`default` included).
    pub tiers: Vec<String>,
    /// The key's workflow is one of these.
    pub workflows: Vec<String>,
    /// The key's account is one of these.
    pub accounts: Vec<String>,
    /// The requested model is one of these.
    pub models: Vec<String>,
    /// The key has no workflow (`true`) or has one (`false`).
    pub unregistered: Option<bool>,
    /// The workflow has write permissions (`true`) or not (`false`).
    pub writes: Option<bool>,
    /// Request headers with these exact values (names lower-case), e.g. a client's own labels.
    pub headers: Vec<(String, String)>,
}

/// `[[routing_rules]]`: a policy rule. Rules are tried in file order and the first that matches
/// decides; a request no rule matches is routed by its model name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    /// Unique, non-empty name, reported when it matches.
    pub name: String,
    /// Which requests it applies to.
    pub when: RuleMatch,
    /// Send the request to this configured model instead of the one asked for.
    pub use_model: Option<String>,
    /// Only targets (fallbacks included) of providers carrying one of these tags may serve it; a
    /// request no such target can serve is refused, never sent elsewhere.
    pub only_providers_tagged: Vec<String>,
    /// Refuse the request (403) with this message.
    pub deny: Option<String>,
}

/// Timeouts of one criticality; `None` keeps the provider's own setting (or no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// Opening a connection.
    pub connect: Option<Duration>,
    /// From sending the request until the response headers.
    pub first_byte: Option<Duration>,
    /// From sending the request until the first token of a streamed answer.
    pub first_token: Option<Duration>,
    /// Longest silence within a streamed answer.
    pub stream_idle: Option<Duration>,
    /// The whole request, retries and fallbacks included, until the last byte.
    pub total: Option<Duration>,
}

/// `[failover.breaker]`: the circuit breaker of every target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open it (0 disables the breaker); default 5.
    pub failure_threshold: u32,
    /// How long it stays open before one probe is let through; default 30s.
    pub open_for: Duration,
    /// Consecutive probe successes that close it again; default 1.
    pub close_after: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
            close_after: 1,
        }
    }
}

/// `[failover]`: retries, backoff, the retry budget, breakers and timeouts by criticality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverConfig {
    /// Retries of the same target before moving to the next (each also needs the retry
    /// budget); default 1.
    pub retries: u32,
    /// First backoff before a retry; doubles per retry, with full jitter; default 200ms.
    pub backoff_base: Duration,
    /// Largest backoff; default 5s.
    pub backoff_max: Duration,
    /// A `retry-after` longer than this moves to the next target instead of waiting; default 10s.
    pub max_retry_wait: Duration,
    /// Retries and fallbacks allowed on top of the original requests, in percent; default 20.
    pub retry_budget_percent: u32,
    /// Retries per second always allowed, even without traffic; default 10.
    pub retry_budget_min_per_second: u32,
    /// The circuit breaker of every target.
    pub breaker: BreakerConfig,
    /// Timeouts by workflow criticality, indexed by [`Criticality::index`].
    pub timeouts: [Timeouts; 3],
}

impl FailoverConfig {
    /// The timeouts of `criticality`.
    pub fn timeouts(&self, criticality: Criticality) -> &Timeouts {
        &self.timeouts[criticality.index()]
    }
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            retries: 1,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            max_retry_wait: Duration::from_secs(10),
            retry_budget_percent: 20,
            retry_budget_min_per_second: 10,
            breaker: BreakerConfig::default(),
            timeouts: [Timeouts::default(); 3],
        }
    }
}
