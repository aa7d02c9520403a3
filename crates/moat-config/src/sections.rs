//! Converts each raw section into its validated type, reporting problems field by field.
//!
//! A field with a problem gets a placeholder so the other fields are still checked; the
//! placeholders never escape, because [`crate::parse`] returns a `Config` only without errors.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use moat_core::{Protocol, Secret};
use toml::Spanned;

use crate::context::{base_url, is_header_name, is_header_value, Ctx, Zero};
use crate::document::{key_name, Element};
use crate::raw::{RawKeys, RawModel, RawProvider, RawServer};
use crate::types::{KeysConfig, ModelConfig, ProviderConfig, ServerConfig, TargetConfig};

/// A name written somewhere in the file, for cross-reference checks.
pub(crate) struct NameRef {
    /// The name after interpolation.
    pub name: String,
    /// Where it is written.
    pub span: Option<Range<usize>>,
    /// The field's path.
    pub field: String,
}

/// A provider, plus where its name is written (`None` when the name is missing or invalid).
pub(crate) struct ProviderDraft {
    pub config: ProviderConfig,
    pub name: Option<NameRef>,
}

/// A model, plus where its name and each of its references are written.
pub(crate) struct ModelDraft {
    pub config: ModelConfig,
    pub name: Option<NameRef>,
    /// The `provider` of each target.
    pub providers: Vec<NameRef>,
    /// Each entry of `fallbacks`.
    pub fallbacks: Vec<NameRef>,
    /// `context_fallback`, when written.
    pub context_fallback: Option<NameRef>,
}

/// `[server]`; the defaults when absent.
pub(crate) fn server(ctx: &mut Ctx<'_>, element: Option<&Element<RawServer>>) -> ServerConfig {
    let mut out = ServerConfig::default();
    let Some(e) = element else {
        return out;
    };
    let raw = &e.value;
    if let Some(v) = &raw.listen {
        let field = e.field("listen");
        if let Some(s) = ctx.string(v, &field) {
            match s.trim().parse::<SocketAddr>() {
                Ok(addr) => out.listen = addr,
                Err(_) => ctx.errors.push(
                    Some(v.span()),
                    field,
                    format!("invalid listen address \"{s}\": expected IP:port such as \"127.0.0.1:4000\" or \"[::]:4000\""),
                ),
            }
        }
    }
    if let Some(v) = &raw.max_body_bytes {
        let problem = match usize::try_from(*v.get_ref()) {
            Ok(0) => Some("must be greater than 0"),
            Ok(n) => {
                out.max_body_bytes = n;
                None
            }
            Err(_) => Some("is too large for this machine"),
        };
        if let Some(problem) = problem {
            ctx.errors
                .push(Some(v.span()), e.field("max_body_bytes"), problem);
        }
    }
    out.shutdown_grace = ctx.duration(
        raw.shutdown_grace.as_ref(),
        &e.field("shutdown_grace"),
        ServerConfig::DEFAULT_SHUTDOWN_GRACE,
        Zero::Allowed,
    );
    out.read_timeout = ctx.duration(
        raw.read_timeout.as_ref(),
        &e.field("read_timeout"),
        ServerConfig::DEFAULT_READ_TIMEOUT,
        Zero::Rejected,
    );
    out.stream_keepalive = ctx.duration(
        raw.stream_keepalive.as_ref(),
        &e.field("stream_keepalive"),
        ServerConfig::DEFAULT_STREAM_KEEPALIVE,
        Zero::Rejected,
    );
    for (i, v) in raw.trusted_proxies.iter().flatten().enumerate() {
        let field = format!("{}[{i}]", e.field("trusted_proxies"));
        if let Some(net) = ctx.string(v, &field) {
            match network(net.trim()) {
                Some(net) => out.trusted_proxies.push(net),
                None => ctx.errors.push(
                    Some(v.span()),
                    field,
                    format!("invalid network \"{net}\": expected a CIDR such as \"10.0.0.0/8\" or an address such as \"127.0.0.1\""),
                ),
            }
        }
    }
    connections(ctx, e, &mut out);
    out
}

/// The connection limits of `[server]`.
fn connections(ctx: &mut Ctx<'_>, e: &Element<RawServer>, out: &mut ServerConfig) {
    use crate::detection::integer;
    let raw = &e.value;
    out.header_read_timeout = ctx.duration(
        raw.header_read_timeout.as_ref(),
        &e.field("header_read_timeout"),
        ServerConfig::DEFAULT_HEADER_READ_TIMEOUT,
        Zero::Rejected,
    );
    out.idle_timeout = ctx.duration(
        raw.idle_timeout.as_ref(),
        &e.field("idle_timeout"),
        ServerConfig::DEFAULT_IDLE_TIMEOUT,
        Zero::Rejected,
    );
    let max = ServerConfig::MAX_MAX_CONNECTIONS as u64;
    if let Some(n) = integer(
        ctx,
        raw.max_connections.as_ref(),
        &e.field("max_connections"),
        1,
        max,
    ) {
        out.max_connections = n as usize;
    }
    let field = e.field("max_connections_per_address");
    if let Some(n) = integer(
        ctx,
        raw.max_connections_per_address.as_ref(),
        &field,
        1,
        max,
    ) {
        out.max_connections_per_address = n as usize;
        if out.max_connections_per_address > out.max_connections {
            let span = raw.max_connections_per_address.as_ref().map(|v| v.span());
            let message = format!("must not exceed max_connections ({})", out.max_connections);
            ctx.errors.push(span, field, message);
        }
    }
    let field = e.field("http2_max_concurrent_streams");
    if let Some(n) = integer(
        ctx,
        raw.http2_max_concurrent_streams.as_ref(),
        &field,
        1,
        10_000,
    ) {
        out.http2_max_concurrent_streams = n as u32;
    }
    let field = e.field("auth_failures_per_minute");
    if let Some(n) = integer(
        ctx,
        raw.auth_failures_per_minute.as_ref(),
        &field,
        0,
        60_000,
    ) {
        out.auth_failures_per_minute = n as u32;
    }
}

/// A CIDR, or a bare address as its own /32 or /128.
fn network(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// `[keys]`; the defaults when absent.
pub(crate) fn keys(ctx: &mut Ctx<'_>, element: Option<&Element<RawKeys>>) -> KeysConfig {
    let Some(e) = element else {
        return KeysConfig::default();
    };
    KeysConfig {
        cache_ttl: ctx.duration(
            e.value.cache_ttl.as_ref(),
            &e.field("cache_ttl"),
            KeysConfig::DEFAULT_CACHE_TTL,
            Zero::Allowed,
        ),
    }
}

/// One `[[providers]]` element.
pub(crate) fn provider(ctx: &mut Ctx<'_>, e: &Element<RawProvider>) -> ProviderDraft {
    let raw = &e.value;
    let name = name_ref(ctx, e, "name", raw.name.as_ref());
    let mut config = ProviderConfig::new(
        name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
        Protocol::OpenAi,
        String::new(),
    );
    if let Some(v) = ctx.required(e, "kind", raw.kind.as_ref()) {
        let field = e.field("kind");
        match ctx.string(v, &field).as_deref() {
            Some("openai") => config.kind = Protocol::OpenAi,
            Some("anthropic") => config.kind = Protocol::Anthropic,
            Some(other) => ctx.errors.push(
                Some(v.span()),
                field,
                format!("unknown kind \"{other}\": expected \"openai\" (any OpenAI-compatible server) or \"anthropic\""),
            ),
            None => {}
        }
    }
    if let Some(v) = ctx.required(e, "base_url", raw.base_url.as_ref()) {
        let field = e.field("base_url");
        if let Some(url) = ctx.string(v, &field) {
            match base_url(&url) {
                Ok(url) => config.base_url = url,
                Err(why) => ctx
                    .errors
                    .push(Some(v.span()), field, format!("\"{url}\" {why}")),
            }
        }
    }
    if let Some(v) = &raw.api_key {
        // An empty key (`${KEY:-}`) means "none", for local servers that take no key.
        let field = e.field("api_key");
        match ctx.string(v, &field) {
            Some(key) if !is_header_value(&key) => {
                // Often a trailing newline from a secrets file; never echo the key itself.
                let message = "must not contain line breaks or other control characters";
                ctx.errors.push(Some(v.span()), field, message);
            }
            key => config.api_key = key.filter(|k| !k.is_empty()).map(Secret::new),
        }
    }
    config.connect_timeout = ctx.duration(
        raw.connect_timeout.as_ref(),
        &e.field("connect_timeout"),
        ProviderConfig::DEFAULT_CONNECT_TIMEOUT,
        Zero::Rejected,
    );
    config.first_byte_timeout = ctx.duration(
        raw.first_byte_timeout.as_ref(),
        &e.field("first_byte_timeout"),
        ProviderConfig::DEFAULT_FIRST_BYTE_TIMEOUT,
        Zero::Rejected,
    );
    config.idle_timeout = ctx.duration(
        raw.idle_timeout.as_ref(),
        &e.field("idle_timeout"),
        ProviderConfig::DEFAULT_IDLE_TIMEOUT,
        Zero::Rejected,
    );
    if let Some(headers) = &raw.headers {
        config.headers = headers_of(ctx, &e.field("headers"), headers);
    }
    for (i, t) in raw.tags.iter().flatten().enumerate() {
        let field = format!("{}[{i}]", e.field("tags"));
        if let Some(tag) = ctx.name(t, &field) {
            if config.tags.contains(&tag) {
                ctx.errors
                    .push(Some(t.span()), field, format!("duplicate tag \"{tag}\""));
            } else {
                config.tags.push(tag);
            }
        }
    }
    ProviderDraft { config, name }
}

/// One `[[models]]` element.
pub(crate) fn model(ctx: &mut Ctx<'_>, e: &Element<RawModel>) -> ModelDraft {
    let raw = &e.value;
    let name = name_ref(ctx, e, "name", raw.name.as_ref());
    let mut draft = ModelDraft {
        config: ModelConfig {
            name: name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
            targets: Vec::new(),
            fallbacks: Vec::new(),
            context_fallback: None,
        },
        name,
        providers: Vec::new(),
        fallbacks: Vec::new(),
        context_fallback: None,
    };
    if let Some(targets) = ctx.required(e, "targets", raw.targets.as_ref()) {
        if targets.is_empty() {
            ctx.errors.push(
                e.key_span("targets"),
                e.field("targets"),
                "must list at least one target, such as { provider = \"openai\", model = \"gpt-4o\" }",
            );
        }
        for (i, t) in targets.iter().enumerate() {
            let base = format!("{}[{i}]", e.field("targets"));
            let provider = named(ctx, &t.provider, format!("{base}.provider"));
            let model = ctx.name(&t.model, &format!("{base}.model"));
            let weight = match &t.weight {
                None => 1,
                Some(w) if *w.get_ref() == 0 => {
                    let message = "must be at least 1 (remove the target to stop using it)";
                    ctx.errors
                        .push(Some(w.span()), format!("{base}.weight"), message);
                    1
                }
                Some(w) => *w.get_ref(),
            };
            if let (Some(provider), Some(model)) = (&provider, model) {
                let target = TargetConfig {
                    provider: provider.name.clone(),
                    model,
                    weight,
                };
                draft.config.targets.push(target);
            }
            draft.providers.extend(provider);
        }
    }
    for (i, f) in raw.fallbacks.iter().flatten().enumerate() {
        if let Some(fallback) = named(ctx, f, format!("{}[{i}]", e.field("fallbacks"))) {
            draft.config.fallbacks.push(fallback.name.clone());
            draft.fallbacks.push(fallback);
        }
    }
    if let Some(v) = &raw.context_fallback {
        draft.context_fallback = named(ctx, v, e.field("context_fallback"));
        draft.config.context_fallback = draft.context_fallback.as_ref().map(|n| n.name.clone());
    }
    draft
}

/// A required, non-empty name field.
pub(crate) fn name_ref<R>(
    ctx: &mut Ctx<'_>,
    e: &Element<R>,
    key: &str,
    value: Option<&Spanned<String>>,
) -> Option<NameRef> {
    let value = ctx.required(e, key, value)?;
    named(ctx, value, e.field(key))
}

/// A non-empty name with where it is written.
pub(crate) fn named(ctx: &mut Ctx<'_>, value: &Spanned<String>, field: String) -> Option<NameRef> {
    let name = ctx.name(value, &field)?;
    Some(NameRef {
        name,
        span: Some(value.span()),
        field,
    })
}

/// Extra upstream headers: valid names, values without line breaks, no duplicates.
fn headers_of(
    ctx: &mut Ctx<'_>,
    path: &str,
    headers: &std::collections::BTreeMap<String, Spanned<String>>,
) -> Vec<(String, String)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (name, value) in headers {
        let field = format!("{path}.{}", key_name(name));
        let span = Some(value.span());
        if !is_header_name(name) {
            let message = "invalid header name: use letters, digits and - (an HTTP token)";
            ctx.errors.push(span.clone(), field.clone(), message);
        } else if !seen.insert(name.to_ascii_lowercase()) {
            let message = "duplicate header (header names are case-insensitive)";
            ctx.errors.push(span.clone(), field.clone(), message);
        }
        let Some(v) = ctx.string(value, &field) else {
            continue;
        };
        if is_header_value(&v) {
            out.push((name.clone(), v));
        } else {
            // The value may be a secret: say what is wrong without echoing it.
            let message = "header value must not contain line breaks or other control characters";
            ctx.errors.push(span, field, message);
        }
    }
    out
}

/// A store path: absolute as written, relative to the config file's directory, or `:memory:`.
pub(crate) fn resolve(ctx: &Ctx<'_>, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if path == ":memory:" || p.is_absolute() {
        p
    } else {
        ctx.base_dir.join(p)
    }
}
