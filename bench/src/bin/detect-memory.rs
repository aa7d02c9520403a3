//! `detect-memory`: what the detector keeps per tracked account and per end user, read as the
//! growth of the process's resident set (`VmRSS`) while it folds in typical traffic.
//!
//! `cargo run --release -p moat-bench --bin detect-memory`
//!
//! Accounts get `--requests` requests each, a mix of chat users, farm accounts (rotating system
//! prompts and proxy networks), app keys and evaluation harnesses, so their state (system-prompt
//! lists, network lists, near-duplicate rings, affix sketches) fills as it would. End users then
//! get the same behind one app key. The shared indexes (templates, networks, sign-ups) grow with
//! the accounts and are counted in the per-account figure.

use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;
use moat_bench::detect::population::T0_MS;
use moat_bench::detect::prompts::{write_body, Content};
use moat_bench::detect::rng::Rng;
use moat_bench::detect::sys::{self, mib};
use moat_detect::{Detector, DetectorConfig, Event, Extractor, RequestFeatures};
use moat_protocol::view::{RequestView, ViewApi};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Detector memory per tracked account and per end user (RSS growth)")]
struct Args {
    /// Accounts to track.
    #[arg(long, default_value_t = 100_000)]
    accounts: u32,
    /// End users to track behind one app key.
    #[arg(long, default_value_t = 100_000)]
    end_users: u32,
    /// Requests per account and per end user.
    #[arg(long, default_value_t = 30)]
    requests: u32,
    /// Seed.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

/// Feature pools by kind of client: chat, farm, app, eval.
fn pools(seed: u64) -> anyhow::Result<[Vec<RequestFeatures>; 4]> {
    let extractor = Extractor::new();
    let mut r = Rng::new(seed);
    let mut body = String::new();
    let mut pool =
        |make: &mut dyn FnMut(&mut Rng) -> Content| -> anyhow::Result<Vec<RequestFeatures>> {
            (0..512)
                .map(|_| {
                    body.clear();
                    write_body(&make(&mut r), None, &mut body);
                    let view = RequestView::parse(ViewApi::OpenAiChat, body.as_bytes())?;
                    Ok(extractor.extract(&view))
                })
                .collect()
        };
    let apps: Vec<u64> = (0..64).map(|i| Rng::derive(seed, i).next_u64()).collect();
    Ok([
        pool(&mut |r| Content::Chat {
            session: r.next_u64(),
            turn: r.below(4) as u8,
            intl: r.chance(0.04),
            app: None,
        })?,
        pool(&mut |r| Content::Attack {
            farm: seed,
            seed: r.next_u64(),
        })?,
        pool(&mut |r| Content::App {
            app: *r.pick(&apps),
            seed: r.next_u64(),
        })?,
        pool(&mut |r| Content::Eval {
            suite: seed ^ r.below(3) as u64,
            item: r.below(2000) as u32,
        })?,
    ])
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pools = pools(args.seed)?;
    let names: Vec<String> = (0..args.accounts).map(|i| format!("acct_{i:08}")).collect();
    let users: Vec<String> = (0..args.end_users)
        .map(|i| format!("user-{i:08}"))
        .collect();
    let mut r = Rng::new(args.seed);
    let mut detector = Detector::new(DetectorConfig::default());
    let rss0 = sys::rss().unwrap_or(0);

    // Accounts: round after round, so time moves forward for everyone.
    let n = u64::from(args.accounts.max(1));
    let step = 44 * 86_400_000 / (n * u64::from(args.requests.max(1))).max(1);
    let mut ts = T0_MS;
    for _ in 0..args.requests {
        for (i, name) in names.iter().enumerate() {
            ts += step as i64;
            let kind = i % 4;
            let ip = match kind {
                // Farm accounts rotate through proxy networks; others keep theirs.
                1 => [45, r.below(256) as u8, r.below(256) as u8, 9],
                _ => [81, (i >> 8) as u8, i as u8, 9],
            };
            detector.observe(&Event {
                ts_ms: ts,
                request_id: "req_0000000000",
                account: name,
                end_user: None,
                account_created_ms: Some(T0_MS - (i as i64 % 400) * 86_400_000),
                ip: Some(IpAddr::V4(Ipv4Addr::from(ip))),
                input_tokens: 300,
                output_tokens: 500,
                features: r.pick(&pools[kind]),
            });
        }
    }
    let rss1 = sys::rss().unwrap_or(0);

    // End users behind one app key.
    let n = u64::from(args.end_users.max(1));
    let step = 44 * 86_400_000 / (n * u64::from(args.requests.max(1))).max(1);
    for _ in 0..args.requests {
        for user in &users {
            ts += step as i64;
            detector.observe(&Event {
                ts_ms: ts,
                request_id: "req_0000000000",
                account: "acct_chat_app",
                end_user: Some(user),
                account_created_ms: Some(T0_MS - 300 * 86_400_000),
                ip: Some(IpAddr::V4(Ipv4Addr::new(34, 1, 2, 3))),
                input_tokens: 300,
                output_tokens: 500,
                features: r.pick(&pools[0]),
            });
        }
    }
    let rss2 = sys::rss().unwrap_or(0);

    println!(
        "accounts          {} with {} requests each: RSS {:.1} -> {:.1} MiB = {:.0} bytes per account",
        detector.accounts() - 1,
        args.requests,
        mib(rss0),
        mib(rss1),
        rss1.saturating_sub(rss0) as f64 / f64::from(args.accounts.max(1)),
    );
    println!(
        "end users         {} with {} requests each: RSS {:.1} -> {:.1} MiB = {:.0} bytes per end user",
        detector.end_users(),
        args.requests,
        mib(rss1),
        mib(rss2),
        rss2.saturating_sub(rss1) as f64 / f64::from(args.end_users.max(1)),
    );
    println!(
        "peak RSS (VmHWM)  {:.1} MiB",
        mib(sys::peak_rss().unwrap_or(0))
    );
    Ok(())
}
