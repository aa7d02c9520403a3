//! `moat audit verify|export|prune|checkpoint|pubkey`: the audit log in the config's store,
//! read page by page (constant memory whatever its length).

use crate::cli::{
    AuditCheckpointArgs, AuditExportArgs, AuditPruneArgs, AuditPubkeyArgs, AuditVerifyArgs,
};
use crate::serve::{load_config, open_store};
use anyhow::{bail, Context};
use moat_audit::{
    parse_public_key, verify_witnessed, Anchor, AuditRecord, Chain, Checkpoint, Head, ReadInfo,
    SeqRange, SignedHead, VerifyingKey,
};
use moat_core::Clock;
use moat_store::{AuditQuery, AuditStore, SqliteStore, StoreError, StoredAudit};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// Records read per page.
const PAGE: usize = 1_000;

/// `moat audit verify`: checks every checkpoint's signature, the whole chain from the latest
/// checkpoint to the last record, and (with `--witness` / `--expect-head`) that the log still
/// holds every witnessed head.
pub async fn verify(args: AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let store = Arc::new(open_store(&config)?);
    let needs_key = !args.witness.is_empty() || !store.audit_checkpoints().await?.is_empty();
    let public = match public_key(&config, args.pubkey.as_deref())? {
        Some(public) => public,
        // Nothing signed to check: the chain alone is verified.
        None if !needs_key => moat_audit::AuditKeys::from_seed([0; 32]).verifying_key(),
        None => bail!(
            "no audit key file at {}: give --pubkey (as `moat audit pubkey` printed it where the gateway runs) to check checkpoints and witnessed heads",
            crate::audit_key::path(&config).map_or_else(|| ":memory:".into(), |p| p.display().to_string())
        ),
    };
    let mut heads = args.expect_head.clone();
    for file in &args.witness {
        match read_witness(file, &public)? {
            Ok(mut more) => heads.append(&mut more),
            Err(bad) => {
                println!("BROKEN: {bad}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let checkpoint = match checked_checkpoints(&store, &public).await? {
        Ok(latest) => latest,
        Err(bad) => {
            println!("BROKEN: {bad}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let bounds = store.audit_bounds().await?;
    // A reader task pages through the store; verification consumes the records as they come.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<AuditRecord, String>>(PAGE);
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let Some(b) = bounds else { return };
            let mut from = b.first_seq;
            while from <= b.last_seq {
                let page = match store.audit_range(from, b.last_seq, PAGE).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(format!("store: {e}")));
                        return;
                    }
                };
                let Some(last) = page.last().map(|r| r.seq) else {
                    return;
                };
                for row in page {
                    let parsed = serde_json::from_str::<AuditRecord>(&row.json)
                        .map_err(|e| format!("record {} is not an audit record: {e}", row.seq));
                    if tx.send(parsed).is_err() {
                        return;
                    }
                }
                from = last + 1;
            }
        })
    };
    let report = tokio::task::spawn_blocking(move || {
        let anchor = checkpoint.as_ref().map(|c| Anchor {
            checkpoint: c,
            key: &public,
        });
        verify_witnessed(rx, anchor, &heads)
    })
    .await?;
    reader.await?;
    let witnessed = if args.witness.is_empty() && args.expect_head.is_empty() {
        String::new()
    } else {
        format!(", {} witnessed heads matched", report.witnessed)
    };
    match (&report.first_bad, &report.head) {
        (None, Some(head)) => {
            println!(
                "ok: {} records verified{witnessed}, head seq {} hash {}",
                report.checked, head.seq, head.hash
            );
            Ok(ExitCode::SUCCESS)
        }
        (None, None) => {
            println!("ok: the audit log is empty{witnessed}");
            Ok(ExitCode::SUCCESS)
        }
        (Some(bad), _) => {
            println!("BROKEN: {bad}");
            println!("({} records checked before it)", report.checked);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The public key to verify with: `--pubkey` (hex, or a file holding hex or PEM), else the
/// config's key file's; `None` if neither exists.
fn public_key(
    config: &moat_config::Config,
    given: Option<&str>,
) -> anyhow::Result<Option<VerifyingKey>> {
    if let Some(given) = given {
        let text = match std::fs::read_to_string(given) {
            Ok(text) => text,
            Err(_) => given.to_string(),
        };
        let key = parse_public_key(&text).with_context(|| format!("--pubkey {given}"))?;
        return Ok(Some(key));
    }
    let Some(path) = crate::audit_key::path(config) else {
        return Ok(None);
    };
    Ok(crate::audit_key::load(&path)?.map(|keys| keys.verifying_key()))
}

/// The heads of a witness file, each signature checked; `Err` names the first bad line.
fn read_witness(
    file: &std::path::Path,
    public: &VerifyingKey,
) -> anyhow::Result<Result<Vec<Head>, String>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading witness file {}", file.display()))?;
    // A last line without its newline is a write cut short (a crash mid-append): not a head.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    if whole.len() < text.len() {
        eprintln!(
            "note: witness {}: its last line is incomplete (a write cut short); ignored",
            file.display()
        );
    }
    let mut heads = Vec::new();
    for (i, line) in whole.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("witness {} line {}", file.display(), i + 1);
        let head: SignedHead = match serde_json::from_str(line) {
            Ok(h) => h,
            Err(e) => return Ok(Err(format!("{}: not a signed head: {e}", at()))),
        };
        if !head.verify(public) {
            return Ok(Err(format!(
                "{}: bad signature: not signed by the audit key",
                at()
            )));
        }
        heads.push(Head {
            seq: head.seq,
            hash: head.hash,
        });
    }
    Ok(Ok(heads))
}

/// Every stored checkpoint's signature checked; the latest, which anchors verification.
async fn checked_checkpoints(
    store: &SqliteStore,
    public: &VerifyingKey,
) -> anyhow::Result<Result<Option<Checkpoint>, String>> {
    let mut latest = None;
    for row in store.audit_checkpoints().await? {
        let checkpoint: Checkpoint = match serde_json::from_str(&row.json) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Err(format!(
                    "checkpoint at seq {}: not a signed checkpoint: {e}",
                    row.seq
                )))
            }
        };
        if checkpoint.seq != row.seq || checkpoint.hash != row.hash {
            return Ok(Err(format!(
                "checkpoint at seq {}: its columns do not match its signed document",
                row.seq
            )));
        }
        if !checkpoint.verify(public) {
            return Ok(Err(format!(
                "checkpoint at seq {}: bad signature: not signed by the audit key (unsigned, forged, or another key's)",
                row.seq
            )));
        }
        latest = Some(checkpoint);
    }
    Ok(Ok(latest))
}

/// `moat audit export`: records of a time range (optionally one account, workflow or kind) as
/// JSON lines that `moat detect replay` reads (requests whose bodies were kept in full).
///
/// Like the admin API, a read of bodies is itself recorded: before a page that holds a kept body
/// is printed, a `read` record naming the reader (`--as`, else the OS user), role `cli`, the
/// command line and the page's seqs is appended to the log and committed. The export covers the
/// log up to its last record when the command starts.
pub async fn export(args: AuditExportArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let store = open_store(&config)?;
    let reader = args.reader.clone().unwrap_or_else(os_user);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut query = AuditQuery::new(PAGE);
    query.from_ms = args.from.map(ms);
    query.to_ms = args.to.map(ms);
    query.account = args.account;
    query.workflow = args.workflow;
    query.kind = args.kind;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut written = 0u64;
    // The log as it stands now: the export's own read records, appended as it goes, are not
    // part of it.
    let through = store.audit_tail().await?.map_or(0, |t| t.seq);
    loop {
        let mut page = store.query_audit(&query).await?;
        page.retain(|r| r.seq <= through);
        let Some(last) = page.last().map(|r| r.seq) else {
            break;
        };
        let records = page
            .iter()
            .map(|row| {
                serde_json::from_str::<AuditRecord>(&row.json)
                    .with_context(|| format!("record {} is not an audit record", row.seq))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if records.iter().any(shows_body) {
            let seqs = records.iter().map(|r| r.seq);
            record_read(&store, &reader, &command, SeqRange::runs(seqs)).await?;
        }
        for record in &records {
            writeln!(out, "{}", record.to_export_line())?;
            written += 1;
        }
        query.after_seq = Some(last);
    }
    out.flush()?;
    eprintln!("exported {written} records");
    Ok(ExitCode::SUCCESS)
}

/// `moat audit prune`: drops the longest run of oldest records made before the cutoff (or up to
/// `--through-seq`), after checking that run's chain, behind a checkpoint signed with the audit
/// key (what a running gateway also does every hour with `audit.retention`).
pub async fn prune(args: AuditPruneArgs) -> anyhow::Result<ExitCode> {
    use moat_proxy::audit::retention::{self, Cut, Pruned};
    let config = load_config(&args.config)?;
    let now = moat_core::SystemClock.now_ms();
    let cut = match (args.before, args.through_seq, config.audit.retention) {
        (Some(t), _, _) => Cut::Before(ms(t)),
        (None, Some(seq), _) => Cut::ThroughSeq(seq),
        (None, None, Some(keep)) => {
            Cut::Before(now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX)))
        }
        (None, None, None) => {
            bail!("nothing to prune by: give --before or --through-seq, or set audit.retention")
        }
    };
    let keys = crate::audit_key::load_or_create(&config)?;
    let store = open_store(&config)?;
    if let Err(bad) = checked_checkpoints(&store, &keys.verifying_key()).await? {
        bail!("{bad}; nothing pruned");
    }
    match retention::prune(&store, &keys, cut, now).await? {
        Pruned::Nothing => println!("nothing old enough to prune"),
        Pruned::Dropped {
            count,
            through,
            checked,
            checkpoint,
        } => println!(
            "pruned {count} records through seq {through} ({checked} checked); checkpoint {checkpoint}"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `moat audit checkpoint`: the head, signed now (a head, not a checkpoint: it cannot be stored
/// to drop records), and optionally the stored checkpoints.
pub async fn checkpoint(args: AuditCheckpointArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let keys = crate::audit_key::load_or_create(&config)?;
    let store = open_store(&config)?;
    if args.all {
        for c in store.audit_checkpoints().await? {
            println!("{}", c.json);
        }
    }
    match store.audit_tail().await? {
        Some(tail) => {
            let now = moat_core::SystemClock.now_ms();
            let head = SignedHead::new(tail.seq, tail.hash, now, &keys);
            println!("{}", serde_json::to_string(&head)?);
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("the audit log is empty"),
    }
}

/// Whether `record` keeps a body in full.
fn shows_body(record: &AuditRecord) -> bool {
    record.request_body.as_full().is_some() || record.response_body.as_full().is_some()
}

/// The OS user running the command, from the environment; `unknown` if it names none.
fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Appends and commits the `read` record of `records`, sealed onto the log's tail. A running
/// gateway may append between reading the tail and writing: the store then refuses the record
/// (it does not continue the chain) and it is sealed again on the new tail.
async fn record_read(
    store: &SqliteStore,
    reader: &str,
    command: &str,
    records: Vec<SeqRange>,
) -> anyhow::Result<()> {
    let n: u128 = rand::random();
    let read = AuditRecord::read(
        moat_core::SystemClock.now_ms(),
        format!("req_{:024x}", n & ((1u128 << 96) - 1)),
        ReadInfo {
            reader: reader.to_string(),
            role: "cli".into(),
            query: command.to_string(),
            records,
        },
    );
    for _ in 0..10 {
        let mut chain = match store.audit_tail().await? {
            Some(tail) => Chain::resume(tail.seq, tail.hash),
            None => Chain::start(),
        };
        let row = StoredAudit::of(&chain.seal(read.clone()));
        match store.append_audit(&[row]).await {
            Ok(()) => return Ok(()),
            Err(StoreError::AuditChain(_)) => continue,
            Err(e) => return Err(e).context("cannot record this read in the audit log"),
        }
    }
    bail!("cannot record this read in the audit log: the log keeps moving under it")
}

/// `moat audit pubkey`: the audit public key, hex or PEM (the key file is generated if absent).
pub fn pubkey(args: AuditPubkeyArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    if crate::audit_key::path(&config).is_none() {
        bail!("the store is in memory: its audit key lives only as long as a gateway process");
    }
    let keys = crate::audit_key::load_or_create(&config)?;
    if args.pem {
        print!("{}", keys.public_pem()?);
    } else {
        println!("{}", keys.public_hex());
    }
    Ok(ExitCode::SUCCESS)
}

fn ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
