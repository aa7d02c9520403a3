//! `moat audit verify` and `moat audit export`: the audit log in the config's store, read page by
//! page (constant memory whatever its length).

use crate::cli::{AuditCheckpointArgs, AuditExportArgs, AuditPruneArgs, AuditVerifyArgs};
use crate::serve::{load_config, open_store};
use anyhow::{bail, Context};
use moat_audit::{verify_fallible, Anchor, AuditRecord, Checkpoint};
use moat_core::Clock;
use moat_store::{AuditQuery, AuditStore, SqliteStore, StoredCheckpoint};
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
    let checkpoint = match store.audit_checkpoints().await?.last() {
        Some(c) => Some(
            serde_json::from_str::<Checkpoint>(&c.json)
                .with_context(|| format!("checkpoint at seq {} is unreadable", c.seq))?,
        ),
        None => None,
    };
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

/// `moat audit export`: records of a time range (optionally one account or workflow) as JSON
/// lines that `moat detect replay` reads (requests whose bodies were kept in full).
pub async fn export(args: AuditExportArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let store = open_store(&config)?;
    let mut query = AuditQuery::new(PAGE);
    query.from_ms = args.from.map(ms);
    query.to_ms = args.to.map(ms);
    query.account = args.account;
    query.workflow = args.workflow;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut written = 0u64;
    loop {
        let page = store.query_audit(&query).await?;
        let Some(last) = page.last().map(|r| r.seq) else {
            break;
        };
        for row in &page {
            let record: AuditRecord = serde_json::from_str(&row.json)
                .with_context(|| format!("record {} is not an audit record", row.seq))?;
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
/// `audit.checkpoint_key`.
pub async fn prune(args: AuditPruneArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let Some(key) = config.audit.checkpoint_key.as_ref() else {
        bail!("audit.checkpoint_key is not set: retention needs a key to sign its checkpoint");
    };
    let key = key.expose().as_bytes().to_vec();
    let now = moat_core::SystemClock.now_ms();
    let cutoff = match (args.before, args.through_seq, config.audit.retention) {
        (Some(t), _, _) => Some(ms(t)),
        (None, Some(_), _) => None,
        (None, None, Some(keep)) => {
            Some(now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX)))
        }
        (None, None, None) => {
            bail!("nothing to prune by: give --before or --through-seq, or set audit.retention")
        }
    };
    let store = open_store(&config)?;
    let Some(bounds) = store.audit_bounds().await? else {
        println!("the audit log is empty; nothing pruned");
        return Ok(ExitCode::SUCCESS);
    };
    let anchor = latest_checkpoint(&store).await?;
    // Walk the oldest records, checking their chain, up to the last one to drop.
    let mut chain_ok = moat_audit::verify(std::iter::empty(), None);
    let mut prefix: Vec<AuditRecord> = Vec::new();
    let mut last: Option<AuditRecord> = None;
    let mut from = bounds.first_seq;
    'pages: while from <= bounds.last_seq {
        let page = store.audit_range(from, bounds.last_seq, PAGE).await?;
        let Some(page_last) = page.last().map(|r| r.seq) else {
            break;
        };
        for row in page {
            let record: AuditRecord = serde_json::from_str(&row.json)
                .with_context(|| format!("record {} is not an audit record", row.seq))?;
            let keep = match (cutoff, args.through_seq) {
                (Some(c), _) => record.ts_ms >= c,
                (None, Some(s)) => record.seq > s,
                (None, None) => true,
            };
            if keep {
                break 'pages;
            }
            prefix.push(record.clone());
            last = Some(record);
            // Verify in pages, so the memory held stays bounded.
            if prefix.len() >= PAGE {
                chain_ok = check(&prefix, anchor.as_ref(), &key, chain_ok)?;
                prefix.clear();
            }
        }
        from = page_last + 1;
    }
    chain_ok = check(&prefix, anchor.as_ref(), &key, chain_ok)?;
    let Some(last) = last else {
        println!("no record is old enough; nothing pruned");
        return Ok(ExitCode::SUCCESS);
    };
    if last.seq == bounds.last_seq {
        bail!("pruning would drop every record, head included; keep at least the last one");
    }
    let checkpoint = Checkpoint::covering(&last, now, &key);
    let stored = StoredCheckpoint {
        seq: checkpoint.seq,
        hash: checkpoint.hash.clone(),
        ts_ms: checkpoint.ts_ms,
        json: serde_json::to_string(&checkpoint)?,
    };
    let dropped = store.drop_audit_through(&stored).await?;
    println!(
        "pruned {dropped} records through seq {} ({} checked); checkpoint {}",
        last.seq, chain_ok.checked, stored.json
    );
    Ok(ExitCode::SUCCESS)
}

/// Verifies `records` continuing the chain checked so far; an error if it breaks, since a
/// checkpoint must never vouch for a broken log.
fn check(
    records: &[AuditRecord],
    anchor: Option<&Checkpoint>,
    key: &[u8],
    so_far: moat_audit::Report,
) -> anyhow::Result<moat_audit::Report> {
    if records.is_empty() {
        return Ok(so_far);
    }
    let report = match &so_far.head {
        // Continue from the last page's head, as if it were a checkpoint.
        Some(head) => {
            let resume = Checkpoint::new(head.seq, head.hash.clone(), 0, key);
            let anchor = Anchor {
                checkpoint: &resume,
                key: Some(key),
            };
            moat_audit::verify(records.iter().cloned(), Some(anchor))
        }
        None => moat_audit::verify(
            records.iter().cloned(),
            anchor.map(|c| Anchor {
                checkpoint: c,
                key: Some(key),
            }),
        ),
    };
    if let Some(bad) = &report.first_bad {
        bail!("the records to prune do not verify ({bad}); nothing pruned");
    }
    Ok(moat_audit::Report {
        checked: so_far.checked + report.checked,
        ..report
    })
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
