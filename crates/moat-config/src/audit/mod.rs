//! `[audit]`: the hash-chained audit log: how durable each record is before its response
//! completes, which bodies it keeps by workflow sensitivity, the audit key file, the witness of
//! signed heads and retention.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::context::{Ctx, Zero};
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
    /// Only its keyed digest (HMAC-SHA256 under a key derived from the audit key): proves what
    /// was sent, to a holder of the key and the body, without keeping it.
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
    /// Records not yet committed (queued, or kept while appends fail) at most. At or past it, new
    /// requests are refused with 503 before anything goes upstream, so no answer is made whose
    /// record cannot be kept; default 16384. `queue`, its former name, is still read.
    pub max_backlog: usize,
    /// The kept bodies of those records, in bytes, at most (the same refusal past it); default
    /// 256 MiB. Bounds the backlog's memory when bodies are large.
    pub max_backlog_bytes: usize,
    /// In `sync` durability, how long a response waits for its record's commit before it is
    /// answered with 503 instead; default 5s.
    pub commit_timeout: Duration,
    /// Body policy by workflow sensitivity.
    pub bodies: BodiesConfig,
    /// Records older than this are dropped behind a signed checkpoint; `None` keeps everything.
    pub retention: Option<Duration>,
    /// The audit key file (Ed25519, PKCS#8 PEM, generated on first start if absent); `None`:
    /// beside the store file ([`AuditConfig::signing_key_path`]).
    pub signing_key: Option<PathBuf>,
    /// Where signed heads of the chain go, outside the store; `None`: nowhere.
    pub witness: Option<WitnessConfig>,
    /// The most stored record bytes one page of the admin API's audit reads takes (a page's first
    /// record is returned whatever its size); default 8 MiB.
    pub read_page_bytes: usize,
}

/// `[audit.witness]`: signed heads of the chain, written outside the store so that a later
/// truncation or rewrite of the log shows (`moat audit verify --witness FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessConfig {
    /// The file heads are appended to, one JSON line each (put it on another disk or host).
    pub file: Option<PathBuf>,
    /// An HTTP(S) endpoint each head is POSTed to as JSON (one more destination moat connects
    /// to, besides the providers).
    pub url: Option<String>,
    /// A head is written after this many records at most; default 1000.
    pub every_records: u64,
    /// ... and at least this often while records are written; default 60s.
    pub every: Duration,
}

impl AuditConfig {
    /// `read_page_bytes` by default: 8 MiB.
    pub const DEFAULT_READ_PAGE_BYTES: usize = 8 << 20;

    /// The audit key file: `signing_key`, else the store's path with `.audit-key` appended;
    /// `None` for an in-memory store (its key lives as long as the process, as its records do).
    pub fn signing_key_path(&self, store: &Path) -> Option<PathBuf> {
        if let Some(path) = &self.signing_key {
            return Some(path.clone());
        }
        if store.as_os_str() == ":memory:" || store.as_os_str().is_empty() {
            return None;
        }
        let mut name = store.as_os_str().to_os_string();
        name.push(".audit-key");
        Some(PathBuf::from(name))
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            durability: Durability::Batch,
            flush_interval: Duration::from_millis(200),
            batch_max: 512,
            max_backlog: 16_384,
            max_backlog_bytes: 256 * 1024 * 1024,
            commit_timeout: Duration::from_secs(5),
            bodies: BodiesConfig::default(),
            retention: None,
            signing_key: None,
            witness: None,
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
    pub max_backlog: Option<Any>,
    pub max_backlog_bytes: Option<Any>,
    pub commit_timeout: Option<Any>,
    pub bodies: Option<RawBodies>,
    pub checkpoint_key: Option<Spanned<String>>,
    pub retention: Option<Any>,
    pub signing_key: Option<Spanned<String>>,
    pub witness: Option<RawWitness>,
    pub read_page_bytes: Option<Any>,
}

/// `[audit.witness]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWitness {
    pub file: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub every_records: Option<Any>,
    pub every: Option<Any>,
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
        out.max_backlog = n as usize;
    }
    if let Some(n) = integer(
        ctx,
        raw.max_backlog.as_ref(),
        &e.field("max_backlog"),
        1,
        1 << 24,
    ) {
        out.max_backlog = n as usize;
    }
    if let Some(n) = integer(
        ctx,
        raw.max_backlog_bytes.as_ref(),
        &e.field("max_backlog_bytes"),
        1,
        1 << 40,
    ) {
        out.max_backlog_bytes = n as usize;
    }
    out.commit_timeout = ctx.duration(
        raw.commit_timeout.as_ref(),
        &e.field("commit_timeout"),
        out.commit_timeout,
        Zero::Rejected,
    );
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
        // An HMAC key let its holder forge the checkpoints only its holder could check; the
        // Ed25519 audit key replaced it, and a key silently ignored would mislead.
        let message = "was removed: checkpoints are now signed with the Ed25519 audit key \
            (`signing_key`, a file generated on first start); delete this line";
        ctx.errors
            .push(Some(v.span()), e.field("checkpoint_key"), message);
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
        }
    }
    if let Some(v) = &raw.signing_key {
        if let Some(path) = ctx.name(v, &e.field("signing_key")) {
            out.signing_key = Some(crate::sections::resolve(ctx, &path));
        }
    }
    if let Some(w) = &raw.witness {
        out.witness = witness(ctx, &e.field("witness"), w);
    }
    out
}

/// `[audit.witness]`; `None` after reporting a bad `file` or `url`, or neither.
fn witness(ctx: &mut Ctx<'_>, path: &str, raw: &RawWitness) -> Option<WitnessConfig> {
    let field = |key: &str| format!("{path}.{key}");
    let mut out = WitnessConfig {
        file: None,
        url: None,
        every_records: 1000,
        every: Duration::from_secs(60),
    };
    if let Some(n) = integer(
        ctx,
        raw.every_records.as_ref(),
        &field("every_records"),
        1,
        1 << 32,
    ) {
        out.every_records = n;
    }
    out.every = ctx.duration(
        raw.every.as_ref(),
        &field("every"),
        out.every,
        Zero::Rejected,
    );
    if raw.file.is_none() && raw.url.is_none() {
        let message = "names no witness: set `file` (heads appended as JSON lines) and/or `url` (heads POSTed)";
        ctx.errors.push(None, path.to_string(), message);
        return None;
    }
    if let Some(v) = &raw.file {
        let file = ctx.name(v, &field("file"))?;
        if file == ":memory:" {
            ctx.errors
                .push(Some(v.span()), field("file"), "must be a file path");
            return None;
        }
        out.file = Some(crate::sections::resolve(ctx, &file));
    }
    if let Some(v) = &raw.url {
        let url = ctx.name(v, &field("url"))?;
        match crate::context::base_url(&url) {
            Ok(url) => out.url = Some(url),
            Err(why) => {
                ctx.errors
                    .push(Some(v.span()), field("url"), format!("\"{url}\" {why}"));
                return None;
            }
        }
    }
    Some(out)
}
