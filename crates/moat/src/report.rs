//! `moat report`: the governance review of a period, computed from the config's audit log page
//! by page (memory bounded by the number of workflows, accounts, providers, models and hours,
//! not by the number of records) and written as Markdown or HTML.

use crate::cli::{ReportArgs, ReportFormat};
use crate::serve::{load_config, open_store};
use anyhow::{bail, Context};
use moat_audit::AuditRecord;
use moat_report::{Builder, Period, ReportConfig};
use moat_store::{AuditQuery, AuditStore};
use std::process::ExitCode;

/// Records read per page.
const PAGE: usize = 1_000;

/// `moat report`.
pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let from = ms(args.from);
    let to = ms(args.to);
    let Some(period) = Period::new(from, to) else {
        bail!("--from must be before --to");
    };
    let mut config = load_config(&args.config)?;
    let store = open_store(&config)?;
    crate::route::add_stored(&mut config, &store).await?;
    let mut builder = Builder::new(ReportConfig::from_config(&config), period);
    let span = builder.span();
    let mut query = AuditQuery::new(PAGE);
    query.from_ms = Some(span.from_ms);
    query.to_ms = Some(span.to_ms);
    // Every kind: request records, incident records (breaker transitions); the builder counts
    // reads of the log as skipped.
    let mut read = 0u64;
    loop {
        let page = store.query_audit(&query).await?;
        let Some(last) = page.last().map(|r| r.seq) else {
            break;
        };
        for row in &page {
            let record: AuditRecord = serde_json::from_str(&row.json)
                .with_context(|| format!("record {} is not an audit record", row.seq))?;
            builder.add(&record);
            read += 1;
        }
        query.after_seq = Some(last);
    }
    let report = builder.finish();
    let text = match args.format {
        ReportFormat::Md => moat_report::markdown(&report),
        ReportFormat::Html => moat_report::html(&report),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("report of {read} records written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
