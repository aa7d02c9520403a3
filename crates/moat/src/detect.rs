//! `moat detect ...`: offline replay of a recorded trace through the detector.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use moat_detect::trace::Record;
use moat_detect::{Detector, DetectorConfig, Extractor, Verdict};

use crate::cli::ReplayArgs;

/// Lines handed from the reader thread to the detector at once.
const BATCH: usize = 512;

/// Runs a trace through the detector and writes one verdict line per account (and per end user).
pub fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let config = match &args.detector_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<DetectorConfig>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => DetectorConfig::default(),
    };
    let total_bytes = std::fs::metadata(&args.trace)
        .with_context(|| format!("reading {}", args.trace.display()))?
        .len();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total_bytes)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    // Decompression and line splitting on one thread, parsing and detection on this one.
    let (tx, rx) = mpsc::sync_channel::<Vec<String>>(64);
    let reader = spawn_reader(&args.trace, tx, bar.clone())?;
    let extractor = Extractor::new();
    let mut detector = Detector::new(config);
    let started = Instant::now();
    let (mut events, mut bad) = (0u64, 0u64);
    for batch in rx {
        for line in batch {
            if line.trim().is_empty() {
                continue;
            }
            match Record::parse(&line, &extractor) {
                Ok(record) => {
                    detector.observe(&record.event());
                    events += 1;
                }
                Err(e) => {
                    bad += 1;
                    if bad <= 5 {
                        tracing::warn!(error = %e, "skipped a trace line");
                    }
                }
            }
        }
        bar.set_message(format!("{events} events, {} accounts", detector.accounts()));
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("trace reader thread failed"))??;
    let elapsed = started.elapsed();
    bar.finish_and_clear();

    let out =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = BufWriter::new(out);
    let accounts = detector.account_verdicts();
    let flagged = accounts.iter().filter(|v| v.flagged).count();
    for v in &accounts {
        writeln!(out, "{}", verdict_line(v))?;
    }
    let end_users = detector.end_user_verdicts();
    for v in &end_users {
        writeln!(out, "{}", verdict_line(v))?;
    }
    out.flush()?;
    eprintln!(
        "replayed {events} events ({bad} skipped) in {:.1} s ({:.0} events/s): {} accounts, {flagged} flagged; {} end users, {} flagged -> {}",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64().max(1e-9),
        accounts.len(),
        end_users.len(),
        end_users.iter().filter(|v| v.flagged).count(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn spawn_reader(
    path: &Path,
    tx: mpsc::SyncSender<Vec<String>>,
    bar: ProgressBar,
) -> Result<std::thread::JoinHandle<Result<()>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let path = path.to_path_buf();
    Ok(std::thread::spawn(move || {
        let counted = bar.wrap_read(file);
        let input: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 20,
                counted,
            )))
        } else {
            Box::new(counted)
        };
        let mut lines = BufReader::with_capacity(1 << 20, input).lines();
        let mut batch = Vec::with_capacity(BATCH);
        for line in lines.by_ref() {
            batch.push(line.with_context(|| format!("reading {}", path.display()))?);
            if batch.len() == BATCH
                && tx
                    .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                    .is_err()
            {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        Ok(())
    }))
}

/// A verdict in the trace verdict format (`../shared/bench/README.md`).
pub fn verdict_line(v: &Verdict) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_string())
}
