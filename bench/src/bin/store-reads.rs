//! `store-reads`: key-lookup latency on the SQLite store while admin viewers page through the
//! audit log, against the same lookups with no viewer, in one run; with the read pools and with
//! every read on the writer's one connection (as before them).
//!
//! `cargo run --release -p moat-bench --bin store-reads`
//!
//! Lookups call `KeyStore::get_key` directly: the gateway's key cache hides the store on a hit,
//! so this is what a cache miss (a new key, an expired entry) waits for.

use clap::Parser;
use hdrhistogram::Histogram;
use moat_store::conformance::{audit_chain, sample_key};
use moat_store::{AuditQuery, AuditStore, KeyStore, PageBudget, SqliteStore};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Key-lookup latency under concurrent viewer queries of the audit log")]
struct Args {
    /// Audit records in the log.
    #[arg(long, default_value_t = 5_000)]
    records: u64,
    /// Bytes of body in each record.
    #[arg(long, default_value_t = 8_192)]
    body_bytes: usize,
    /// Keys in the store (looked up round-robin).
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
    /// Lookups measured per phase (one a millisecond; on one connection under viewers each
    /// waits for a page, so that phase takes about `lookups` times the loaded p50).
    #[arg(long, default_value_t = 500)]
    lookups: usize,
    /// Viewers paging through the log (1000 records a page) in a loop during the loaded phase.
    #[arg(long, default_value_t = 4)]
    viewers: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("moat.db");
    let store = SqliteStore::open(&path)?;
    for i in 0..args.keys {
        store.insert_key(&sample_key(&format!("key{i}"), 0)).await?;
    }
    let body = "x".repeat(args.body_bytes);
    let mut prev = moat_store::conformance::GENESIS.to_string();
    let mut seq = 1;
    while seq <= args.records {
        let n = (args.records - seq + 1).min(500);
        let mut batch = audit_chain(seq, n, &prev);
        for r in &mut batch {
            r.json = format!(
                r#"{{"seq":{},"kind":"request","request_body":{{"full":"{body}"}},"response_body":{{"omitted":true}}}}"#,
                r.seq
            );
        }
        prev = batch.last().map(|r| r.hash.clone()).unwrap_or_default();
        store.append_audit(&batch).await?;
        seq += n;
    }
    println!(
        "{} keys, {} records of {} B bodies, {} viewers, {} lookups a phase",
        args.keys, args.records, args.body_bytes, args.viewers, args.lookups
    );
    for (name, store) in [
        ("read pools", store.clone()),
        ("one connection", store.clone().without_read_pools()),
    ] {
        let idle = lookups(&store, &args).await?;
        let (loaded, pages) = under_viewers(&store, &args).await?;
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{name:>14}: no viewers p50 {:.3} ms p99 {:.3} ms | {} viewers p50 {:.3} ms p99 {:.3} ms ({pages} pages read) | ratio p50 {:.1}x p99 {:.1}x",
            ms(&idle, 0.5),
            ms(&idle, 0.99),
            args.viewers,
            ms(&loaded, 0.5),
            ms(&loaded, 0.99),
            ms(&loaded, 0.5) / ms(&idle, 0.5).max(0.001),
            ms(&loaded, 0.99) / ms(&idle, 0.99).max(0.001),
        );
    }
    Ok(())
}

/// Latency of `args.lookups` key lookups, one a millisecond (so a phase lasts about as long
/// whatever the latency, and the viewers run throughout), in microseconds.
async fn lookups(store: &SqliteStore, args: &Args) -> anyhow::Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new(3)?;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..args.lookups {
        tick.tick().await;
        let id = format!("key{}", i % args.keys);
        let start = Instant::now();
        let found = store.get_key(&id).await?;
        h.record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))?;
        anyhow::ensure!(found.is_some(), "key {id} is missing");
    }
    Ok(h)
}

/// Lookups while `args.viewers` tasks page through the whole log, as a viewer, in a loop; and
/// how many pages they read in all.
async fn under_viewers(store: &SqliteStore, args: &Args) -> anyhow::Result<(Histogram<u64>, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicU64::new(0));
    let budget = PageBudget {
        max_bytes: 8 << 20,
        bodies: false,
    };
    let viewers: Vec<_> = (0..args.viewers)
        .map(|_| {
            let (store, stop, pages) = (store.clone(), Arc::clone(&stop), Arc::clone(&pages));
            tokio::spawn(async move {
                let mut q = AuditQuery::new(1000);
                while !stop.load(Ordering::Relaxed) {
                    let Ok(page) = store.audit_page(&q, budget).await else {
                        return;
                    };
                    pages.fetch_add(1, Ordering::Relaxed);
                    q.after_seq = page.next_after_seq;
                }
            })
        })
        .collect();
    // Measure once every viewer is reading.
    while pages.load(Ordering::Relaxed) < args.viewers as u64 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let h = lookups(store, args).await;
    stop.store(true, Ordering::Relaxed);
    for v in viewers {
        let _ = v.await;
    }
    Ok((h?, pages.load(Ordering::Relaxed)))
}
