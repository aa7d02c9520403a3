//! The audit witness through the live gateway: signed heads reach a file and an HTTP endpoint
//! outside the store as records commit, and a witness that does not answer never holds a
//! request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness};
use moat_audit::SignedHead;
use moat_config::{Durability, WitnessConfig};
use moat_core::SystemClock;
use moat_store::{AuditStore, MemoryStore};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// An HTTP endpoint on port 0 that hands every POSTed body to the returned receiver.
async fn notary() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/heads",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/heads"), rx)
}

async fn start(store: Arc<MemoryStore>, witness: WitnessConfig) -> Harness {
    Harness::start_over_store(
        move |c| {
            c.audit.durability = Durability::Sync;
            c.audit.witness = Some(witness);
        },
        Arc::new(SystemClock),
        store,
    )
    .await
}

fn ask() -> serde_json::Value {
    json!({"model": "gpt", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn signed_heads_reach_the_file_and_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("heads.jsonl");
    let (url, mut posted) = notary().await;
    let store = Arc::new(MemoryStore::new());
    let witness = WitnessConfig {
        file: Some(file.clone()),
        url: Some(url),
        every_records: 1,
        every: Duration::from_secs(60),
    };
    let h = start(store.clone(), witness).await;
    for _ in 0..3 {
        let (status, _) = json_of(h.openai("/v1/chat/completions", &ask()).await).await;
        assert_eq!(status, 200);
    }
    let tail = store.audit_tail().await.unwrap().unwrap();
    let public = common::audit_keys().verifying_key();
    // The endpoint sees the head of the last commit (earlier ones may be coalesced).
    let deadline = Instant::now() + Duration::from_secs(10);
    let last = loop {
        let body = tokio::time::timeout_at(deadline.into(), posted.recv())
            .await
            .expect("the endpoint never saw the last head")
            .unwrap();
        let head: SignedHead = serde_json::from_str(&body).unwrap();
        assert!(head.verify(&public), "{body}");
        if head.seq == tail.seq {
            break head;
        }
    };
    assert_eq!(last.hash, tail.hash);
    // The file holds the same head, signed the same way.
    let text = std::fs::read_to_string(&file).unwrap();
    let in_file: Vec<SignedHead> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(in_file.iter().all(|h| h.verify(&public)));
    assert!(in_file
        .iter()
        .any(|h| h.seq == tail.seq && h.hash == tail.hash));
    h.gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_witness_that_does_not_answer_never_holds_a_request() {
    // Accepts connections and never answers: each POST waits for its timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/heads", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let store = Arc::new(MemoryStore::new());
    let witness = WitnessConfig {
        file: None,
        url: Some(url),
        every_records: 1,
        every: Duration::from_secs(60),
    };
    let h = start(store.clone(), witness).await;
    // Sync durability: each answer waits for its record's commit, never for the witness. A
    // request held by a head's POST would wait its whole 10 s timeout, longer than this bound.
    let requests = async {
        for _ in 0..5 {
            let (status, _) = json_of(h.openai("/v1/chat/completions", &ask()).await).await;
            assert_eq!(status, 200);
        }
    };
    tokio::time::timeout(Duration::from_secs(9), requests)
        .await
        .expect("requests waited on the witness");
    assert_eq!(store.audit_tail().await.unwrap().unwrap().seq, 5);
    h.gateway.shutdown().await.unwrap();
    held.abort();
}
