//! The audit writer never wedges and never hides a failure (issue 11, items 3 and 4), through the
//! live gateway over a fault-injecting audit store: a full disk fills a bounded backlog and then
//! gets 503 in the client's protocol with `/readyz` red, `sync` answers wait at most
//! `audit.commit_timeout`, a chain moved by another writer is re-sealed onto its tail (or, if it
//! keeps moving, every request is refused), recovery loses nothing, and shutdown gives up on a
//! failing store after its grace period.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use async_trait::async_trait;
use common::{json_of, Harness};
use moat_audit::{verify, AuditRecord, Chain};
use moat_config::{Config, Durability};
use moat_store::{
    AuditBounds, AuditQuery, AuditStore, AuditTail, ChainBreak, MemoryStore, StoreError,
    StoredAudit, StoredCheckpoint,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An audit store that fails on demand: `full` makes every append fail as a full disk does
/// (and recover when cleared); `fork` stands for a second writer that appends a record of its
/// own just before each of ours, so ours never follows the stored chain; `wiped` shows the
/// store as `DELETE FROM audit` would leave it (no tail, nothing but seq 1 follows it).
#[derive(Default)]
struct Faulty {
    inner: MemoryStore,
    full: AtomicBool,
    fork: AtomicBool,
    wiped: AtomicBool,
    /// What was appended onto the wiped store (a chain started over from nothing).
    restarted: std::sync::Mutex<Vec<StoredAudit>>,
}

impl Faulty {
    /// Appends one record as another writer would: sealed onto the stored tail.
    async fn foreign_append(&self) {
        let mut chain = match self.inner.audit_tail().await.unwrap() {
            Some(t) => Chain::resume(t.seq, t.hash),
            None => Chain::start(),
        };
        let record = chain.seal(AuditRecord::request(1, "foreign-writer", 200));
        self.inner
            .append_audit(&[StoredAudit::of(&record)])
            .await
            .unwrap();
    }

    async fn all(&self) -> Vec<AuditRecord> {
        self.inner
            .query_audit(&AuditQuery::new(100_000))
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(&r.json).unwrap())
            .collect()
    }
}

#[async_trait]
impl AuditStore for Faulty {
    async fn append_audit(&self, batch: &[StoredAudit]) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(StoreError::Io("database or disk is full (injected)".into()));
        }
        if self.fork.load(Ordering::SeqCst) {
            self.foreign_append().await;
        }
        if self.wiped.load(Ordering::SeqCst) {
            let found = batch.first().map_or(1, |r| r.seq);
            if found != 1 {
                return Err(StoreError::AuditChain(ChainBreak::Gap {
                    expected: 1,
                    found,
                }));
            }
        }
        self.inner.append_audit(batch).await
    }
    async fn audit_tail(&self) -> Result<Option<AuditTail>, StoreError> {
        if self.wiped.load(Ordering::SeqCst) {
            return Ok(None);
        }
        self.inner.audit_tail().await
    }
    async fn audit_range(
        &self,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredAudit>, StoreError> {
        self.inner.audit_range(from_seq, to_seq, limit).await
    }
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredAudit>, StoreError> {
        self.inner.query_audit(q).await
    }
    async fn drop_audit_through(&self, c: &StoredCheckpoint) -> Result<u64, StoreError> {
        self.inner.drop_audit_through(c).await
    }
    async fn audit_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.inner.audit_checkpoints().await
    }
    async fn audit_bounds(&self) -> Result<Option<AuditBounds>, StoreError> {
        self.inner.audit_bounds().await
    }
}

async fn start(faulty: &Arc<Faulty>, edit: impl FnOnce(&mut Config)) -> Harness {
    let store: Arc<dyn AuditStore> = faulty.clone();
    Harness::start_with_audit_store(
        |c| {
            c.audit.flush_interval = Duration::from_millis(20);
            edit(c);
        },
        store,
    )
    .await
}

fn ask() -> Value {
    json!({"model": "gpt", "max_tokens": 3, "messages": [{"role": "user", "content": "keep me"}]})
}

/// Sends one chat request: (status, request id, body).
async fn chat(h: &Harness) -> (u16, String, Value) {
    let r = h.openai("/v1/chat/completions", &ask()).await;
    let id = r.headers()["x-moat-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, body) = json_of(r).await;
    (status, id, body)
}

async fn readyz(h: &Harness) -> (u16, Value) {
    json_of(h.http.get(h.url("/readyz")).send().await.unwrap()).await
}

/// Polls `/readyz` until it answers `want`, for at most 10 s.
async fn until_ready_is(h: &Harness, want: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = readyz(h).await;
        if status == want {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz still {status} ({body}) after 10 s, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the store until it holds `n` records, for at most 10 s.
async fn until_written(faulty: &Faulty, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while faulty.all().await.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} records not written within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_audit_refusal_openai(status: u16, body: &Value) {
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
}

/// Every id in `answered` has a record, and the chain verifies.
fn assert_all_recorded(records: &[AuditRecord], answered: &[String]) {
    let ids: HashSet<&str> = records.iter().map(|r| r.request_id.as_str()).collect();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "answered without a record: {missing:?}");
    let report = verify(records.to_vec(), None);
    assert!(report.is_ok(), "{:?}", report.first_bad);
}

#[tokio::test]
async fn batch_mode_on_a_full_disk_fills_the_backlog_then_answers_503_and_recovers_without_loss() {
    let faulty = Arc::new(Faulty::default());
    let h = start(&faulty, |c| c.audit.max_backlog = 5).await;
    let mut answered = Vec::new();
    let (status, id, _) = chat(&h).await;
    assert_eq!(status, 200);
    answered.push(id);
    assert_eq!(readyz(&h).await.0, 200);
    until_written(&faulty, 1).await;

    faulty.full.store(true, Ordering::SeqCst);
    // Batch durability answers while the backlog has room: exactly max_backlog records wait.
    for _ in 0..5 {
        let (status, id, body) = chat(&h).await;
        assert_eq!(status, 200, "{body}");
        answered.push(id);
    }
    let (status, _, body) = chat(&h).await;
    assert_audit_refusal_openai(status, &body);
    // In every protocol, and for requests without a key too: refused at once, never hung.
    let r = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &h.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gpt", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    let (status, body) = json_of(r).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .json(&ask())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = until_ready_is(&h, 503).await;
    assert_eq!(body["reason"], "audit", "{body}");
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "moat_audit_backlog",
        "moat_audit_write_errors_total",
        "moat_audit_refused_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // Space returns: the kept batch and the backlog are written, readiness goes green.
    faulty.full.store(false, Ordering::SeqCst);
    until_ready_is(&h, 200).await;
    let (status, id, _) = chat(&h).await;
    assert_eq!(status, 200);
    answered.push(id);
    h.gateway.shutdown().await.unwrap();
    let records = faulty.all().await;
    assert_all_recorded(&records, &answered);
    // Refusals for the backlog are counted, not recorded: exactly the answers are in the log.
    assert_eq!(records.len(), answered.len());
}

#[tokio::test]
async fn sync_mode_on_a_full_disk_answers_503_after_the_commit_timeout_and_every_200_is_recorded() {
    let faulty = Arc::new(Faulty::default());
    let h = start(&faulty, |c| {
        c.audit.durability = Durability::Sync;
        c.audit.commit_timeout = Duration::from_millis(300);
    })
    .await;
    let mut answered = Vec::new();
    let (status, id, _) = chat(&h).await;
    assert_eq!(status, 200);
    answered.push(id);

    faulty.full.store(true, Ordering::SeqCst);
    // Admitted while the store still looked healthy: the answer waits for its commit, which
    // never comes, and becomes a 503.
    let (status, _, body) = chat(&h).await;
    assert_audit_refusal_openai(status, &body);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("commit_timeout"),
        "{body}"
    );
    until_ready_is(&h, 503).await;
    // Now the writer is known to fail: refused at admission, a missing key included (no 401
    // waiting on a commit that cannot happen).
    let (status, _, body) = chat(&h).await;
    assert_audit_refusal_openai(status, &body);
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .json(&ask())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    faulty.full.store(false, Ordering::SeqCst);
    until_ready_is(&h, 200).await;
    let (status, id, _) = chat(&h).await;
    assert_eq!(status, 200);
    answered.push(id);

    // A stream's terminator waits for the commit too: past the timeout the client gets the
    // protocol's error event instead of `[DONE]`.
    faulty.full.store(true, Ordering::SeqCst);
    let mut stream = ask();
    stream["stream"] = json!(true);
    let text = h
        .openai("/v1/chat/completions", &stream)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("audit_unavailable"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    faulty.full.store(false, Ordering::SeqCst);
    until_ready_is(&h, 200).await;
    let (status, id, _) = chat(&h).await;
    assert_eq!(status, 200);
    answered.push(id);

    h.gateway.shutdown().await.unwrap();
    assert_all_recorded(&faulty.all().await, &answered);
}

#[tokio::test]
async fn a_chain_moved_by_another_writer_is_resealed_onto_its_tail() {
    let faulty = Arc::new(Faulty::default());
    let h = start(&faulty, |_| {}).await;
    let mut answered = Vec::new();
    for _ in 0..2 {
        let (status, id, _) = chat(&h).await;
        assert_eq!(status, 200);
        answered.push(id);
    }
    // Wait for the writer to commit them, then another writer appends behind its back.
    until_written(&faulty, 2).await;
    faulty.foreign_append().await;
    for _ in 0..2 {
        let (status, id, _) = chat(&h).await;
        assert_eq!(status, 200);
        answered.push(id);
    }
    h.gateway.shutdown().await.unwrap();
    let records = faulty.all().await;
    assert_eq!(
        records.len(),
        5,
        "two, the foreign one, two re-sealed after it"
    );
    assert_eq!(records[2].request_id, "foreign-writer");
    assert_all_recorded(&records, &answered);
}

#[tokio::test]
async fn a_writer_that_keeps_losing_the_chain_refuses_every_request_until_it_is_alone() {
    let faulty = Arc::new(Faulty::default());
    let h = start(&faulty, |_| {}).await;
    let mut answered = Vec::new();
    faulty.fork.store(true, Ordering::SeqCst);
    let (status, id, _) = chat(&h).await;
    assert_eq!(status, 200, "admitted before the writer knew");
    answered.push(id);
    let body = until_ready_is(&h, 503).await;
    assert!(
        body["detail"].as_str().unwrap().contains("chain is broken"),
        "{body}"
    );
    let (status, _, body) = chat(&h).await;
    assert_audit_refusal_openai(status, &body);

    // The other writer stops: the pending record is re-sealed and written, serving resumes.
    faulty.fork.store(false, Ordering::SeqCst);
    until_ready_is(&h, 200).await;
    let (status, id, _) = chat(&h).await;
    assert_eq!(status, 200);
    answered.push(id);
    h.gateway.shutdown().await.unwrap();
    assert_all_recorded(&faulty.all().await, &answered);
}

#[tokio::test]
async fn a_log_cut_behind_the_writer_is_never_continued_from() {
    let faulty = Arc::new(Faulty::default());
    // The record it cannot write is lost at shutdown: keep that wait short.
    let h = start(&faulty, |c| {
        c.server.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    for _ in 0..2 {
        let (status, _, _) = chat(&h).await;
        assert_eq!(status, 200);
    }
    until_written(&faulty, 2).await;
    // Everything is deleted behind the writer's back: re-sealing onto the empty tail would make
    // the tampered store the start of new evidence. The gateway refuses instead.
    faulty.wiped.store(true, Ordering::SeqCst);
    let (status, _, _) = chat(&h).await;
    assert_eq!(status, 200, "admitted before the writer knew");
    let body = until_ready_is(&h, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("before seq 2 this gateway wrote"),
        "{body}"
    );
    let (status, _, body) = chat(&h).await;
    assert_audit_refusal_openai(status, &body);
    assert!(
        faulty.restarted.lock().unwrap().is_empty(),
        "a chain was started over on the wiped store"
    );
    h.gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_a_failing_store_after_the_grace_period() {
    let faulty = Arc::new(Faulty::default());
    let h = start(&faulty, |c| {
        c.server.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    faulty.full.store(true, Ordering::SeqCst);
    let (status, _, _) = chat(&h).await;
    assert_eq!(status, 200);
    until_ready_is(&h, 503).await;
    // Before, the flush waited for the store forever.
    let stopped = tokio::time::timeout(Duration::from_secs(10), h.gateway.shutdown()).await;
    assert!(
        stopped.is_ok(),
        "the gateway did not stop within 10 s of a 300 ms grace"
    );
    assert!(faulty.all().await.is_empty());
}

#[tokio::test]
async fn large_bodies_fill_the_backlog_by_bytes_before_its_count() {
    let faulty = Arc::new(Faulty::default());
    let h = start(&faulty, |c| {
        c.audit.max_backlog = 1000;
        c.audit.max_backlog_bytes = 50_000;
    })
    .await;
    faulty.full.store(true, Ordering::SeqCst);
    // Each record keeps a 20 KB request body: two weigh ~43 KB, three ~64 KB.
    let big = json!({"model": "gpt", "max_tokens": 3, "messages": [{"role": "user", "content": "x".repeat(20_000)}]});
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = h.openai("/v1/chat/completions", &big).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 503, 503]);
    let (status, body) = readyz(&h).await;
    assert_eq!(status, 503);
    faulty.full.store(false, Ordering::SeqCst);
    until_ready_is(&h, 200).await;
    h.gateway.shutdown().await.unwrap();
    assert_eq!(faulty.all().await.len(), 3, "{body}");
}
