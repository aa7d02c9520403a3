//! `moat detect ...`: offline replay of a recorded trace through the detector.
//!
//! The replay is a pipeline: one thread decompresses the trace and cuts it into chunks of whole
//! lines; parse workers turn each chunk into records (JSON, request view, features), which is
//! nearly all of the work; this thread folds the records into the detector in trace order. Chunks
//! go to the workers round-robin and come back the same way, so the order needs no reordering
//! buffer: chunk `i` is always worker `i % W`'s next result.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use moat_detect::trace::{Record, TraceError};
use moat_detect::{Detector, DetectorConfig, Extractor, Verdict};
use serde_json::json;

use crate::cli::ReplayArgs;

/// Bytes of whole lines handed to a parse worker at once (a few hundred trace lines).
const CHUNK: usize = 1 << 20;
/// Chunks queued per worker, each way.
const QUEUE: usize = 4;
/// Parse workers at most (observing, on this thread, is an order of magnitude cheaper).
const MAX_WORKERS: usize = 8;

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

    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS);
    let started = Instant::now();
    let run = run_trace(&args.trace, Detector::new(config), workers, &bar)?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let mut detector = run.detector;

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
    let secs = elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "replayed {} events ({} skipped) in {:.1} s ({:.0} events/s): {} accounts, {flagged} flagged; {} end users, {} flagged -> {}",
        run.events,
        run.bad,
        elapsed.as_secs_f64(),
        run.events as f64 / secs,
        accounts.len(),
        end_users.len(),
        end_users.iter().filter(|v| v.flagged).count(),
        args.out.display()
    );
    eprintln!(
        "time: parse+extract {:.1} s over {workers} worker(s), observe {:.1} s, waiting for parsed events {:.1} s",
        run.parse_time.as_secs_f64(),
        run.observe_time.as_secs_f64(),
        run.wait_time.as_secs_f64(),
    );
    Ok(ExitCode::SUCCESS)
}

/// What a replay produced.
struct Run {
    detector: Detector,
    events: u64,
    bad: u64,
    /// Time the workers spent parsing and extracting, summed over workers.
    parse_time: Duration,
    /// Time this thread spent in `Detector::observe`.
    observe_time: Duration,
    /// Time this thread waited for the next parsed chunk.
    wait_time: Duration,
}

/// One chunk's records, in line order, and the time it took to parse them.
struct Parsed {
    records: Vec<Result<Record, TraceError>>,
    took: Duration,
}

/// Reads the trace at `path` through `detector` with `workers` parse workers, in trace order.
fn run_trace(
    path: &Path,
    mut detector: Detector,
    workers: usize,
    bar: &ProgressBar,
) -> Result<Run> {
    let workers = workers.max(1);
    let mut to_workers = Vec::with_capacity(workers);
    let mut from_workers = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (parsed_tx, parsed_rx) = mpsc::sync_channel::<Parsed>(QUEUE);
        to_workers.push(chunk_tx);
        from_workers.push(parsed_rx);
        handles.push(spawn_worker(chunk_rx, parsed_tx));
    }
    let reader = spawn_reader(path, to_workers, bar.clone())?;

    let (mut events, mut bad) = (0u64, 0u64);
    let (mut parse_time, mut observe_time, mut wait_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    // Chunk i comes from worker i % W; the first worker with nothing more means the trace ended
    // (every later chunk would have gone to a worker after it).
    for i in 0.. {
        let waited = Instant::now();
        let Ok(parsed) = from_workers[i % workers].recv() else {
            break;
        };
        let observing = Instant::now();
        wait_time += observing - waited;
        parse_time += parsed.took;
        for record in parsed.records {
            match record {
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
        observe_time += observing.elapsed();
        bar.set_message(format!("{events} events, {} accounts", detector.accounts()));
    }
    drop(from_workers);
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("trace parse worker failed"))?;
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("trace reader thread failed"))??;
    Ok(Run {
        detector,
        events,
        bad,
        parse_time,
        observe_time,
        wait_time,
    })
}

/// A parse worker: chunks of whole lines in, records out, until the reader hangs up.
fn spawn_worker(chunks: Receiver<Vec<u8>>, out: SyncSender<Parsed>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let extractor = Extractor::new();
        for chunk in chunks {
            let started = Instant::now();
            let records = chunk
                .split(|&b| b == b'\n')
                .filter(|line| !line.trim_ascii().is_empty())
                .map(|line| match std::str::from_utf8(line) {
                    Ok(line) => Record::parse(line, &extractor),
                    Err(e) => Err(TraceError::Body(format!("line is not UTF-8: {e}"))),
                })
                .collect();
            let parsed = Parsed {
                records,
                took: started.elapsed(),
            };
            if out.send(parsed).is_err() {
                return;
            }
        }
    })
}

/// The reader: decompresses the trace and deals chunks of whole lines to the workers in turn.
fn spawn_reader(
    path: &Path,
    workers: Vec<SyncSender<Vec<u8>>>,
    bar: ProgressBar,
) -> Result<JoinHandle<Result<()>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let path = path.to_path_buf();
    Ok(std::thread::spawn(move || {
        let counted = bar.wrap_read(file);
        let mut input: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 20,
                counted,
            )))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, counted))
        };
        let mut carry = Vec::new();
        for i in 0.. {
            let chunk = next_chunk(&mut input, &mut carry)
                .with_context(|| format!("reading {}", path.display()))?;
            let Some(chunk) = chunk else { break };
            if workers[i % workers.len()].send(chunk).is_err() {
                break;
            }
        }
        Ok(())
    }))
}

/// The next run of whole lines, about [`CHUNK`] bytes (more when one line is longer); a partial
/// last line is kept in `carry` for the next call. `None` at the end of the input.
fn next_chunk(input: &mut dyn Read, carry: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(CHUNK + carry.len() + 4096);
    buf.append(carry);
    loop {
        let read = (&mut *input).take(CHUNK as u64).read_to_end(&mut buf)?;
        if read == 0 {
            return Ok((!buf.is_empty()).then_some(buf));
        }
        if buf.len() >= CHUNK {
            if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
                carry.extend_from_slice(&buf[end + 1..]);
                buf.truncate(end + 1);
                return Ok(Some(buf));
            }
        }
    }
}

/// A verdict in the trace verdict format (`../shared/bench/README.md`): RFC 3339 first-flag time.
pub fn verdict_line(v: &Verdict) -> serde_json::Value {
    let mut line = serde_json::to_value(v).unwrap_or_else(|_| json!({}));
    if let (Some(ms), Some(obj)) = (v.first_flagged_ms, line.as_object_mut()) {
        obj.remove("first_flagged_ms");
        if let Some(ts) = rfc3339_ms(ms) {
            obj.insert("first_flagged_ts".into(), json!(ts));
        }
    }
    line
}

fn rfc3339_ms(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A trace whose verdicts depend on order: harvesting accounts (single-turn asks for
    /// reasoning about varied problems under rotating system prompts) among chatting ones; lines
    /// span many chunks.
    fn write_trace(path: &Path, lines: usize) {
        let mut out = BufWriter::new(File::create(path).unwrap());
        let systems = [
            "You are a meticulous tutor.",
            "Reason like an expert mathematician.",
            "You are a careful analyst who never skips a step.",
            "Act as a patient teacher.",
        ];
        let things = [
            "tank", "train", "garden", "bakery", "ladder", "river", "library", "orchard",
            "factory", "bridge", "kettle",
        ];
        let asks = [
            "how long until it is empty",
            "what fraction remains after a week",
            "which option costs less over a year",
            "how many trips are needed",
            "what is the average per day",
            "when do the two meet",
            "how much is left for the weekend",
        ];
        let suffixes = [
            "Think it through step by step.",
            "Show your reasoning for every step.",
            "Explain your reasoning before answering.",
            "Walk me through your thought process.",
            "Justify each step.",
            "Break it down and explain why.",
            "Reason carefully through each step.",
            "Lay out the steps and the logic behind them.",
            "Show all your work.",
        ];
        for i in 0..lines {
            let harvest = i % 3 == 0;
            let (account, messages) = if harvest {
                let (a, b) = (things[i % things.len()], things[(i / 11) % things.len()]);
                let ask = asks[(i / 7) % asks.len()];
                let prompt = format!(
                    "Consider a {a} and a {b} with {} and {} units: {ask}? {}",
                    i * 7 + 3,
                    i % 9 + 1,
                    suffixes[(i / 3) % suffixes.len()]
                );
                (
                    "acct_h",
                    json!([
                        {"role": "system", "content": systems[i % systems.len()]},
                        {"role": "user", "content": prompt}
                    ]),
                )
            } else {
                (
                    "acct_c",
                    json!([
                        {"role": "user", "content": "hello, can you help me plan a trip?"},
                        {"role": "assistant", "content": "Of course. Where to?"},
                        {"role": "user", "content": format!("Somewhere warm in week {i}, with a {} hour flight at most.", i % 7)}
                    ]),
                )
            };
            let ms = 1_772_323_200_000i64 + i as i64 * 60_000;
            let ts = rfc3339_ms(ms).unwrap();
            let line = json!({
                "ts": ts, "request_id": format!("req_{i}"), "account": format!("{account}{}", i % 5),
                "account_created": "2026-02-27T10:00:00.000Z", "ip": format!("203.0.{}.9", i % 40),
                "api": "openai.chat", "request": {"model": "m", "messages": messages},
                "response": {"input_tokens": 120, "output_tokens": 900}
            });
            writeln!(out, "{line}").unwrap();
            if i % 100 == 0 {
                writeln!(out).unwrap();
            }
        }
        writeln!(out, "not json").unwrap();
    }

    fn verdicts(path: &Path, workers: usize) -> (Vec<Verdict>, u64, u64) {
        let run = run_trace(
            path,
            Detector::new(DetectorConfig::default()),
            workers,
            &ProgressBar::hidden(),
        )
        .unwrap();
        let mut detector = run.detector;
        let mut all = detector.account_verdicts();
        all.extend(detector.end_user_verdicts());
        (all, run.events, run.bad)
    }

    #[test]
    fn parallel_parsing_observes_in_trace_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        // About 3 MB: several chunks per worker.
        write_trace(&path, 6_000);
        let one = verdicts(&path, 1);
        assert_eq!((one.1, one.2), (6_000, 1));
        assert!(
            one.0.iter().any(|v| v.flagged),
            "the harvesting accounts are flagged"
        );
        for workers in [2, 3] {
            assert_eq!(verdicts(&path, workers), one, "{workers} workers");
        }
    }

    #[test]
    fn chunks_end_on_line_ends_and_keep_long_lines_whole() {
        let long = "x".repeat(CHUNK + 10);
        let text = format!("a\n{long}\nb\nc");
        let mut input = text.as_bytes();
        let mut carry = Vec::new();
        let mut chunks = Vec::new();
        while let Some(c) = next_chunk(&mut input, &mut carry).unwrap() {
            chunks.push(String::from_utf8(c).unwrap());
        }
        assert_eq!(chunks.concat(), text);
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.ends_with('\n')));
        assert!(chunks.iter().any(|c| c.contains(&long)));
    }
}
