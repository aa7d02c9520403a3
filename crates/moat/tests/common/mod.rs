//! Helpers shared by the tests that run the real `moat` binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `moat` binary under test, logging at `info` in text.
pub fn moat() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moat"));
    c.env("MOAT_LOG", "info").env_remove("MOAT_LOG_FORMAT");
    c
}

/// Runs `moat audit verify` on `config`: (success, stdout).
pub fn audit_verify(config: &Path) -> (bool, String) {
    let out = moat()
        .args(["audit", "verify", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A new key of `account`, as `moat keys create --json` prints it.
pub fn create_key(account: &str, config: &Path) -> String {
    created_key(&["keys", "create", "--account", account], config)
}

/// The `key` that `moat ARGS --json --config CONFIG` prints (`keys create`, `admin-keys
/// create`); the command must succeed.
pub fn created_key(args: &[&str], config: &Path) -> String {
    let out = moat()
        .args(args)
        .args(["--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A running `moat serve`; killed if the test ends without stopping it (a failed assertion), so
/// no gateway outlives its test.
pub struct Serve {
    child: Option<Child>,
    /// The last lines of its log, for failure messages.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Serve {
    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `moat serve` on `config` with `env` added and returns it with the address it
/// reported; its log is drained by a thread so the gateway never blocks on a full pipe.
pub fn spawn_serve(config: &Path, env: &[(&str, &str)]) -> (Serve, String) {
    let mut cmd = moat();
    cmd.args(["serve", "--config"])
        .arg(config)
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(VecDeque::new()));
    let tail = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
            }
            let mut tail = tail.lock().unwrap();
            if tail.len() == 40 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("moat serve did not report its address");
    (
        Serve {
            child: Some(child),
            log,
        },
        addr,
    )
}

/// SIGKILL (`Child::kill` on Unix), and the exit status.
pub async fn kill_9(mut serve: Serve) -> std::process::ExitStatus {
    let mut child = serve.child.take().unwrap();
    child.kill().unwrap();
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap()
}

/// Sends SIGTERM and waits for a clean exit.
pub async fn terminate(mut serve: Serve) {
    let mut child = serve.child.take().unwrap();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "moat serve exited with {status} on SIGTERM"
    );
}

/// Sends SIGTERM and waits at most `limit` for the process to exit: its exit status (`None` if
/// it was still running, then killed) and the last lines of its log.
pub async fn terminate_within(
    mut serve: Serve,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let mut child = serve.child.take().unwrap();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The log thread reads what the process wrote last once its pipe closes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (status, serve.log_tail())
}

impl Serve {
    /// The process id of the running gateway (for `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }
}

/// The resident set size of process `pid` in bytes, from `/proc/PID/status` (`VmRSS`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

/// Writes `dir/moat.toml` for `moat serve`: listening on port 0 with `shutdown_grace`, its
/// store `store` in `dir`, one OpenAI-shaped provider `sim` at `openai_url` serving the model
/// `gpt` as `sim-gpt`. `server` holds more `[server]` keys; `sections` more tables, each with
/// its header.
pub fn sim_config(
    dir: &Path,
    openai_url: &str,
    shutdown_grace: &str,
    store: &str,
    server: &str,
    sections: &str,
) -> std::path::PathBuf {
    let path = dir.join("moat.toml");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
shutdown_grace = "{shutdown_grace}"
{server}
[store]
path = "{store}"
[[providers]]
name = "sim"
kind = "openai"
base_url = "{openai_url}"
api_key = "unused"
[[models]]
name = "gpt"
targets = [{{ provider = "sim", model = "sim-gpt" }}]
{sections}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}
