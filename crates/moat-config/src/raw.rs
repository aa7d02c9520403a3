//! Raw serde shapes of the config file, exactly as written, with the spans needed for errors.
//!
//! Every field is optional here: missing required fields are reported by the conversion, which
//! knows the table's line. Durations stay untyped so `shutdown_grace = 30` can get a useful hint.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A scalar whose type the conversion checks itself.
pub(crate) type Any = Spanned<toml::Value>;

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub shutdown_grace: Option<Any>,
    pub read_timeout: Option<Any>,
    pub stream_keepalive: Option<Any>,
    pub trusted_proxies: Option<Vec<Spanned<String>>>,
    pub header_read_timeout: Option<Any>,
    pub idle_timeout: Option<Any>,
    pub max_connections: Option<Any>,
    pub max_connections_per_address: Option<Any>,
    pub http2_max_concurrent_streams: Option<Any>,
    pub auth_failures_per_minute: Option<Any>,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub path: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
}

/// `[keys]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeys {
    pub cache_ttl: Option<Any>,
}

/// One `[[providers]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub name: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub base_url: Option<Spanned<String>>,
    pub api_key: Option<Spanned<String>>,
    pub connect_timeout: Option<Any>,
    pub first_byte_timeout: Option<Any>,
    pub idle_timeout: Option<Any>,
    pub headers: Option<BTreeMap<String, Spanned<String>>>,
    pub tags: Option<Vec<Spanned<String>>>,
}

/// One `[[models]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub name: Option<Spanned<String>>,
    pub targets: Option<Vec<RawTarget>>,
    pub fallbacks: Option<Vec<Spanned<String>>>,
    pub context_fallback: Option<Spanned<String>>,
}

/// One entry of `targets`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a target table such as { provider = \"openai\", model = \"gpt-4o\" }"
)]
pub(crate) struct RawTarget {
    pub provider: Spanned<String>,
    pub model: Spanned<String>,
    pub weight: Option<Spanned<u32>>,
}

/// One `[[filters]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilter {
    pub name: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub action: Option<Spanned<String>>,
    pub applies_to: Option<Spanned<Vec<Spanned<String>>>>,
    pub tiers: Option<Vec<Spanned<String>>>,
    pub workflows: Option<Vec<Spanned<String>>>,
}

/// `[params]` or a tier's `params`. Caps stay untyped: they take an integer or `"unlimited"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParams {
    pub max_top_logprobs: Option<Any>,
    pub max_n: Option<Any>,
    pub max_tokens: Option<Any>,
    pub allow_logit_bias_with_logprobs: Option<Spanned<bool>>,
    pub allow_prompt_logprobs: Option<Spanned<bool>>,
    pub strip_reasoning: Option<Spanned<bool>>,
}

/// One `[[tiers]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTier {
    pub name: Option<Spanned<String>>,
    pub accounts: Option<Vec<Spanned<String>>>,
    pub params: Option<RawParams>,
}

/// `[detection]`, without its sub-tables: `[detection.actions]` and `[detection.model]` are read
/// on their own, so a mistake in one does not hide the others.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDetection {
    pub mode: Option<Spanned<String>>,
    pub allowlist: Option<Vec<Spanned<String>>>,
    pub queue: Option<Any>,
    pub max_end_users: Option<Any>,
    pub max_end_users_per_account: Option<Any>,
    #[expect(
        dead_code,
        reason = "accepted here, read by the document reader as its own table"
    )]
    pub actions: Option<serde::de::IgnoredAny>,
    #[expect(
        dead_code,
        reason = "accepted here, read by the document reader as its own table"
    )]
    pub model: Option<serde::de::IgnoredAny>,
}

/// `[detection.actions]`. Numbers stay untyped so `block_at = 1` and `block_at = 1.0` both read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActions {
    pub throttle_at: Option<Any>,
    pub degrade_at: Option<Any>,
    pub block_at: Option<Any>,
    pub throttle_rpm: Option<Any>,
    pub degrade_max_tokens: Option<Any>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub token: Option<Spanned<String>>,
}
