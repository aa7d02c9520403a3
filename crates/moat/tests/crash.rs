//! The audit log survives `kill -9` of the real `moat serve` under load: in `sync` mode every
//! request whose response completed has its record; in either mode the chain verifies as left and
//! a restarted gateway continues it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{audit_verify, create_key, kill_9, spawn_serve, terminate};
use moat_testkit::{SimOptions, SimUpstream};
use serde_json::Value;
use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Concurrent clients sending while the gateway is killed.
const CLIENTS: usize = 32;
/// Complete responses to wait for before the kill (about a second of load).
const COMPLETED_BEFORE_KILL: usize = 300;
/// Requests sent to the restarted gateway.
const AFTER_RESTART: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_keeps_every_completed_request_across_kill_9_and_the_chain_continues() {
    let run = crash_run("sync").await;
    let (seqs, ids) = audit_rows(run.dir.path());
    let missing: Vec<&String> = run
        .completed
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} completed requests have no record after kill -9, e.g. {:?}",
        missing.len(),
        run.completed.len(),
        &missing[..missing.len().min(5)]
    );
    // Records may exist for requests whose answer was cut by the kill (committed, not yet
    // delivered), never fewer than the answers delivered.
    assert!(seqs.count >= run.completed.len() as u64);
    run.restart_and_check(seqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_chain_verifies_after_kill_9_and_the_restart_continues_it() {
    // Batch mode may lose up to one flush interval's records at a crash: only the chain's
    // integrity and its continuation are asserted.
    let run = crash_run("batch").await;
    let (seqs, _) = audit_rows(run.dir.path());
    run.restart_and_check(seqs).await;
}

/// What a load run that ended in `kill -9` left behind.
struct Crashed {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    key: String,
    /// Request ids of the responses received completely before the kill.
    completed: Vec<String>,
    _sim: SimUpstream,
}

impl Crashed {
    /// Restarts `moat serve` on the store as left, sends a few requests, stops it cleanly and
    /// checks the chain verifies with seqs `1..` continuing past `before` without a gap.
    async fn restart_and_check(&self, before: Seqs) {
        let (serve, addr) = spawn_serve(&self.config, &[]);
        let client = client();
        let mut new_ids = Vec::new();
        for i in 0..AFTER_RESTART {
            let outcome = send(&client, &addr, &self.key, i % 2 == 0, i, None).await;
            match outcome {
                Outcome::Complete(id) => new_ids.push(id),
                other => panic!(
                    "request {i} after the restart: {other:?}; the gateway's log ends:\n{}",
                    serve.log_tail()
                ),
            }
        }
        terminate(serve).await;

        let (ok, out) = audit_verify(&self.config);
        assert!(ok, "after the restart: {out}");
        let (after, ids) = audit_rows(self.dir.path());
        let total = before.count + AFTER_RESTART as u64;
        assert_eq!(
            (after.count, after.min, after.max),
            (total, 1, total),
            "the restart appends {AFTER_RESTART} records after seq {}",
            before.max
        );
        assert!(
            out.starts_with(&format!(
                "ok: {total} records verified, head seq {total} hash "
            )),
            "{out}"
        );
        for id in &new_ids {
            assert!(
                ids.contains(id),
                "request {id} after the restart has no record"
            );
        }
    }
}

/// Starts the gateway with `durability`, loads it with `CLIENTS` clients, kills it with SIGKILL
/// mid-load and checks the store verifies as left.
async fn crash_run(durability: &str) -> Crashed {
    let started = Instant::now();
    // Streams pace their words (about 80 ms each) so that answers are always mid-body.
    let sim = SimUpstream::start_with(SimOptions {
        word_delay: Duration::from_millis(4),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url(), durability);
    let key = create_key("acme", &config);
    let (serve, addr) = spawn_serve(&config, &[]);

    let load = Arc::new(Load::new());
    let client = client();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, addr, key, load) = (client.clone(), addr.clone(), key.clone(), load.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                // Read before sending: a request that saw `false` was sent before the kill.
                let before_kill = !load.killing.load(Ordering::SeqCst);
                let stream = (c + i) % 2 == 0;
                match send(&client, &addr, &key, stream, c * 100_000 + i, Some(&load)).await {
                    Outcome::Complete(id) => load.completed.lock().unwrap().push(id),
                    Outcome::Refused(status) => {
                        panic!("the gateway answered {status} before the kill")
                    }
                    Outcome::Broken { mid_body, error } => {
                        load.first_error.lock().unwrap().get_or_insert(error);
                        if before_kill {
                            load.cut.fetch_add(1, Ordering::SeqCst);
                        }
                        if mid_body {
                            load.cut_mid_body.fetch_add(1, Ordering::SeqCst);
                        }
                        // The gateway is gone: nothing more to send.
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(10), load.open.notified())
        .await
        .expect("the gateway did not complete enough requests in 10 s");
    load.killing.store(true, Ordering::SeqCst);
    let status = kill_9(serve).await;
    load.killed.send_replace(true);
    assert_eq!(status.signal(), Some(9), "moat serve exited with {status}");
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a client did not notice the kill")
            .unwrap();
    }
    let completed = std::mem::take(&mut *load.completed.lock().unwrap());
    let cut = load.cut.load(Ordering::SeqCst);
    let mid_body = load.cut_mid_body.load(Ordering::SeqCst);
    eprintln!(
        "{durability}: {} responses completed, {cut} requests in flight cut by kill -9 \
         ({mid_body} of them mid-body; the first: {}), after {:?}",
        completed.len(),
        load.first_error
            .lock()
            .unwrap()
            .as_deref()
            .unwrap_or("none"),
        started.elapsed()
    );
    // The kill really happened under load: requests sent before it failed, among them the
    // stream held open across it.
    assert!(cut > 0, "no request was in flight at the kill");
    assert!(mid_body > 0, "no answer was cut mid-body by the kill");
    assert!(completed.len() >= COMPLETED_BEFORE_KILL);

    let (ok, out) = audit_verify(&config);
    assert!(ok, "the store left by kill -9 does not verify: {out}");
    Crashed {
        dir,
        config,
        key,
        completed,
        _sim: sim,
    }
}

/// What the load's clients share.
struct Load {
    /// Request ids of the responses received completely.
    completed: Mutex<Vec<String>>,
    /// Set just before the kill.
    killing: AtomicBool,
    /// Requests sent before the kill that failed.
    cut: AtomicUsize,
    /// Failed requests whose answer had begun (headers received).
    cut_mid_body: AtomicUsize,
    first_error: Mutex<Option<String>>,
    /// Whether a stream has been picked to be open at the kill.
    picked: AtomicBool,
    /// Notified by that stream once its first bytes have arrived.
    open: tokio::sync::Notify,
    /// True once the gateway is dead.
    killed: tokio::sync::watch::Sender<bool>,
}

impl Load {
    fn new() -> Self {
        Load {
            completed: Mutex::new(Vec::new()),
            killing: AtomicBool::new(false),
            cut: AtomicUsize::new(0),
            cut_mid_body: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            picked: AtomicBool::new(false),
            open: tokio::sync::Notify::new(),
            killed: tokio::sync::watch::channel(false).0,
        }
    }

    /// Called by a stream with its first bytes: once enough responses have completed, the
    /// first stream to get here triggers the kill and reads no further until it is done, so
    /// at least one answer is certainly mid-body when the gateway dies.
    async fn opened(&self) {
        if self.completed.lock().unwrap().len() < COMPLETED_BEFORE_KILL
            || self.picked.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let mut killed = self.killed.subscribe();
        self.open.notify_one();
        let _ = killed.wait_for(|k| *k).await;
    }
}

/// How one request ended.
#[derive(Debug)]
enum Outcome {
    /// A 200 read to its end (a stream through `[DONE]` and the end of the body): its request id.
    Complete(String),
    /// An answer other than 200.
    Refused(u16),
    /// The connection failed (`mid_body`: after the answer's headers arrived) or the body ended
    /// early.
    Broken { mid_body: bool, error: String },
}

/// Sends one chat request, streamed or not, and reads the answer to its end; a stream tells
/// `load` when its first bytes arrive.
async fn send(
    client: &reqwest::Client,
    addr: &str,
    key: &str,
    stream: bool,
    n: usize,
    load: Option<&Load>,
) -> Outcome {
    let body = serde_json::json!({
        "model": "gpt",
        "max_tokens": if stream { 20 } else { 4 },
        "stream": stream,
        "messages": [{"role": "user", "content": format!("question {n}")}],
    });
    let mut response = match client
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Broken {
                mid_body: false,
                error: e.to_string(),
            }
        }
    };
    if response.status() != 200 {
        return Outcome::Refused(response.status().as_u16());
    }
    let Some(id) = response
        .headers()
        .get("x-moat-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        panic!("a 200 without x-moat-request-id");
    };
    // The body to its clean end: a response cut by the kill fails here (chunked body without its
    // terminator, or shorter than its content-length).
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.is_empty() && stream {
                    if let Some(load) = load {
                        load.opened().await;
                    }
                }
                bytes.extend_from_slice(&chunk);
                // A stream is complete for its client once `[DONE]` arrived, as the SDKs read
                // it: in sync mode the gateway sends it only after the record's commit.
                if stream && String::from_utf8_lossy(&bytes).contains("data: [DONE]") {
                    return Outcome::Complete(id);
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Outcome::Broken {
                    mid_body: true,
                    error: e.to_string(),
                }
            }
        }
    }
    let whole = if stream {
        String::from_utf8_lossy(&bytes).contains("data: [DONE]")
    } else {
        serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v["choices"][0].is_object())
    };
    if whole {
        Outcome::Complete(id)
    } else {
        Outcome::Broken {
            mid_body: true,
            error: format!("incomplete body: {}", String::from_utf8_lossy(&bytes)),
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn write_config(dir: &Path, openai_url: &str, durability: &str) -> std::path::PathBuf {
    let sections = format!("[audit]\ndurability = \"{durability}\"\n");
    common::sim_config(dir, openai_url, "5s", "keys.db", "", &sections)
}

/// Count and bounds of the stored seqs.
#[derive(Clone, Copy, Debug)]
struct Seqs {
    count: u64,
    min: u64,
    max: u64,
}

/// The audit table of the store in `dir` as it is on disk: its seqs and its request ids.
fn audit_rows(dir: &Path) -> (Seqs, HashSet<String>) {
    let db = rusqlite::Connection::open(dir.join("keys.db")).unwrap();
    let seqs = db
        .query_row(
            "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM audit",
            [],
            |r| {
                Ok(Seqs {
                    count: r.get(0)?,
                    min: r.get(1)?,
                    max: r.get(2)?,
                })
            },
        )
        .unwrap();
    // A chain with a gap would not verify; check it here too so a failure names the gap.
    assert_eq!(
        (seqs.min, seqs.max),
        (u64::from(seqs.count > 0), seqs.count),
        "seqs are 1..=count"
    );
    let mut stmt = db.prepare("SELECT request_id FROM audit").unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<HashSet<_>, _>>()
        .unwrap();
    (seqs, ids)
}
