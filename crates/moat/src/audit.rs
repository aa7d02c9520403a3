//! `moat audit verify` and `moat audit export`: the audit log in the config's store, read page by
//! page (constant memory whatever its length).

use crate::cli::{AuditCheckpointArgs, AuditExportArgs, AuditPruneArgs, AuditVerifyArgs};
use crate::serve::{load_config, open_store};
use anyhow::{bail, Context};
use moat_audit::{verify_fallible, Anchor, AuditRecord, Chain, Checkpoint, ReadInfo, SeqRange};
use moat_core::Clock;
use moat_store::{AuditQuery, AuditStore, SqliteStore, StoreError, StoredAudit};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// Records read per page.
const PAGE: usize = 1_000;

/// `moat audit verify`: checks the whole chain, from the latest retention checkpoint (its
/// signature checked with `audit.checkpoint_key` when set) to the last record.
pub async fn verify(args: AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let store = Arc::new(open_store(&config)?);
    let checkpoint = latest_checkpoint(&store).await?;
    let key = config
        .audit
        .checkpoint_key
        .as_ref()
        .map(|k| k.expose().as_bytes().to_vec());
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
            key: key.as_deref(),
        });
        verify_fallible(rx, anchor)
    })
    .await?;
    reader.await?;
    match (&report.first_bad, &report.head) {
        (None, Some(head)) => {
            println!(
                "ok: {} records verified, head seq {} hash {}",
                report.checked, head.seq, head.hash
            );
            Ok(ExitCode::SUCCESS)
        }
        (None, None) => {
            println!("ok: the audit log is empty");
            Ok(ExitCode::SUCCESS)
        }
        (Some(bad), _) => {
            println!("BROKEN: {bad}");
            println!("({} records checked before it)", report.checked);
            Ok(ExitCode::FAILURE)
        }
    }
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
/// `--through-seq`), after checking that run's chain, behind a checkpoint signed with
/// `audit.checkpoint_key` (what a running gateway also does every hour with `audit.retention`).
pub async fn prune(args: AuditPruneArgs) -> anyhow::Result<ExitCode> {
    use moat_proxy::audit::retention::{self, Cut, Pruned};
    let config = load_config(&args.config)?;
    let Some(key) = config.audit.checkpoint_key.as_ref() else {
        bail!("audit.checkpoint_key is not set: retention needs a key to sign its checkpoint");
    };
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
    let store = open_store(&config)?;
    match retention::prune(&store, key.expose().as_bytes(), cut, now).await? {
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

/// `moat audit checkpoint`: the head, signed now, and optionally the stored checkpoints.
pub async fn checkpoint(args: AuditCheckpointArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let Some(key) = config.audit.checkpoint_key.as_ref() else {
        bail!("audit.checkpoint_key is not set: a checkpoint must be signed");
    };
    let store = open_store(&config)?;
    if args.all {
        for c in store.audit_checkpoints().await? {
            println!("{}", c.json);
        }
    }
    match store.audit_tail().await? {
        Some(tail) => {
            let now = moat_core::SystemClock.now_ms();
            let head = Checkpoint::new(tail.seq, tail.hash, now, key.expose().as_bytes());
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

async fn latest_checkpoint(store: &SqliteStore) -> anyhow::Result<Option<Checkpoint>> {
    match store.audit_checkpoints().await?.last() {
        Some(c) => Ok(Some(
            serde_json::from_str::<Checkpoint>(&c.json)
                .with_context(|| format!("checkpoint at seq {} is unreadable", c.seq))?,
        )),
        None => Ok(None),
    }
}

fn ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
