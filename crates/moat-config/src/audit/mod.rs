//! `[audit]`: the hash-chained audit log: how durable each record is before its response
//! completes, which bodies it keeps by workflow sensitivity, the checkpoint signing key and
//! retention.

use std::time::Duration;

use moat_core::Secret;
use serde::Deserialize;
use toml::Spanned;

use crate::context::{is_header_value, Ctx, Zero};
use crate::detection::integer;
use crate::document::Element;
use crate::raw::Any;

/// When a request's record must be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Written by the batch writer within `flush_interval`; a crash may lose that interval's
    /// records (the default).
    #[default]
    Batch,
    /// Durable before the response completes (its last byte waits for the commit).
    Sync,
}

impl Durability {
    /// `batch` or `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Batch => "batch",
            Durability::Sync => "sync",
        }
    }
}

/// What a record keeps of a request or response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPolicy {
    /// The whole body (replayable by `moat detect replay`; readable by role).
    Full,
    /// Only its SHA-256: proves what was sent without keeping it.
    Hash,
    /// Nothing.
    None,
}

impl BodyPolicy {
    /// `full`, `hash` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyPolicy::Full => "full",
            BodyPolicy::Hash => "hash",
            BodyPolicy::None => "none",
        }
    }

    fn parse(s: &str) -> Option<BodyPolicy> {
        match s {
            "full" => Some(BodyPolicy::Full),
            "hash" => Some(BodyPolicy::Hash),
            "none" => Some(BodyPolicy::None),
            _ => None,
        }
    }
}

/// Body policy by the workflow's data sensitivity; unregistered traffic counts as `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodiesConfig {
    /// `public` workflows; default full.
    pub public: BodyPolicy,
    /// `internal` workflows and unregistered traffic; default full.
    pub internal: BodyPolicy,
    /// `confidential` workflows; default hash.
    pub confidential: BodyPolicy,
    /// `restricted` workflows; default hash.
    pub restricted: BodyPolicy,
}

impl Default for BodiesConfig {
    fn default() -> Self {
        Self {
            public: BodyPolicy::Full,
            internal: BodyPolicy::Full,
            confidential: BodyPolicy::Hash,
            restricted: BodyPolicy::Hash,
        }
    }
}

impl BodiesConfig {
    /// The policy for a workflow of `sensitivity`.
    pub fn for_sensitivity(&self, sensitivity: crate::Sensitivity) -> BodyPolicy {
        match sensitivity {
            crate::Sensitivity::Public => self.public,
            crate::Sensitivity::Internal => self.internal,
            crate::Sensitivity::Confidential => self.confidential,
            crate::Sensitivity::Restricted => self.restricted,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Whether records are written at all; default true.
    pub enabled: bool,
    /// Batch (default) or sync.
    pub durability: Durability,
    /// In batch mode, the longest a record waits before its batch is written; default 200ms.
    pub flush_interval: Duration,
    /// Records written in one transaction at most; default 512.
    pub batch_max: usize,
    /// Records waiting for the writer at most; beyond it requests wait (counted), never drop
    /// their record; default 65536.
    pub queue: usize,
    /// Body policy by workflow sensitivity.
    pub bodies: BodiesConfig,
    /// HMAC key that signs retention checkpoints; required for `retention`.
    pub checkpoint_key: Option<Secret<String>>,
    /// Records older than this are dropped behind a signed checkpoint; `None` keeps everything.
    pub retention: Option<Duration>,
    /// The most stored record bytes one page of the admin API's audit reads takes (a page's first
    /// record is returned whatever its size); default 8 MiB.
    pub read_page_bytes: usize,
}

impl AuditConfig {
    /// The shortest checkpoint key accepted.
    pub const MIN_KEY_LEN: usize = 32;
    /// `read_page_bytes` by default: 8 MiB.
    pub const DEFAULT_READ_PAGE_BYTES: usize = 8 << 20;
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            durability: Durability::Batch,
            flush_interval: Duration::from_millis(200),
            batch_max: 512,
            queue: 65_536,
            bodies: BodiesConfig::default(),
            checkpoint_key: None,
            retention: None,
            read_page_bytes: Self::DEFAULT_READ_PAGE_BYTES,
        }
    }
}

/// `[audit]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    pub enabled: Option<Spanned<bool>>,
    pub durability: Option<Spanned<String>>,
    pub flush_interval: Option<Any>,
    pub batch_max: Option<Any>,
    pub queue: Option<Any>,
    pub bodies: Option<RawBodies>,
    pub checkpoint_key: Option<Spanned<String>>,
    pub retention: Option<Any>,
    pub read_page_bytes: Option<Any>,
}

/// `[audit.bodies]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBodies {
    pub public: Option<Spanned<String>>,
    pub internal: Option<Spanned<String>>,
    pub confidential: Option<Spanned<String>>,
    pub restricted: Option<Spanned<String>>,
}

/// `[audit]`; the defaults when absent.
pub(crate) fn audit(ctx: &mut Ctx<'_>, element: Option<&Element<RawAudit>>) -> AuditConfig {
    let mut out = AuditConfig::default();
    let Some(e) = element else {
        return out;
    };
    let raw = &e.value;
    if let Some(v) = &raw.enabled {
        out.enabled = *v.get_ref();
    }
    if let Some(v) = &raw.durability {
        let field = e.field("durability");
        match ctx.string(v, &field).as_deref().map(str::trim) {
            Some("batch") => out.durability = Durability::Batch,
            Some("sync") => out.durability = Durability::Sync,
            Some(other) => ctx.errors.push(
                Some(v.span()),
                field,
                format!("unknown durability \"{other}\": expected \"batch\" (written within flush_interval) or \"sync\" (durable before the response completes)"),
            ),
            None => {}
        }
    }
    out.flush_interval = ctx.duration(
        raw.flush_interval.as_ref(),
        &e.field("flush_interval"),
        out.flush_interval,
        Zero::Rejected,
    );
    if let Some(n) = integer(
        ctx,
        raw.batch_max.as_ref(),
        &e.field("batch_max"),
        1,
        65_536,
    ) {
        out.batch_max = n as usize;
    }
    if let Some(n) = integer(ctx, raw.queue.as_ref(), &e.field("queue"), 1, 1 << 24) {
        out.queue = n as usize;
    }
    if let Some(n) = integer(
        ctx,
        raw.read_page_bytes.as_ref(),
        &e.field("read_page_bytes"),
        4096,
        1 << 30,
    ) {
        out.read_page_bytes = n as usize;
    }
    if let Some(b) = &raw.bodies {
        let path = e.field("bodies");
        let mut one = |v: &Option<Spanned<String>>, key: &str, into: &mut BodyPolicy| {
            let Some(v) = v else { return };
            let field = format!("{path}.{key}");
            if let Some(s) = ctx.string(v, &field).as_deref().map(str::trim) {
                match BodyPolicy::parse(s) {
                    Some(p) => *into = p,
                    None => ctx.errors.push(
                        Some(v.span()),
                        field,
                        format!(
                            "unknown body policy \"{s}\": expected \"full\", \"hash\" or \"none\""
                        ),
                    ),
                }
            }
        };
        one(&b.public, "public", &mut out.bodies.public);
        one(&b.internal, "internal", &mut out.bodies.internal);
        one(
            &b.confidential,
            "confidential",
            &mut out.bodies.confidential,
        );
        one(&b.restricted, "restricted", &mut out.bodies.restricted);
    }
    if let Some(v) = &raw.checkpoint_key {
        let field = e.field("checkpoint_key");
        match ctx.string(v, &field) {
            Some(k) if k.is_empty() => {}
            Some(k) if !is_header_value(&k) => {
                let message = "must not contain line breaks or other control characters";
                ctx.errors.push(Some(v.span()), field, message);
            }
            Some(k) if k.chars().count() < AuditConfig::MIN_KEY_LEN => {
                let message = format!(
                    "is too short: use at least {} characters (for example `openssl rand -hex 32`)",
                    AuditConfig::MIN_KEY_LEN
                );
                ctx.errors.push(Some(v.span()), field, message);
            }
            Some(k) => out.checkpoint_key = Some(Secret::new(k)),
            None => {}
        }
    }
    if let Some(v) = &raw.retention {
        let d = ctx.duration(
            Some(v),
            &e.field("retention"),
            Duration::ZERO,
            Zero::Rejected,
        );
        if !d.is_zero() {
            out.retention = Some(d);
            if out.checkpoint_key.is_none() && !e.already_reported("checkpoint_key") {
                let message = "retention drops old records behind a signed checkpoint: set `checkpoint_key` too";
                ctx.errors
                    .push(Some(v.span()), e.field("retention"), message);
            }
        }
    }
    out
}
