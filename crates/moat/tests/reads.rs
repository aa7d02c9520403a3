//! Reading the audit log of a real `moat serve` by role (issue 11): records whose bodies nest
//! deeper than a JSON tree may, streamed answers whose personal data is split across events,
//! numbers and keys that are personal data, pages cut at their byte budget, and `moat audit
//! export` recording its own read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{audit_verify, create_key, created_key, moat, spawn_serve, terminate};
use moat_audit::raw::RawObject;
use moat_testkit::SimUpstream;
use serde_json::value::RawValue;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROLES: [&str; 4] = ["admin", "security", "auditor", "viewer"];

/// A config over `openai_url` with the audit log in `sync` durability (a record is committed
/// before its answer completes, so the tests read it without waiting) and `extra` appended.
fn write_config(dir: &Path, openai_url: &str, extra: &str) -> PathBuf {
    let path = dir.join("moat.toml");
    std::fs::write(
        &path,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
[store]
path = "moat.db"
[[providers]]
name = "up"
kind = "openai"
base_url = "{openai_url}"
api_key = "unused"
[[models]]
name = "gpt"
targets = [{{ provider = "up", model = "up-gpt" }}]
[audit]
durability = "sync"
{extra}
"#
        ),
    )
    .unwrap();
    path
}

/// One admin key per role, by role.
fn admin_keys(config: &Path) -> Vec<(&'static str, String)> {
    ROLES
        .iter()
        .map(|role| {
            let name = format!("{role}-reader");
            let args = ["admin-keys", "create", "--role", role, "--name", &name];
            (*role, created_key(&args, config))
        })
        .collect()
}

/// A page as the admin API sends it; records stay raw, since the admin's are the stored text,
/// which may nest deeper than a tree.
struct Page {
    data: Vec<Box<RawValue>>,
    next_after_seq: Option<u64>,
}

impl Page {
    fn parse(body: &str) -> Page {
        let page = RawObject::parse(body).unwrap();
        Page {
            data: serde_json::from_str(page.get("data").unwrap().get()).unwrap(),
            next_after_seq: serde_json::from_str(page.get("next_after_seq").unwrap().get())
                .unwrap(),
        }
    }
}

/// `GET path` with `key`: status and body text.
async fn get(addr: &str, key: &str, path: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Every page of `query` with `key`, following `next_after_seq`: the pages' record counts and
/// the records (as text).
async fn all_pages(addr: &str, key: &str, query: &str) -> (Vec<usize>, Vec<String>) {
    let (mut sizes, mut records) = (Vec::new(), Vec::new());
    let mut after = String::new();
    for _ in 0..1000 {
        let (status, body) = get(addr, key, &format!("/admin/v1/audit?{query}{after}")).await;
        assert_eq!(status, 200, "{body}");
        let page = Page::parse(&body);
        sizes.push(page.data.len());
        records.extend(page.data.iter().map(|r| r.get().to_string()));
        match page.next_after_seq {
            Some(seq) => after = format!("&after_seq={seq}"),
            None => return (sizes, records),
        }
    }
    panic!("the pages never end");
}

/// The `seq` of a record's text (its first field).
fn seq_of(record: &str) -> u64 {
    let fields = RawObject::parse(record).unwrap();
    fields.get("seq").unwrap().get().parse().unwrap()
}

async fn chat(addr: &str, key: &str, body: String) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn nested(depth: usize) -> String {
    format!(
        "{}\"jane.roe@example.com\"{}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// Bodies nested 129 and 10,000 levels deep, sent through the gateway, are kept, and their
/// records (and every page holding them) read for every role: the stored text for admin and
/// security, the body as redacted text for the auditor, no body for the viewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_nested_too_deep_for_a_tree_read_for_every_role() {
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url(), "");
    let key = create_key("acct_deep", &config);
    let readers = admin_keys(&config);
    let (serve, addr) = spawn_serve(&config, &[]);

    let plain = r#"{"model":"gpt","messages":[{"role":"user","content":"hello"}]}"#;
    assert_eq!(chat(&addr, &key, plain.to_string()).await, 200);
    for depth in [129, 10_000] {
        let body = format!(
            r#"{{"model":"gpt","messages":[{{"role":"user","content":"deep"}}],"metadata":{}}}"#,
            nested(depth)
        );
        let status = chat(&addr, &key, body).await;
        assert!(status < 500, "depth {depth}: {status}");
    }
    assert_eq!(chat(&addr, &key, plain.to_string()).await, 200);

    for (role, admin_key) in &readers {
        // All at once, one record a page, and one by one: never a 500.
        let (_, records) = all_pages(&addr, admin_key, "kind=request").await;
        assert_eq!(records.len(), 4, "{role}");
        let (sizes, one_by_one) = all_pages(&addr, admin_key, "kind=request&limit=1").await;
        assert_eq!((sizes.len(), one_by_one.len()), (4, 4), "{role}");
        for record in &records {
            let seq = seq_of(record);
            let (status, text) = get(&addr, admin_key, &format!("/admin/v1/audit/{seq}")).await;
            assert_eq!(status, 200, "{role} record {seq}: {text}");
        }
        let deep: Vec<&String> = records
            .iter()
            .filter(|r| r.contains("[[[[[[[[") || r.contains("as_text"))
            .collect();
        match *role {
            "admin" | "security" => {
                assert_eq!(deep.len(), 2, "{role}: the stored text, byte for byte");
                assert!(deep.iter().all(|r| r.contains("jane.roe@example.com")));
            }
            "auditor" => {
                assert_eq!(deep.len(), 2, "{role}");
                for record in deep {
                    let record: Value = serde_json::from_str(record).unwrap();
                    let body = &record["request_body"];
                    assert_eq!(body["as_text"], "nested deeper than 127 levels", "{record}");
                    let text = body["full"].as_str().unwrap();
                    assert!(text.contains("[REDACTED:email]") && !text.contains("jane.roe"));
                }
            }
            _ => {
                assert!(deep.is_empty(), "the viewer sees no body");
                for record in &records {
                    let record: Value = serde_json::from_str(record).unwrap();
                    assert!(record.get("request_body").is_none(), "{record}");
                }
            }
        }
    }
    terminate(serve).await;
    let (ok, out) = audit_verify(&config);
    assert!(ok, "{out}");
}

/// An upstream that answers every request with one OpenAI chat stream whose content deltas are
/// `pieces`, then closes the connection.
async fn streaming_upstream(pieces: &'static [&'static str]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let mut out = String::from(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
                );
                for piece in pieces {
                    let chunk = serde_json::json!({
                        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                        "model": "up-gpt",
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]
                    });
                    out.push_str(&format!("data: {chunk}\n\n"));
                }
                let last = serde_json::json!({
                    "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": "up-gpt",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
                });
                out.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
                let _ = socket.write_all(out.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

/// Personal data split across a stream's events, in object keys and in JSON numbers is
/// redacted for the auditor; the admin sees it (so it was there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_sees_split_streams_keys_and_numbers_redacted() {
    const PIECES: &[&str] = &[
        "Reach Jane at jane.r",
        "oe@exam",
        "ple.com, card 4111 11",
        "11 1111 1111, thanks",
    ];
    let upstream = streaming_upstream(PIECES).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &upstream, "");
    let key = create_key("acct_pii", &config);
    let readers = admin_keys(&config);
    let (serve, addr) = spawn_serve(&config, &[]);

    let body = serde_json::json!({
        "model": "gpt", "stream": true,
        "messages": [{"role": "user", "content": "who is jane?"}],
        "metadata": {"card_number": 4111111111111111u64, "bob@example.com": "owner"}
    });
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let streamed = r.text().await.unwrap();
    assert!(streamed.contains("oe@exam"), "{streamed}");

    let leaks = [
        "jane.r",
        "oe@exam",
        "ple.com",
        "4111111111111111",
        "4111 11",
        "bob@example.com",
    ];
    for (role, admin_key) in &readers {
        let (status, page) = get(&addr, admin_key, "/admin/v1/audit?kind=request").await;
        assert_eq!(status, 200, "{page}");
        let page: Value = serde_json::from_str(&page).unwrap();
        let record = &page["data"][0];
        let text = record.to_string();
        match *role {
            "admin" | "security" => {
                assert!(leaks.iter().all(|l| text.contains(l)), "{role}: {text}");
            }
            "auditor" => {
                for leak in leaks {
                    assert!(!text.contains(leak), "{leak} shown to the auditor: {text}");
                }
                let request = &record["request_body"]["full"]["metadata"];
                assert_eq!(request["card_number"], "[REDACTED:card]");
                assert_eq!(request["[REDACTED:email]"], "owner");
                let stream = record["response_body"]["full"].as_str().unwrap();
                // Reassembled, the redacted stream reads as the redacted answer.
                let assembled: String = stream
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .filter_map(|v| {
                        v["choices"][0]["delta"]["content"]
                            .as_str()
                            .map(String::from)
                    })
                    .collect();
                assert_eq!(
                    assembled,
                    "Reach Jane at [REDACTED:email], card [REDACTED:card], thanks"
                );
            }
            _ => assert!(record.get("response_body").is_none(), "{text}"),
        }
    }
    terminate(serve).await;
}

/// Pages stop at `audit.read_page_bytes` of stored records and `next_after_seq` continues them;
/// a record larger than the budget comes alone. The same holds for the viewer, who is shown no
/// bodies but whose pages are cut by what was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stop_at_their_byte_budget_and_continue() {
    const BUDGET: usize = 8192;
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("read_page_bytes = {BUDGET}");
    let config = write_config(dir.path(), &sim.openai_base_url(), &extra);
    let key = create_key("acct_pages", &config);
    let readers = admin_keys(&config);
    let (serve, addr) = spawn_serve(&config, &[]);
    // Eight records of a couple of KB each, then one larger than the budget.
    for size in [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 20_000] {
        let content = "word ".repeat(size / 5);
        let body = serde_json::json!({"model": "gpt", "max_tokens": 4,
            "messages": [{"role": "user", "content": content}]});
        assert_eq!(chat(&addr, &key, body.to_string()).await, 200);
    }
    let key_of = |role: &str| readers.iter().find(|(r, _)| *r == role).unwrap().1.clone();
    let (sizes, records) = all_pages(&addr, &key_of("admin"), "kind=request&limit=1000").await;
    let seqs: Vec<u64> = records.iter().map(|r| seq_of(r)).collect();
    assert_eq!(seqs.len(), 9);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The admin's records are the stored text, so their lengths are the stored sizes: the
    // pages must be exactly the greedy cut of those.
    let mut expected = vec![0usize];
    let mut used = 0;
    for r in &records {
        let last = expected.len() - 1;
        if expected[last] > 0 && used + r.len() > BUDGET {
            expected.push(0);
            used = 0;
        }
        let last = expected.len() - 1;
        expected[last] += 1;
        used += r.len();
    }
    assert_eq!(
        sizes,
        expected,
        "record sizes {:?}",
        records.iter().map(String::len).collect::<Vec<_>>()
    );
    assert!(
        sizes.iter().any(|&n| n >= 2),
        "the budget holds several records: {sizes:?}"
    );
    assert_eq!(
        sizes.last(),
        Some(&1),
        "the large record comes alone: {sizes:?}"
    );
    let (viewer_sizes, viewer) =
        all_pages(&addr, &key_of("viewer"), "kind=request&limit=1000").await;
    assert_eq!(viewer_sizes, sizes);
    assert_eq!(viewer.iter().map(|r| seq_of(r)).collect::<Vec<_>>(), seqs);
    terminate(serve).await;
}

/// `moat audit export` appends a `read` record naming its reader and the records it printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_records_its_read() {
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url(), "");
    let key = create_key("acct_export", &config);
    let (serve, addr) = spawn_serve(&config, &[]);
    let plain = r#"{"model":"gpt","messages":[{"role":"user","content":"hello"}]}"#;
    for _ in 0..3 {
        assert_eq!(chat(&addr, &key, plain.to_string()).await, 200);
    }
    terminate(serve).await;

    let export = |extra: &[&str]| {
        let out = moat()
            .args(["audit", "export", "--config"])
            .arg(&config)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let printed = export(&["--kind", "request", "--as", "carol"]);
    assert_eq!(printed.lines().count(), 3);
    let reads = export(&["--kind", "read"]);
    let lines: Vec<Value> = reads
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{reads}");
    let read = &lines[0]["read"];
    assert_eq!(read["reader"], "carol");
    assert_eq!(read["role"], "cli");
    assert_eq!(read["records"], serde_json::json!([{"from": 1, "to": 3}]));
    assert!(read["query"].as_str().unwrap().contains("export"), "{read}");
    // Exporting only read records shows no body, so it records no read of its own.
    assert_eq!(export(&["--kind", "read"]).lines().count(), 1);
    let (ok, out) = audit_verify(&config);
    assert!(ok, "{out}");
}
