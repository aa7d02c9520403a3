//! The real `moat serve` and a store that cannot take its records (issue 11, items 3 and 4): a
//! second gateway on the same store is refused, a read-only store stops the start, a full disk
//! (a small tmpfs) turns `/readyz` red and answers 503 until space returns, with no answer
//! unrecorded in `sync` mode, and SIGTERM stops the process within its grace while the store
//! fails, logging the records lost.
//!
//! The tmpfs and read-only tests mount file systems: where that is not permitted (not root, no
//! mount namespace) they print why and pass without running.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{audit_verify, create_key, moat, spawn_serve, terminate, terminate_within};
use moat_testkit::SimUpstream;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_config(dir: &Path, openai_url: &str, extra: &str) -> PathBuf {
    common::sim_config(
        dir,
        openai_url,
        "1s",
        "moat.db",
        "",
        &format!("[audit]\n{extra}"),
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// A chat request with a 256 KB prompt (kept in full by the record, so every record needs new
/// pages on disk): (status, request id, body).
async fn chat(client: &reqwest::Client, addr: &str, key: Option<&str>) -> (u16, String, Value) {
    let prompt = "lorem ipsum ".repeat(256 * 1024 / 12);
    let mut req = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&json!({"model": "gpt", "max_tokens": 3, "messages": [{"role": "user", "content": prompt}]}));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.unwrap();
    let id = r
        .headers()
        .get("x-moat-request-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, id, body)
}

async fn readyz(client: &reqwest::Client, addr: &str) -> (u16, Value) {
    let r = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Polls `/readyz` until it answers `want`, for at most 30 s.
async fn until_ready_is(client: &reqwest::Client, addr: &str, want: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(client, addr).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {status} ({body}) after 30 s, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A small tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) where mounting is not permitted.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
        // The last partial chunk too, byte runs of 4 KB.
        while f
            .write_all(&chunk[..4096])
            .and_then(|()| f.sync_all())
            .is_ok()
        {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The request ids the store in `dir` keeps.
fn recorded_ids(dir: &Path) -> std::collections::HashSet<String> {
    let db = rusqlite::Connection::open(dir.join("moat.db")).unwrap();
    let mut stmt = db.prepare("SELECT request_id FROM audit").unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_store_is_refused_while_cli_readers_still_work() {
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url(), "");
    let key = create_key("acme", &config);
    let (first, addr) = spawn_serve(&config, &[]);
    let (status, _, _) = chat(&client(), &addr, Some(&key)).await;
    assert_eq!(status, 200);

    // The second gateway stops at once with a clear error (bounded: killed after 20 s).
    let mut second = moat()
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            second.kill().unwrap();
            panic!("a second moat serve on the same store is still running after 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("in use by another moat serve"), "{err}");

    // The CLI still reads and writes the store the gateway serves from.
    let (ok, out) = audit_verify(&config);
    assert!(ok, "{out}");
    let other = create_key("beta", &config);
    assert_eq!(
        chat(&client(), &addr, Some(&other)).await.0,
        200,
        "{}",
        first.log_tail()
    );
    terminate(first).await;
    // The lock goes with the process: the next gateway starts.
    let (again, addr) = spawn_serve(&config, &[]);
    assert_eq!(chat(&client(), &addr, Some(&key)).await.0, 200);
    terminate(again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    create_key("acme", &config);
    let db = dir.path().join("moat.db");
    // A read-only bind mount of the store file alone: the directory (and the lock file) stay
    // writable, the database does not, even for root.
    let bind = Command::new("mount")
        .arg("--bind")
        .arg(&db)
        .arg(&db)
        .status();
    if !bind.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot bind-mount the store file read-only here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&db);
    let remount = Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(remount.success());

    let mut serve = moat()
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = serve.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            serve.kill().unwrap();
            panic!("moat serve on a read-only store is still running after 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("cannot be written"), "{err}");
    assert!(err.contains("read-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_on_a_full_disk_answers_503_with_red_readiness_and_recovers_with_every_answer_recorded(
) {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let sim = SimUpstream::start().await.unwrap();
    let config = write_config(
        fs.path(),
        &sim.openai_base_url(),
        "durability = \"sync\"\ncommit_timeout = \"1s\"",
    );
    let key = create_key("acme", &config);
    let (serve, addr) = spawn_serve(&config, &[]);
    let client = client();
    let mut answered = Vec::new();
    let (status, id, _) = chat(&client, &addr, Some(&key)).await;
    assert_eq!(status, 200);
    answered.push(id);

    let filler = fs.fill();
    let (status, _, body) = chat(&client, &addr, Some(&key)).await;
    assert_eq!(status, 503, "{body}\n{}", serve.log_tail());
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    let ready = until_ready_is(&client, &addr, 503).await;
    assert_eq!(ready["reason"], "audit", "{ready}");
    // Refused at once, not held: a request without a key does not wait for a commit either.
    let (status, _, body) = chat(&client, &addr, None).await;
    assert_eq!(status, 503, "{body}");

    // Space returns: the writer's retry gets through and serving resumes.
    std::fs::remove_file(filler).unwrap();
    until_ready_is(&client, &addr, 200).await;
    let (status, id, _) = chat(&client, &addr, Some(&key)).await;
    assert_eq!(status, 200, "{}", serve.log_tail());
    answered.push(id);
    terminate(serve).await;

    let (ok, out) = audit_verify(&config);
    assert!(ok, "{out}");
    let ids = recorded_ids(fs.path());
    for id in &answered {
        assert!(ids.contains(id), "answered 200 without a record: {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_within_the_grace_while_the_store_fails_and_logs_the_records_lost() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let sim = SimUpstream::start().await.unwrap();
    let config = write_config(fs.path(), &sim.openai_base_url(), "durability = \"batch\"");
    let key = create_key("acme", &config);
    let (serve, addr) = spawn_serve(&config, &[]);
    let client = client();
    assert_eq!(chat(&client, &addr, Some(&key)).await.0, 200);
    until_ready_is(&client, &addr, 200).await;
    let _filler = fs.fill();
    // Batch mode answers into the backlog while appends fail.
    for _ in 0..2 {
        assert_eq!(chat(&client, &addr, Some(&key)).await.0, 200);
    }
    until_ready_is(&client, &addr, 503).await;

    // shutdown_grace is 1 s: drain, then at most 1 s of flushing. 20 s is the test's bound.
    let (status, log) = terminate_within(serve, Duration::from_secs(20)).await;
    let status = status.unwrap_or_else(|| panic!("still running 20 s after SIGTERM:\n{log}"));
    assert!(status.success(), "{status}\n{log}");
    let lost = log
        .split("records_lost=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no records_lost in the log:\n{log}"));
    assert!(lost >= 2, "{lost} records lost; log:\n{log}");
    eprintln!("records lost at shutdown, as logged: {lost}");
}
