//! Hostile clients against the real `moat serve` (issue 11): connection exhaustion and floods
//! of failed authentications. Hostile connections come from 127.0.0.2 (all of 127/8 is
//! loopback on Linux), so the per-address limits apply to them and not to the healthy client
//! on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{create_key, spawn_serve, terminate};
use moat_testkit::SimUpstream;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn write_config(dir: &Path, openai_url: &str, server: &str, extra: &str) -> PathBuf {
    common::sim_config(dir, openai_url, "2s", "keys.db", server, extra)
}

/// A connection to `to` from `source`, or `None` when it cannot be made in time.
async fn connect_from(source: IpAddr, to: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(10), socket.connect(to))
        .await
        .ok()?
        .ok()
}

/// Whether the server closes `stream` within `bound`, reading what it sends meanwhile.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The sum of the samples of `name` whose labels contain `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn chat(client: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

fn healthy_client(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_clients_are_served_while_ten_thousand_hostile_connections_are_held() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let sim = SimUpstream::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Timeouts far beyond the test: every connection the gateway admits stays held.
        let server = "header_read_timeout = \"120s\"\nidle_timeout = \"120s\"\n\
                      max_connections = 6000\nmax_connections_per_address = 4000";
        let config = write_config(dir.path(), &sim.openai_base_url(), server, "");
        let key = create_key("a", &config);
        let (serve, addr) = spawn_serve(&config, &[]);
        let to: SocketAddr = addr.parse().unwrap();
        let base = format!("http://{addr}");

        // 10,000 hostile connections: silent ones, half-sent request lines, bare HTTP/2
        // prefaces. The first 4,000 are held by the gateway; the rest are refused at once.
        let hostile: IpAddr = "127.0.0.2".parse().unwrap();
        let mut held = Vec::with_capacity(10_000);
        for i in 0..10_000 {
            let Some(mut s) = connect_from(hostile, to).await else {
                continue;
            };
            let _ = match i % 3 {
                0 => Ok(()),
                1 => s.write_all(b"GET /v1/models HTT").await,
                _ => s.write_all(H2_PREFACE).await,
            };
            held.push(s);
        }
        assert!(
            held.len() >= 9_000,
            "only {} connections opened",
            held.len()
        );

        let client = healthy_client("127.0.0.1");
        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200, "{}", serve.log_tail());
        let answer = chat(&client, &base, &key).await;
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");

        let text = metrics(&client, &base).await;
        let open = metric(&text, "moat_connections_open", "");
        assert!(open >= 4_000.0, "open connections: {open}\n{text}");
        let refused = metric(
            &text,
            "moat_connections_refused_total",
            "reason=\"max_connections_per_address\"",
        );
        assert!(refused >= 5_000.0, "refused: {refused}");
        // The refusals were logged, once per period for all of them.
        assert!(
            serve.log_tail().contains("connection refused"),
            "{}",
            serve.log_tail()
        );
        drop(held);
        terminate(serve).await;
    })
    .await
    .expect("the test ran past its bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_silent_and_idle_connections_are_closed_after_the_timeouts() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let sim = SimUpstream::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let server = "header_read_timeout = \"1s\"\nidle_timeout = \"2s\"";
        let config = write_config(dir.path(), &sim.openai_base_url(), server, "");
        let key = create_key("a", &config);
        let (serve, addr) = spawn_serve(&config, &[]);
        let to: SocketAddr = addr.parse().unwrap();
        let base = format!("http://{addr}");

        let hostile: IpAddr = "127.0.0.2".parse().unwrap();
        let mut conns = Vec::new();
        for i in 0..150 {
            let mut s = connect_from(hostile, to).await.unwrap();
            match i % 3 {
                0 => {}
                1 => s
                    .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-le")
                    .await
                    .unwrap(),
                _ => s.write_all(H2_PREFACE).await.unwrap(),
            }
            conns.push(s);
        }
        // Keep-alive connections that finished a request and went quiet.
        for _ in 0..20 {
            let mut s = connect_from(hostile, to).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            conns.push(s);
        }
        // Healthy clients are served meanwhile.
        let client = healthy_client("127.0.0.1");
        assert_eq!(chat(&client, &base, &key).await.status(), 200);

        // Without the timeouts none of these would ever be closed.
        for (i, s) in conns.iter_mut().enumerate() {
            assert!(
                closed_within(s, Duration::from_secs(20)).await,
                "connection {i} still open"
            );
        }
        let text = metrics(&client, &base).await;
        let closed = metric(
            &text,
            "moat_connections_closed_total",
            "reason=\"no_request\"",
        ) + metric(
            &text,
            "moat_connections_closed_total",
            "reason=\"header_timeout\"",
        );
        assert!(closed >= 150.0, "closed by the gateway: {closed}\n{text}");
        terminate(serve).await;
    })
    .await
    .expect("the test ran past its bound");
}

/// The audit rows in the store of `dir`.
fn audit_count(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("keys.db")).unwrap();
    db.query_row(
        "SELECT count(*) FROM audit WHERE kind = 'request'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_floods_get_429_without_audit_records_and_valid_keys_still_work() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let sim = SimUpstream::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &sim.openai_base_url(),
            "auth_failures_per_minute = 5",
            "[audit]\ndurability = \"sync\"\n",
        );
        let key = create_key("a", &config);
        let (serve, addr) = spawn_serve(&config, &[]);
        let base = format!("http://{addr}");
        let prober = healthy_client("127.0.0.2");
        let big_agent = "x".repeat(100 * 1024);

        let mut statuses = Vec::new();
        for i in 0..40 {
            let r = prober
                .post(format!("{base}/v1/chat/completions"))
                .header("user-agent", &big_agent)
                .bearer_auth(format!("moat_nosuchkey{i:02}_secret"))
                .json(&json!({"model": "gpt", "messages": []}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
            if r.status() == 429 {
                let retry: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "retry-after {retry}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
            }
        }
        assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
        assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");

        // Anthropic clients get the refusal in their own shape.
        let r = prober
            .post(format!("{base}/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "gpt", "max_tokens": 5, "messages": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");

        // A valid key from the throttled address is still served; another address is not
        // throttled at all.
        assert_eq!(chat(&prober, &base, &key).await.status(), 200);
        let other = healthy_client("127.0.0.3");
        let r = other
            .get(format!("{base}/v1/models"))
            .bearer_auth("moat_nosuchkey99_secret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        let text = metrics(&other, &base).await;
        let throttled = metric(&text, "moat_auth_throttled_total", "plane=\"data\"");
        assert_eq!(throttled, 36.0, "{text}");
        terminate(serve).await;
        // Records: the 5 refusals under the limit and the one valid request; none of the 36
        // throttled ones.
        assert_eq!(audit_count(dir.path()), 6);
    })
    .await
    .expect("the test ran past its bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_auth_failures_are_counted_logged_and_throttled_per_address() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            "http://127.0.0.1:9/v1",
            "auth_failures_per_minute = 5",
            "[admin]\ntoken = \"${MOAT_ADMIN_TOKEN}\"\n",
        );
        let token = "adm-0f9c2a71d4b84e5e93a6c1d2b7e8f405";
        let (serve, addr) = spawn_serve(&config, &[("MOAT_ADMIN_TOKEN", token)]);
        let base = format!("http://{addr}");
        let attacker = healthy_client("127.0.0.2");
        let get = |c: &reqwest::Client, bearer: &str| {
            c.get(format!("{base}/admin/v1/spend"))
                .bearer_auth(bearer)
                .send()
        };

        let mut statuses = Vec::new();
        for i in 0..20 {
            statuses.push(
                get(&attacker, &format!("guess-{i}"))
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
        assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
        // Over its limit the address is refused before its credential is checked: the right
        // token gets the same 429, so throttling tells a guesser nothing.
        let r = get(&attacker, token).await.unwrap();
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
        // Other addresses are not affected.
        let admin = healthy_client("127.0.0.1");
        assert_eq!(get(&admin, token).await.unwrap().status(), 200);

        let text = metrics(&admin, &base).await;
        assert_eq!(
            metric(&text, "moat_auth_failures_total", "plane=\"admin\""),
            21.0,
            "{text}"
        );
        assert_eq!(
            metric(&text, "moat_auth_throttled_total", "plane=\"admin\""),
            16.0,
            "{text}"
        );
        let log = serve.log_tail();
        assert_eq!(
            log.matches("admin API authentication failed").count(),
            1,
            "{log}"
        );
        terminate(serve).await;
    })
    .await
    .expect("the test ran past its bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_listener_backs_off_and_recovers() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), "http://127.0.0.1:9/v1", "", "");
        // A hard limit of 64 descriptors: the gateway cannot raise it, and runs out.
        let mut child = Command::new("sh")
            .args(["-c", "ulimit -n 64 && exec \"$0\" serve --config \"$1\""])
            .arg(env!("CARGO_BIN_EXE_moat"))
            .arg(&config)
            .env("MOAT_LOG", "info")
            .env_remove("MOAT_LOG_FORMAT")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let line = rx.recv_timeout(Duration::from_secs(20)).unwrap();
            if let Some(a) = line.split("addr=").nth(1) {
                break a.split_whitespace().next().unwrap().to_string();
            }
        };
        let to: SocketAddr = addr.parse().unwrap();
        // More connections than descriptors: accept fails with EMFILE while they are held.
        let hostile: IpAddr = "127.0.0.2".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..100 {
            held.push(connect_from(hostile, to).await.unwrap());
        }
        // Held for a while: a listener without backoff would retry accept in a busy loop.
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(held);
        // Descriptors free again: the same listener serves.
        let client = healthy_client("127.0.0.1");
        let base = format!("http://{addr}");
        let mut served = false;
        for _ in 0..50 {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                served = r.status() == 200;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "the listener did not recover");
        let text = metrics(&client, &base).await;
        let errors = metric(&text, "moat_accept_errors_total", "");
        // At least one EMFILE, and few: 5 ms doubling to 1 s is about a dozen tries in 3 s.
        assert!((1.0..=50.0).contains(&errors), "accept errors: {errors}");
        let logged: Vec<String> = rx
            .try_iter()
            .filter(|l| l.contains("accepting a connection failed"))
            .collect();
        assert!(!logged.is_empty() && logged.len() <= 3, "{logged:?}");
        let _ = child.kill();
        let _ = child.wait();
    })
    .await
    .expect("the test ran past its bound");
}
