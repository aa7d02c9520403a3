//! Command-line syntax.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// moat: an AI gateway with access discipline, governance, extraction resistance and evidence.
#[derive(Parser, Debug)]
#[command(name = "moat", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway with a config file.
    Serve(ServeArgs),
    /// Run the gateway with a built-in simulated provider, a temporary store and a ready key.
    Demo(DemoArgs),
    /// Manage virtual keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage admin keys: the admin API's credentials, each with a role.
    #[command(subcommand)]
    AdminKeys(AdminKeysCommand),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The distillation detector.
    #[command(subcommand)]
    Detect(DetectCommand),
    /// The workflow inventory.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// Policy routing.
    #[command(subcommand)]
    Route(RouteCommand),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The monthly governance review of a period, from the audit log: inventory, spend,
    /// detection, incidents, near misses and model drift, against the previous period.
    Report(ReportArgs),
}

/// `moat report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The config file (its store holds the audit log; its workflows and budgets are compared).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Start of the period, inclusive: a date (`2026-10-01`, midnight UTC) or RFC 3339.
    #[arg(long, value_parser = date_or_rfc3339)]
    pub from: time::OffsetDateTime,
    /// End of the period, exclusive: a date (`2026-11-01`) or RFC 3339.
    #[arg(long, value_parser = date_or_rfc3339)]
    pub to: time::OffsetDateTime,
    /// `md` (Markdown tables) or `html` (one self-contained page with charts).
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write here instead of to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `moat report --format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// Self-contained HTML.
    Html,
}

/// A date (midnight UTC) or an RFC 3339 time.
fn date_or_rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    let date = time::format_description::well_known::Iso8601::DATE;
    match time::Date::parse(s, &date) {
        Ok(d) => Ok(d.midnight().assume_utc()),
        Err(_) => rfc3339(s)
            .map_err(|_| format!("expected a date such as 2026-10-01 or RFC 3339 time: {s}")),
    }
}

/// `moat audit ...`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the whole chain; name the first edited, deleted, inserted or reordered record.
    Verify(AuditVerifyArgs),
    /// Write records as JSON lines (replayable by `moat detect replay`).
    Export(AuditExportArgs),
    /// Retention: drop the oldest records behind a checkpoint signed with the audit key, so
    /// verification still holds for what remains.
    Prune(AuditPruneArgs),
    /// Print the log's head signed now (and, with --all, the stored retention checkpoints) as
    /// JSON lines, for a third party to keep and check later with `verify --witness`.
    Checkpoint(AuditCheckpointArgs),
    /// Print the audit public key (hex, or PEM with --pem): what a third party needs to check
    /// checkpoints and witnessed heads. Generates the key file if it does not exist yet.
    Pubkey(AuditPubkeyArgs),
}

/// `moat audit pubkey`.
#[derive(Args, Debug)]
pub struct AuditPubkeyArgs {
    /// The config file (`audit.signing_key`, by default beside the store file).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Print it as PEM (`-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout` does).
    #[arg(long)]
    pub pem: bool,
}

/// `moat audit prune`.
#[derive(Args, Debug)]
pub struct AuditPruneArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Drop the records made before this time (RFC 3339); default: now minus `audit.retention`.
    #[arg(long, value_parser = rfc3339, conflicts_with = "through_seq")]
    pub before: Option<time::OffsetDateTime>,
    /// Drop the records up to and including this seq.
    #[arg(long)]
    pub through_seq: Option<u64>,
}

/// `moat audit checkpoint`.
#[derive(Args, Debug)]
pub struct AuditCheckpointArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Also print every stored retention checkpoint, oldest first.
    #[arg(long)]
    pub all: bool,
}

/// `moat audit verify`.
#[derive(Args, Debug)]
pub struct AuditVerifyArgs {
    /// The config file (its store holds the log).
    #[arg(long, short)]
    pub config: PathBuf,
    /// The audit public key (64 hex digits as `moat audit pubkey` prints it, or a file holding
    /// it or its PEM); default: the public half of the config's audit key file.
    #[arg(long)]
    pub pubkey: Option<String>,
    /// A witness file (JSON lines of signed heads): every head must be signed by the key, and
    /// the log must hold each witnessed seq with the witnessed hash. Catches records cut from
    /// the end and rewrites that recomputed every hash.
    #[arg(long)]
    pub witness: Vec<PathBuf>,
    /// A head kept elsewhere, as SEQ:HASH: the log must hold it (as --witness, unsigned).
    #[arg(long, value_parser = head_arg)]
    pub expect_head: Vec<moat_audit::Head>,
}

fn head_arg(text: &str) -> Result<moat_audit::Head, String> {
    let (seq, hash) = text
        .split_once(':')
        .ok_or("expected SEQ:HASH, as `ok: ... head seq N hash H` prints them")?;
    let seq = seq
        .trim()
        .parse()
        .map_err(|_| format!("`{seq}` is not a seq"))?;
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{hash}` is not a hash (64 hex digits)"));
    }
    Ok(moat_audit::Head { seq, hash })
}

/// `moat audit export`.
#[derive(Args, Debug)]
pub struct AuditExportArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// From this time (RFC 3339, inclusive).
    #[arg(long, value_parser = rfc3339)]
    pub from: Option<time::OffsetDateTime>,
    /// Until this time (RFC 3339, exclusive).
    #[arg(long, value_parser = rfc3339)]
    pub to: Option<time::OffsetDateTime>,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only records of this kind (`request` for a trace that replays without skipped lines).
    #[arg(long, value_parser = ["request", "read", "incident"])]
    pub kind: Option<String>,
    /// Who is reading, named in the `read` record each page that prints bodies appends to the
    /// log; default: the OS user (`$USER`).
    #[arg(long = "as", value_name = "NAME")]
    pub reader: Option<String>,
    /// Output format; `jsonl` (one record a line) is the only one.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
    pub format: String,
}

fn rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("expected RFC 3339 such as 2026-11-01T00:00:00Z: {e}"))
}

/// `moat workflows ...`.
#[derive(Subcommand, Debug)]
pub enum WorkflowsCommand {
    /// List registered workflows with their labels, limits and budgets, and the keys of each
    /// (keys naming no registered workflow are listed as unregistered).
    List(ListWorkflowsArgs),
    /// Register (or replace) a workflow in the config's store; a running gateway on the same
    /// store picks it up within seconds. Workflows of the config file are edited there.
    Add(Box<AddWorkflowArgs>),
    /// Remove a workflow registered with `add`; its keys become unregistered traffic.
    Remove(RemoveWorkflowArgs),
}

/// `moat workflows add`.
#[derive(Args, Debug)]
pub struct AddWorkflowArgs {
    /// The config file (its store keeps the workflow).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Unique name; keys name it.
    #[arg(long)]
    pub name: String,
    /// Who answers for it.
    #[arg(long)]
    pub owner: String,
    /// `low`, `medium` or `high`.
    #[arg(long)]
    pub criticality: String,
    /// `public`, `internal`, `confidential` or `restricted`.
    #[arg(long)]
    pub sensitivity: String,
    /// What it does.
    #[arg(long)]
    pub description: Option<String>,
    /// Models it may call, comma-separated (default: any).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// It acts on the world (writes, sends, pays) through tools.
    #[arg(long)]
    pub writes: bool,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u64>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Requests in flight.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Daily budget in currency units, e.g. `25.00`.
    #[arg(long)]
    pub daily: Option<String>,
    /// Weekly budget.
    #[arg(long)]
    pub weekly: Option<String>,
    /// Monthly budget.
    #[arg(long)]
    pub monthly: Option<String>,
}

/// `moat workflows remove`.
#[derive(Args, Debug)]
pub struct RemoveWorkflowArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The workflow's name.
    pub name: String,
}

/// `moat workflows list`.
#[derive(Args, Debug)]
pub struct ListWorkflowsArgs {
    /// The config file (workflows come from it, keys from its store).
    #[arg(long, short)]
    pub config: PathBuf,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `moat route ...`.
#[derive(Subcommand, Debug)]
pub enum RouteCommand {
    /// Dry run: which routing rule a request would match, why, and where it would go.
    Explain(ExplainArgs),
}

/// `moat route explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The key's public id (the part after `moat_`, before the secret), looked up in the store.
    #[arg(long)]
    pub key: String,
    /// The model the request asks for.
    #[arg(long)]
    pub model: String,
    /// A request header as `name=value` (rules may match headers); repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// The explanation as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `moat detect ...`.
#[derive(Subcommand, Debug)]
pub enum DetectCommand {
    /// Run a recorded trace (JSON lines, optionally gzipped) through the detector.
    Replay(ReplayArgs),
    /// Show a running gateway's verdicts (its admin API).
    Verdicts(VerdictsArgs),
}

/// `moat detect verdicts`.
#[derive(Args, Debug)]
pub struct VerdictsArgs {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:4000")]
    pub url: String,
    /// The admin token (`[admin] token` in the gateway's config).
    #[arg(long, env = "MOAT_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Only accounts and end users that crossed the threshold.
    #[arg(long)]
    pub flagged: bool,
    /// Only this account and its end users.
    #[arg(long)]
    pub account: Option<String>,
    /// One JSON object per line (with reasons and evidence) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `moat detect replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The trace: one request per line, time-ordered (`.gz` is decompressed).
    #[arg(long)]
    pub trace: PathBuf,
    /// Where to write verdicts, one JSON line per account and per end user.
    #[arg(long)]
    pub out: PathBuf,
    /// Detector settings (TOML, the `[detection.model]` table's fields); defaults when absent.
    #[arg(long)]
    pub detector_config: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `moat serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Listen on this address instead of `server.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// `moat demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address for the gateway.
    #[arg(long, default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// Keep the demo's config and store in this folder instead of a temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON line (base_url, key, config, models) instead of the human banner.
    #[arg(long)]
    pub json: bool,
}

/// `moat config ...`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file and report every error at once.
    Check(ConfigArgs),
}

/// A command that needs only the config file.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
}

/// `moat keys ...`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key and print it once.
    Create(CreateKeyArgs),
    /// List keys (never their secrets).
    List(ListKeysArgs),
    /// Revoke a key by id.
    Revoke(RevokeKeyArgs),
    /// Give a key a new secret, keeping its id; the old secret works until the grace ends.
    Rotate(RotateKeyArgs),
}

/// `moat keys rotate`.
#[derive(Args, Debug)]
pub struct RotateKeyArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The key's public id.
    pub id: String,
    /// How long the old secret keeps working, e.g. `24h`, `0s` (at most 30 days).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
    /// Print `{"id": ..., "key": ..., "old_key_valid_until": ...}` on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `moat keys create`.
#[derive(Args, Debug)]
pub struct CreateKeyArgs {
    /// The config file (its store holds the key).
    #[arg(long, short)]
    pub config: PathBuf,
    /// The account the key belongs to.
    #[arg(long)]
    pub account: String,
    /// The workflow the key belongs to.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Models the key may call, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Source networks the key may be used from, comma-separated CIDRs (default: anywhere).
    #[arg(long, value_delimiter = ',')]
    pub cidr: Vec<ipnet::IpNet>,
    /// Lifetime, e.g. `30d`, `12h` (default: no expiry).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,
    /// Print `{"id": ..., "key": ...}` on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `moat keys list`.
#[derive(Args, Debug)]
pub struct ListKeysArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `moat keys revoke`.
#[derive(Args, Debug)]
pub struct RevokeKeyArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The key's public id.
    pub id: String,
}

/// `moat admin-keys ...`.
#[derive(Subcommand, Debug)]
pub enum AdminKeysCommand {
    /// Create an admin key and print it once.
    Create(CreateAdminKeyArgs),
    /// List admin keys (never their secrets).
    List(ListKeysArgs),
    /// Revoke an admin key by id; it stops working at once.
    Revoke(RevokeKeyArgs),
}

/// `moat admin-keys create`.
#[derive(Args, Debug)]
pub struct CreateAdminKeyArgs {
    /// The config file (its store holds the key).
    #[arg(long, short)]
    pub config: PathBuf,
    /// `admin` (everything), `security` (audit bodies, verdicts), `auditor` (audit bodies with
    /// personal data and secrets redacted, verdicts) or `viewer` (metadata only).
    #[arg(long, value_parser = ["admin", "security", "auditor", "viewer"])]
    pub role: String,
    /// Who holds it (a person or a system); shown in lists and in the audit log's read records.
    #[arg(long)]
    pub name: String,
    /// Print `{"id": ..., "key": ..., "role": ..., "name": ...}` on stdout.
    #[arg(long)]
    pub json: bool,
}
