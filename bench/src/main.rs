//! Load harness: how much latency the gateway adds over calling the same upstream directly.
//!
//! The simulated provider and the gateway each run on their own runtime (own worker threads), the load
//! generator on a third. The generator is open-loop: request `i` is sent at `start + i / rate`
//! whether or not earlier ones have returned, so a slow server cannot slow the offered load
//! (coordinated omission). Latency runs from the moment the request is handed to the client to the
//! last byte of the answer; tokio's timer fires up to ~1 ms late, so measuring from the due time would
//! bury sub-millisecond differences in timer jitter. Phases alternate direct / through-gateway for several rounds, so both see
//! the same machine conditions; the report gives percentiles of each and their difference.
//!
//! Besides `direct`, `bare` and `gateway` (no audit log), the targets `governed` (every governance
//! stage on) and `audit-batch` / `audit-sync` (an audit log on a SQLite file of its own, written
//! in batches or committed before each response completes) are gateways in the same process.

mod bare;

use clap::Parser;
use hdrhistogram::Histogram;
use moat_config::{
    Config, Durability, KeysConfig, ModelConfig, ProviderConfig, ServerConfig, StoreConfig,
    TargetConfig,
};
use moat_core::{Protocol, Secret};
use moat_policy::generate_key;
use moat_proxy::{AppState, Gateway};
use moat_store::{AuditStore, KeyStore, MemoryStore, SqliteStore};
use moat_testkit::{SimOptions, SimUpstream};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const UPSTREAM_KEY: &str = "bench-upstream-key";

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Latency moat adds over a direct call to a local upstream, at a fixed rate")]
struct Args {
    /// Requests per second, both phases.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Direct/gateway phase pairs.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Stream the answers (latency to the last byte) instead of plain JSON.
    #[arg(long)]
    stream: bool,
    /// Ask the Anthropic-kind route through the OpenAI endpoint (measures translation).
    #[arg(long)]
    translate: bool,
    /// Which targets to measure, in order; the first is the baseline the others are compared with.
    /// `governed` is a second gateway with limits, budgets, a registered workflow and routing
    /// rules on (none of which refuses): compared with `gateway`, it prices the governance stages.
    /// `audit-batch` and `audit-sync` are the default gateway with an audit log on a SQLite file
    /// (`audit.durability` batch or sync): compared with `gateway`, they price the audit record.
    #[arg(long, value_delimiter = ',', default_value = "direct,bare,gateway")]
    targets: Vec<String>,
    /// Log filter for the gateway (`info` logs every request, as `moat serve` does by default).
    #[arg(long, default_value = "info")]
    log: String,
    /// Worker threads for the gateway's runtime.
    #[arg(long, default_value_t = 2)]
    gateway_threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Format every request log line as `moat serve` does by default, into a sink: the cost of
    // logging is part of what the gateway adds.
    let _log_guard = moat_proxy::init_logging(std::io::sink(), &args.log, false, false);
    let sim_rt = runtime(1, "sim")?;
    let gw_rt = runtime(args.gateway_threads, "gateway")?;
    let load_rt = runtime(1, "load")?;

    let sim = sim_rt.block_on(SimUpstream::start_with(SimOptions {
        api_key: Some(UPSTREAM_KEY.into()),
        ..SimOptions::default()
    }))?;
    let store = Arc::new(MemoryStore::new());
    let key = generate_key();
    let record = key.record("bench", 0);
    gw_rt.block_on(store.insert_key(&record))?;
    let state = AppState::new(config(&sim), store.clone())?;
    let gateway = gw_rt.block_on(Gateway::start(state, "127.0.0.1:0".parse()?))?;
    let governed_key = generate_key();
    let mut governed_record = governed_key.record("bench", 0);
    governed_record.workflow = Some("bench-agent".into());
    gw_rt.block_on(store.insert_key(&governed_record))?;
    let governed_state = AppState::new(governed(config(&sim)), store.clone())?;
    let governed_gateway =
        gw_rt.block_on(Gateway::start(governed_state, "127.0.0.1:0".parse()?))?;
    // Audited gateways only when asked for: each writes a store file.
    let audit_dir = std::env::temp_dir().join(format!("moat-bench-{}", std::process::id()));
    let mut audited = Vec::new();
    for (name, durability) in [
        ("audit-batch", Durability::Batch),
        ("audit-sync", Durability::Sync),
    ] {
        if args.targets.iter().any(|t| t == name) {
            std::fs::create_dir_all(&audit_dir)?;
            let path = audit_dir.join(format!("{name}.db"));
            let gateway = gw_rt.block_on(start_audited(
                config(&sim),
                store.clone(),
                durability,
                &path,
            ))?;
            audited.push((name, gateway, path));
        }
    }

    let (model_direct, model_gateway) = if args.translate {
        ("sim-claude", "claude")
    } else {
        ("sim-gpt", "gpt")
    };
    let body = |model: &str| {
        json!({"model": model, "max_tokens": 16, "stream": args.stream,
               "messages": [{"role": "user", "content": "Summarise the benefits of a gateway in one line."}]})
        .to_string()
    };
    let direct = Target {
        name: "direct",
        url: if args.translate {
            format!("{}/v1/messages", sim.anthropic_base_url())
        } else {
            format!("{}/chat/completions", sim.openai_base_url())
        },
        key: UPSTREAM_KEY.to_string(),
        body: if args.translate {
            json!({"model": model_direct, "max_tokens": 16, "stream": args.stream,
                   "messages": [{"role": "user", "content": "Summarise the benefits of a gateway in one line."}]})
            .to_string()
        } else {
            body(model_direct)
        },
    };
    let bare_addr = gw_rt.block_on(bare::start(sim.addr()))?;
    let bare = Target {
        name: "bare",
        url: direct
            .url
            .replace(&sim.addr().to_string(), &bare_addr.to_string()),
        key: direct.key.clone(),
        body: direct.body.clone(),
    };
    let via = Target {
        name: "gateway",
        url: format!("http://{}/v1/chat/completions", gateway.addr()),
        key: key.key.expose().clone(),
        body: body(model_gateway),
    };

    println!(
        "moat-bench: {} req/s, {} s per phase, {} rounds, {}{}; gateway on {} worker threads",
        args.rate,
        args.seconds,
        args.rounds,
        if args.stream { "stream" } else { "non-stream" },
        if args.translate {
            ", OpenAI client -> Anthropic-kind target (translated)"
        } else {
            ", passthrough"
        },
        args.gateway_threads
    );
    let governed = Target {
        name: "governed",
        url: format!("http://{}/v1/chat/completions", governed_gateway.addr()),
        key: governed_key.key.expose().clone(),
        body: body(model_gateway),
    };
    let mut all = vec![direct, bare, via, governed];
    for (name, (gateway, _), _) in &audited {
        all.push(Target {
            name,
            url: format!("http://{}/v1/chat/completions", gateway.addr()),
            key: key.key.expose().clone(),
            body: body(model_gateway),
        });
    }
    let mut chosen = Vec::new();
    for name in &args.targets {
        let i = all
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| anyhow::anyhow!("unknown target {name}"))?;
        chosen.push(all.remove(i));
    }
    let report = load_rt.block_on(run(&args, &chosen))?;
    println!("{report}");
    gw_rt.block_on(gateway.shutdown())?;
    gw_rt.block_on(governed_gateway.shutdown())?;
    // Shutting down flushes each audit log; dropping the runtime ends its writer task, and the
    // last handle on a store closes it (SQLite folds the WAL into the file), so the file's size
    // is what the records take.
    let mut counts = Vec::new();
    for (name, (gateway, audit), path) in audited {
        gw_rt.block_on(gateway.shutdown())?;
        let records = gw_rt.block_on(audit.audit_bounds())?.map_or(0, |b| b.count);
        counts.push((name, records, path));
    }
    drop(gw_rt);
    for (name, records, path) in &counts {
        println!("{}", store_size(name, *records, path)?);
    }
    if !counts.is_empty() {
        std::fs::remove_dir_all(&audit_dir)?;
    }
    drop(sim);
    Ok(())
}

/// The default gateway with an audit log of `durability` on the SQLite file `path`; the store
/// handle is returned so the records can be counted afterwards.
async fn start_audited(
    mut config: Config,
    keys: Arc<MemoryStore>,
    durability: Durability,
    path: &Path,
) -> anyhow::Result<(Gateway, Arc<SqliteStore>)> {
    config.audit.durability = durability;
    let audit = Arc::new(SqliteStore::open(path)?);
    let state = AppState::new(config, keys)?
        .with_audit_store(audit.clone())
        .await?;
    Ok((Gateway::start(state, "127.0.0.1:0".parse()?).await?, audit))
}

/// One line on how much store `records` audit records took in `path` (no WAL left beside it
/// once the store is closed; if one is, it is counted too).
fn store_size(name: &str, records: u64, path: &Path) -> anyhow::Result<String> {
    let mut bytes = std::fs::metadata(path)?.len();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(m) = std::fs::metadata(&wal) {
        bytes += m.len();
    }
    Ok(format!(
        "{name}: {records} records, store {:.1} MB, {} bytes per record",
        bytes as f64 / 1e6,
        bytes.checked_div(records).unwrap_or(0)
    ))
}

fn runtime(threads: usize, name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
}

fn config(sim: &SimUpstream) -> Config {
    let provider = |name: &str, kind, url: String| {
        let mut p = ProviderConfig::new(name, kind, url);
        p.api_key = Some(Secret::new(UPSTREAM_KEY.to_string()));
        p
    };
    let model = |name: &str, provider: &str, target: &str| {
        ModelConfig::new(name, vec![TargetConfig::new(provider, target)])
    };
    Config {
        server: ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            // The load generator is one address: only the global cap applies to it.
            max_connections_per_address: ServerConfig::DEFAULT_MAX_CONNECTIONS,
            ..ServerConfig::default()
        },
        store: StoreConfig {
            path: ":memory:".into(),
            url: None,
        },
        keys: KeysConfig::default(),
        providers: vec![
            provider("oa", Protocol::OpenAi, sim.openai_base_url()),
            provider("an", Protocol::Anthropic, sim.anthropic_base_url()),
        ],
        models: vec![
            model("gpt", "oa", "sim-gpt"),
            model("claude", "an", "sim-claude"),
        ],
        filters: vec![],
        params: Default::default(),
        tiers: vec![],
        // As `moat serve` runs by default: the detector in monitor mode, no admin API.
        detection: Default::default(),
        admin: Default::default(),
        governance: Default::default(),
        workflows: vec![],
        accounts: vec![],
        prices: vec![],
        routing_rules: vec![],
        failover: Default::default(),
        audit: Default::default(),
    }
}

/// `config` with every governance stage on and none refusing: per-key, workflow and account rate
/// limits (requests, tokens, concurrency), daily and monthly budgets, a registered workflow,
/// priced models and four routing rules of which the last matches.
fn governed(mut config: Config) -> Config {
    use moat_config::{
        Budget, Criticality, Limits, PriceConfig, RoutingRule, RuleMatch, Sensitivity,
        WorkflowConfig,
    };
    use moat_core::Money;
    let limits = Limits {
        requests_per_minute: Some(10_000_000),
        tokens_per_minute: Some(10_000_000_000),
        concurrency: Some(100_000),
    };
    let budget = Budget {
        daily: Some(Money(1_000_000_000_000)),
        monthly: Some(Money(10_000_000_000_000)),
        ..Budget::default()
    };
    config.governance.key_limits = limits;
    config.governance.key_budget = budget;
    config.governance.account_limits = limits;
    config.governance.account_budget = budget;
    let mut workflow = WorkflowConfig::new("bench-agent", "bench");
    workflow.criticality = Criticality::High;
    workflow.sensitivity = Sensitivity::Confidential;
    workflow.limits = limits;
    workflow.budget = budget;
    config.workflows.push(workflow);
    for model in ["sim-gpt", "sim-claude"] {
        config.prices.push(PriceConfig {
            model: model.into(),
            input: 2_500_000,
            output: 10_000_000,
            cached_input: None,
            cache_write: None,
            context_window: None,
            max_output: None,
        });
    }
    let rule = |name: &str, when: RuleMatch| RoutingRule {
        name: name.into(),
        when,
        use_model: None,
        only_providers_tagged: vec![],
        deny: None,
    };
    config.routing_rules = vec![
        rule(
            "restricted",
            RuleMatch {
                sensitivity: vec![Sensitivity::Restricted],
                ..RuleMatch::default()
            },
        ),
        rule(
            "low",
            RuleMatch {
                criticality: vec![Criticality::Low],
                ..RuleMatch::default()
            },
        ),
        rule(
            "batch-header",
            RuleMatch {
                headers: vec![("x-job-class".into(), "batch".into())],
                ..RuleMatch::default()
            },
        ),
        RoutingRule {
            use_model: Some("gpt".into()),
            ..rule(
                "high-to-gpt",
                RuleMatch {
                    criticality: vec![Criticality::High],
                    ..RuleMatch::default()
                },
            )
        },
    ];
    config
}

/// Where one phase sends its requests.
struct Target {
    name: &'static str,
    url: String,
    key: String,
    body: String,
}

/// Latencies of one target over all its phases.
struct Tally {
    latencies: Histogram<u64>,
    errors: u64,
    sent: u64,
}

/// Runs the warm-up and the measured rounds over `targets` (the first is the baseline).
async fn run(args: &Args, targets: &[Target]) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    // Warm both paths (connection pools, caches) before measuring.
    for t in targets {
        phase(&client, t, args.rate, Duration::from_secs(1)).await?;
    }
    let mut tallies = targets
        .iter()
        .map(|_| new_tally())
        .collect::<anyhow::Result<Vec<_>>>()?;
    for round in 0..args.rounds {
        for (i, t) in targets.iter().enumerate() {
            let (h, errors, sent) =
                phase(&client, t, args.rate, Duration::from_secs(args.seconds)).await?;
            eprintln!(
                "round {} {:<11} p50 {:>7.1} us  p99 {:>8.1} us  errors {errors}",
                round + 1,
                t.name,
                h.value_at_quantile(0.5) as f64,
                h.value_at_quantile(0.99) as f64
            );
            tallies[i].latencies.add(&h)?;
            tallies[i].errors += errors;
            tallies[i].sent += sent;
        }
    }
    let named: Vec<(&str, &Tally)> = targets.iter().map(|t| t.name).zip(tallies.iter()).collect();
    Ok(render(&named))
}

fn new_tally() -> anyhow::Result<Tally> {
    Ok(Tally {
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        errors: 0,
        sent: 0,
    })
}

/// Sends `rate` requests a second for `length`, open-loop; returns latencies in microseconds.
async fn phase(
    client: &reqwest::Client,
    t: &Target,
    rate: u32,
    length: Duration,
) -> anyhow::Result<(Histogram<u64>, u64, u64)> {
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = (u64::from(rate) * length.as_millis() as u64) / 1000;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let request = client
            .post(&t.url)
            .bearer_auth(&t.key)
            .header("x-api-key", &t.key)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(t.body.clone());
        let hist = Arc::clone(&hist);
        let errors = Arc::clone(&errors);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = match request.send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            let micros = sent.elapsed().as_micros() as u64;
            if ok {
                if let Ok(mut h) = hist.lock() {
                    let _ = h.record(micros.max(1));
                }
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let h = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?
        .clone();
    Ok((h, errors.load(std::sync::atomic::Ordering::Relaxed), total))
}

/// The table of percentiles per target, then each target's latency over the baseline (the first).
fn render(tallies: &[(&str, &Tally)]) -> String {
    const QUANTILES: [(&str, f64); 4] =
        [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];
    let mut out = format!(
        "\n{:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
        "", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "sent", "errors"
    );
    for (name, t) in tallies {
        let h = &t.latencies;
        out.push_str(&format!(
            "{:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
            name,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            t.sent,
            t.errors
        ));
    }
    let Some((base_name, base)) = tallies.first() else {
        return out;
    };
    for (name, t) in &tallies[1..] {
        out.push_str(&format!("\nadded by {name} over {base_name} (same run):\n"));
        for (label, q) in QUANTILES {
            let d = base.latencies.value_at_quantile(q) as f64;
            let g = t.latencies.value_at_quantile(q) as f64;
            let ratio = if d > 0.0 { g / d } else { f64::NAN };
            out.push_str(&format!("  {label:<6} {:>+9.1} us  ({ratio:.2}x)\n", g - d));
        }
    }
    out
}
