//! `detect-scale`: the detector over a stream the size of the 2026 seed campaign, generated in
//! process: 28.8 M requests over 44 days, a 25,000-account sybil farm among benign chat users,
//! app keys and evaluation harnesses.
//!
//! `cargo run --release -p moat-bench --bin detect-scale` (the full run; `--events 300000
//! --attack-accounts 300` takes seconds).
//!
//! Threads: one schedules the stream (who sends what, when: seeds only), workers build each
//! request's OpenAI chat body and run it through `RequestView::parse` and `Extractor::extract`,
//! and the main thread feeds `Detector::observe` in stream order. Batches go to the workers
//! round-robin and come back the same way, so the order needs no reordering.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use moat_bench::detect::population::{self, Class, Directory, Plan, Spec};
use moat_bench::detect::prompts::{write_body, Usage};
use moat_bench::detect::sys::{self, mib};
use moat_detect::{Detector, DetectorConfig, Event, Extractor, RequestFeatures};
use moat_protocol::view::{RequestView, ViewApi};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "The detector over a generated campaign-sized stream: throughput and memory")]
struct Args {
    /// Requests in the stream.
    #[arg(long, default_value_t = 28_800_000)]
    events: u64,
    /// Accounts in the sybil farm.
    #[arg(long, default_value_t = 25_000)]
    attack_accounts: u32,
    /// Requests per farm account per day (lowered when the farm would take over 85 % of
    /// `--events`).
    #[arg(long, default_value_t = 26.0)]
    attack_per_day: f64,
    /// Days in the window.
    #[arg(long, default_value_t = 44)]
    days: u32,
    /// Seed of the whole stream.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Body-building and extraction workers (default: the cores available).
    #[arg(long)]
    workers: Option<usize>,
    /// Requests per batch handed to a worker.
    #[arg(long, default_value_t = 2048)]
    batch: usize,
}

/// One request, built and extracted, ready to observe.
struct Out {
    spec: Spec,
    usage: Usage,
    features: Option<RequestFeatures>,
}

/// A batch of requests, built and extracted.
struct Done {
    outs: Vec<Out>,
}

/// CPU time a thread used (from `/proc/thread-self/stat`), and for workers how their wall time
/// split between building bodies and extracting them.
#[derive(Default)]
struct ThreadTime {
    cpu: Duration,
    build_wall: Duration,
    extract_wall: Duration,
}

impl ThreadTime {
    /// The share of the CPU time spent building bodies (by the wall-time ratio).
    fn build_cpu(&self) -> Duration {
        let wall = (self.build_wall + self.extract_wall).as_secs_f64();
        if wall <= 0.0 {
            return Duration::ZERO;
        }
        self.cpu.mul_f64(self.build_wall.as_secs_f64() / wall)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = Plan {
        seed: args.seed,
        events: args.events,
        attack_accounts: args.attack_accounts,
        attack_per_day: args.attack_per_day,
        days: args.days,
    };
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let setup = Instant::now();
    let (dir, schedule) = population::build(&plan);
    let dir = Arc::new(dir);
    eprintln!(
        "plan: {} events over {} days; farm {} accounts at {:.1} requests/day (~{} requests); benign: {} chat accounts, {} chat apps, {} app keys, {} evaluation harnesses, {} end-user ids (chat apps and app keys); built in {:.1} s",
        plan.events,
        plan.days,
        dir.count(Class::Attack),
        dir.attack_per_day,
        dir.attack_expected,
        dir.count(Class::Chat),
        dir.count(Class::ChatApp),
        dir.count(Class::App),
        dir.count(Class::Eval),
        dir.end_users.len(),
        setup.elapsed().as_secs_f64(),
    );

    let mut detector = Detector::new(DetectorConfig::default());
    let totals = run(&dir, schedule, workers, args.batch.max(1), &mut detector)?;
    report(Report {
        dir: &dir,
        detector: &mut detector,
        totals,
        workers,
    });
    Ok(())
}

/// What a run measured.
struct Totals {
    events: u64,
    failed: u64,
    wall: Duration,
    rss_before: u64,
    rss_after: u64,
    peak_stream: u64,
    /// CPU time of the schedule thread.
    scheduling: Duration,
    /// CPU time the workers spent building bodies.
    build: Duration,
    /// CPU time the workers spent parsing and extracting.
    extract: Duration,
    /// CPU time of this thread while it observed.
    observe: Duration,
}

/// Runs the whole stream through `detector`: schedule thread, workers, and observation here.
fn run(
    dir: &Arc<Directory>,
    schedule: population::Schedule,
    workers: usize,
    batch: usize,
    detector: &mut Detector,
) -> anyhow::Result<Totals> {
    let rss_before = sys::rss().unwrap_or(0);
    let started = Instant::now();
    let mut to_workers = Vec::with_capacity(workers);
    let mut from_workers = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (spec_tx, spec_rx) = mpsc::sync_channel::<Vec<Spec>>(4);
        let (done_tx, done_rx) = mpsc::sync_channel::<Done>(4);
        to_workers.push(spec_tx);
        from_workers.push(done_rx);
        handles.push(spawn_worker(Arc::clone(dir), spec_rx, done_tx));
    }
    let scheduler = spawn_scheduler(schedule, to_workers, batch);

    let (mut events, mut failed) = (0u64, 0u64);
    let main_cpu = sys::thread_cpu().unwrap_or_default();
    let mut request_id = String::with_capacity(16);
    let mut last_report = Instant::now();
    for i in 0.. {
        let Ok(done) = from_workers[i % workers].recv() else {
            break;
        };
        for out in &done.outs {
            let Some(features) = &out.features else {
                failed += 1;
                continue;
            };
            let s = &out.spec;
            let account = &dir.accounts[s.account as usize];
            request_id.clear();
            let _ = write!(request_id, "req_{:010}", s.index);
            detector.observe(&Event {
                ts_ms: s.ts_ms,
                request_id: &request_id,
                account: &account.name,
                end_user: s.end_user.map(|u| dir.end_users[u as usize].as_str()),
                account_created_ms: Some(account.created_ms),
                ip: Some(IpAddr::V4(Ipv4Addr::from(s.ip))),
                input_tokens: out.usage.input,
                output_tokens: out.usage.output,
                features,
            });
            events += 1;
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  {:>6.0} s  {events:>10} events  {:>7.0} events/s  {} accounts  {} end users  RSS {:.0} MiB",
                secs,
                events as f64 / secs,
                detector.accounts(),
                detector.end_users(),
                mib(sys::rss().unwrap_or(0)),
            );
        }
    }
    let wall = started.elapsed();
    let observe = sys::thread_cpu()
        .unwrap_or_default()
        .saturating_sub(main_cpu);
    let rss_after = sys::rss().unwrap_or(0);
    let peak_stream = sys::peak_rss().unwrap_or(0);
    let mut worker_times = Vec::with_capacity(workers);
    for h in handles {
        worker_times.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("a worker thread failed"))?,
        );
    }
    let scheduling = scheduler
        .join()
        .map_err(|_| anyhow::anyhow!("the schedule thread failed"))?
        .cpu;
    let build: Duration = worker_times.iter().map(ThreadTime::build_cpu).sum();
    let extract = worker_times
        .iter()
        .map(|t| t.cpu)
        .sum::<Duration>()
        .saturating_sub(build);

    Ok(Totals {
        events,
        failed,
        wall,
        rss_before,
        rss_after,
        peak_stream,
        scheduling,
        build,
        extract,
        observe,
    })
}

/// Deals the stream to the workers in batches, round-robin.
fn spawn_scheduler(
    mut schedule: population::Schedule,
    workers: Vec<SyncSender<Vec<Spec>>>,
    batch: usize,
) -> JoinHandle<ThreadTime> {
    std::thread::spawn(move || {
        for i in 0.. {
            let specs: Vec<Spec> = schedule.by_ref().take(batch).collect();
            if specs.is_empty() || workers[i % workers.len()].send(specs).is_err() {
                break;
            }
        }
        ThreadTime {
            cpu: sys::thread_cpu().unwrap_or_default(),
            ..ThreadTime::default()
        }
    })
}

/// Builds bodies (timed as generation), then parses and extracts them (timed as detection).
fn spawn_worker(
    dir: Arc<Directory>,
    specs: Receiver<Vec<Spec>>,
    out: SyncSender<Done>,
) -> JoinHandle<ThreadTime> {
    std::thread::spawn(move || {
        let mut time = ThreadTime::default();
        let extractor = Extractor::new();
        let mut arena = String::with_capacity(4 << 20);
        let mut spans = Vec::new();
        for batch in specs {
            let started = Instant::now();
            arena.clear();
            spans.clear();
            let mut usages = Vec::with_capacity(batch.len());
            for spec in &batch {
                let start = arena.len();
                let user = spec.end_user.map(|u| dir.end_users[u as usize].as_str());
                usages.push(write_body(&spec.content, user, &mut arena));
                spans.push(start..arena.len());
            }
            let built = Instant::now();
            let outs = batch
                .into_iter()
                .zip(usages)
                .zip(&spans)
                .map(|((spec, usage), span)| Out {
                    spec,
                    usage,
                    features: RequestView::parse(
                        ViewApi::OpenAiChat,
                        &arena.as_bytes()[span.clone()],
                    )
                    .ok()
                    .map(|view| extractor.extract(&view)),
                })
                .collect();
            time.build_wall += built - started;
            time.extract_wall += built.elapsed();
            if out.send(Done { outs }).is_err() {
                break;
            }
        }
        time.cpu = sys::thread_cpu().unwrap_or_default();
        time
    })
}

struct Report<'a> {
    dir: &'a Directory,
    detector: &'a mut Detector,
    totals: Totals,
    workers: usize,
}

fn report(r: Report<'_>) {
    let t = &r.totals;
    let secs = t.wall.as_secs_f64().max(1e-9);
    let accounts = r.detector.accounts() as u64;
    let end_users = r.detector.end_users() as u64;
    let grown = t.rss_after.saturating_sub(t.rss_before);
    println!(
        "events            {} ({} bodies failed to parse)",
        t.events, t.failed
    );
    println!("wall time         {secs:.1} s");
    println!("throughput        {:.0} events/s", t.events as f64 / secs);
    println!(
        "peak RSS (VmHWM)  {:.0} MiB (see below for the peak once every verdict is built)",
        mib(t.peak_stream)
    );
    println!("accounts tracked  {accounts}");
    println!("end users tracked {end_users}");
    println!(
        "detector memory   RSS {:.0} MiB -> {:.0} MiB over the stream: {:.0} bytes per account (all growth / accounts), {:.0} bytes per account or end user (all growth / both)",
        mib(t.rss_before),
        mib(t.rss_after),
        grown as f64 / accounts.max(1) as f64,
        grown as f64 / (accounts + end_users).max(1) as f64,
    );
    let generation = t.scheduling + t.build;
    let detection = t.extract + t.observe;
    println!(
        "CPU time          generation {:.1} s (schedule {:.1} s, bodies {:.1} s over {} workers); detector {:.1} s (parse+extract {:.1} s, observe {:.1} s on one thread); detector / generation = {:.2}",
        generation.as_secs_f64(),
        t.scheduling.as_secs_f64(),
        t.build.as_secs_f64(),
        r.workers,
        detection.as_secs_f64(),
        t.extract.as_secs_f64(),
        t.observe.as_secs_f64(),
        detection.as_secs_f64() / generation.as_secs_f64().max(1e-9),
    );

    // Sanity check of the verdicts (not an acceptance figure: the generator is not a labelled
    // benchmark).
    const CLASSES: [(Class, &str); 5] = [
        (Class::Attack, "farm"),
        (Class::Chat, "chat"),
        (Class::ChatApp, "chat app"),
        (Class::App, "app key"),
        (Class::Eval, "eval harness"),
    ];
    let mut seen = [0u64; 5];
    let mut flagged = [0u64; 5];
    let mut first_flag = Vec::new();
    for account in &r.dir.accounts {
        let Some(c) = CLASSES.iter().position(|(c, _)| *c == account.class) else {
            continue;
        };
        let Some(v) = r.detector.verdict(&account.name) else {
            continue;
        };
        seen[c] += 1;
        if v.flagged {
            flagged[c] += 1;
            if account.class == Class::Attack {
                first_flag.extend(v.first_flagged_request);
            }
        }
    }
    first_flag.sort_unstable();
    let farm = r.dir.count(Class::Attack);
    println!(
        "flagged farm      {} / {farm} ({:.2} %; {} of them sent requests); median request count at first flag {}",
        flagged[0],
        100.0 * flagged[0] as f64 / farm.max(1) as f64,
        seen[0],
        first_flag.get(first_flag.len() / 2).map_or("-".to_string(), |n| n.to_string()),
    );
    let benign_seen: u64 = seen[1..].iter().sum();
    let benign_flagged: u64 = flagged[1..].iter().sum();
    let by_class: Vec<String> = (1..5)
        .map(|c| format!("{} {}/{}", CLASSES[c].1, flagged[c], seen[c]))
        .collect();
    println!(
        "flagged benign    {benign_flagged} / {benign_seen} accounts ({:.3} %): {}",
        100.0 * benign_flagged as f64 / benign_seen.max(1) as f64,
        by_class.join(", "),
    );
    let users = r.detector.end_user_verdicts();
    println!(
        "flagged end users {} / {} (all benign)",
        users.iter().filter(|v| v.flagged).count(),
        users.len(),
    );
    println!(
        "peak RSS (VmHWM)  {:.0} MiB with every verdict built",
        mib(sys::peak_rss().unwrap_or(0))
    );
}
