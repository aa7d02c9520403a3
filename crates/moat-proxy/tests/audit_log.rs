//! The audit log through the live gateway: one chained record for every request, allowed or
//! refused, with its decisions, route, usage and bodies by the workflow's sensitivity; in `sync`
//! durability a record is committed before its response completes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness, KeyScope};
use moat_audit::{verify, AuditRecord, Body, RecordKind};
use moat_config::{Durability, Sensitivity, WorkflowConfig};
use moat_core::SystemClock;
use moat_store::{AuditQuery, AuditStore, MemoryStore};
use serde_json::json;
use std::sync::Arc;

async fn start(store: Arc<MemoryStore>, durability: Durability) -> Harness {
    Harness::start_over_store(
        |c| {
            c.audit.durability = durability;
            c.audit.flush_interval = std::time::Duration::from_millis(20);
            let mut w = WorkflowConfig::new("claims", "team");
            w.sensitivity = Sensitivity::Restricted;
            c.workflows.push(w);
        },
        Arc::new(SystemClock),
        store,
    )
    .await
}

async fn records(store: &MemoryStore) -> Vec<AuditRecord> {
    store
        .query_audit(&AuditQuery::new(10_000))
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect()
}

#[tokio::test]
async fn every_request_allowed_or_refused_is_one_chained_record() {
    let store = Arc::new(MemoryStore::new());
    let h = start(store.clone(), Durability::Sync).await;
    let ask = json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hello audit"}]});
    let (status, _) = json_of(h.openai("/v1/chat/completions", &ask).await).await;
    assert_eq!(status, 200);
    // Sync durability: committed before the response completed, no flush needed.
    let got = records(&store).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!((r.seq, r.kind, r.status), (1, RecordKind::Request, 200));
    assert_eq!(r.account.as_deref(), Some("acct"));
    assert_eq!(r.api.as_deref(), Some("openai.chat"));
    assert_eq!(r.model.as_deref(), Some("gpt"));
    let route = r.route.as_ref().unwrap();
    assert_eq!(
        (
            route.provider.as_str(),
            route.response_model.as_str(),
            route.attempts
        ),
        ("oa", "sim-gpt", 1)
    );
    assert_eq!(r.usage.as_ref().unwrap().output_tokens, 5);
    assert!(r
        .decisions
        .iter()
        .any(|d| d.stage == "policy" && d.outcome == "unregistered"));
    // An unregistered key counts as internal data: bodies in full.
    let request: serde_json::Value =
        serde_json::from_str(r.request_body.as_full().unwrap().get()).unwrap();
    assert_eq!(request["messages"][0]["content"], "hello audit");
    let response: serde_json::Value =
        serde_json::from_str(r.response_body.as_full().unwrap().get()).unwrap();
    assert_eq!(response["model"], "sim-gpt");

    // Refused requests are recorded too, with the stage that refused them.
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let restricted = h
        .create_key(KeyScope {
            workflow: Some("claims"),
            ..KeyScope::default()
        })
        .await;
    let mut unknown = ask.clone();
    unknown["model"] = json!("no-such-model");
    let (status, _) = json_of(
        h.openai_as(&restricted, "/v1/chat/completions", &unknown)
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = json_of(h.openai_as(&restricted, "/v1/chat/completions", &ask).await).await;
    assert_eq!(status, 200);

    let got = records(&store).await;
    assert_eq!(got.len(), 4);
    let missing_key = &got[1];
    assert_eq!(
        (missing_key.status, missing_key.key_id.as_deref()),
        (401, None)
    );
    assert_eq!(missing_key.error.as_deref(), Some("missing_key"));
    assert!(missing_key
        .decisions
        .iter()
        .any(|d| d.stage == "auth" && d.outcome == "deny"));
    // Refused before a byte of the body was read: there is no body to keep.
    assert!(matches!(missing_key.request_body, Body::Omitted));
    let unknown_model = &got[2];
    assert!(unknown_model
        .decisions
        .iter()
        .any(|d| d.stage == "policy" && d.outcome == "deny"));
    // A restricted workflow's bodies are kept as digests only.
    let claims = &got[3];
    assert_eq!(claims.workflow.as_deref(), Some("claims"));
    assert!(
        matches!(claims.request_body, Body::Keyed(_)),
        "{:?}",
        claims.request_body
    );
    assert!(matches!(claims.response_body, Body::Keyed(_)));
    // Keyed: not the plain SHA-256 anyone could recompute from a guess of the body.
    let sent = serde_json::to_vec(&ask).unwrap();
    assert_ne!(claims.request_body, Body::digest(&sent));
    // The chain verifies, seq 1..4.
    let report = verify(got, None);
    assert!(report.is_ok(), "{:?}", report.first_bad);
    assert_eq!(report.checked, 4);
}

#[tokio::test]
async fn batch_records_are_written_within_the_interval_and_the_chain_continues_after_a_restart() {
    let store = Arc::new(MemoryStore::new());
    let h = start(store.clone(), Durability::Batch).await;
    let ask = json!({"model": "gpt", "max_tokens": 3, "stream": true, "messages": [{"role": "user", "content": "stream me"}]});
    for _ in 0..3 {
        let r = h.openai("/v1/chat/completions", &ask).await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    h.gateway.shutdown().await.unwrap();
    let first = records(&store).await;
    assert_eq!(
        first.len(),
        3,
        "the shutdown flushed every finished request"
    );
    assert!(first
        .iter()
        .all(|r| r.usage.as_ref().is_some_and(|u| u.output_tokens == 3)));
    // A stream's record keeps what the client received: its events, terminator included.
    let sent = first[0]
        .response_body
        .as_full()
        .map(|b| b.get().to_string())
        .unwrap_or_default();
    assert!(sent.contains("data: ") && sent.contains("[DONE]"), "{sent}");

    // A new gateway over the same store continues the chain.
    let h = start(store.clone(), Durability::Batch).await;
    let r = h.openai("/v1/chat/completions", &ask).await;
    r.text().await.unwrap();
    h.gateway.shutdown().await.unwrap();
    let all = records(&store).await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].seq, 4);
    assert_eq!(all[3].prev_hash, all[2].hash);
    assert!(verify(all, None).is_ok());
}

#[tokio::test]
async fn the_gateway_applies_retention_behind_a_signed_checkpoint_and_the_rest_verifies() {
    use moat_audit::{Anchor, Checkpoint};
    use moat_core::ManualClock;
    const HOUR: i64 = 3_600_000;
    let t0 = 1_780_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let store = Arc::new(MemoryStore::new());
    let edit = |c: &mut moat_config::Config| {
        c.audit.retention = Some(std::time::Duration::from_secs(3600));
    };
    let h = Harness::start_over_store(edit, clock.clone(), store.clone()).await;
    let ask =
        json!({"model": "gpt", "max_tokens": 2, "messages": [{"role": "user", "content": "old"}]});
    for _ in 0..4 {
        json_of(h.openai("/v1/chat/completions", &ask).await).await;
    }
    h.gateway.shutdown().await.unwrap();
    assert_eq!(records(&store).await.len(), 4);

    // Two hours later a gateway starts on the same store: its retention run drops the records
    // older than an hour, keeping the newest so the chain has a head to continue.
    clock.advance_ms(2 * HOUR);
    let h = Harness::start_over_store(edit, clock.clone(), store.clone()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.audit_checkpoints().await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "retention never ran");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let checkpoint: Checkpoint =
        serde_json::from_str(&store.audit_checkpoints().await.unwrap()[0].json).unwrap();
    let public = common::audit_keys().verifying_key();
    assert!(checkpoint.verify(&public));
    assert!(!checkpoint.verify(&moat_audit::AuditKeys::from_seed([8; 32]).verifying_key()));
    let kept = records(&store).await;
    assert_eq!(checkpoint.seq, 3);
    assert_eq!(kept.iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
    // New requests continue the chain, and everything kept verifies from the checkpoint.
    json_of(h.openai("/v1/chat/completions", &ask).await).await;
    h.gateway.shutdown().await.unwrap();
    let kept = records(&store).await;
    assert_eq!(kept.len(), 2);
    let anchor = Anchor {
        checkpoint: &checkpoint,
        key: &public,
    };
    let report = verify(kept, Some(anchor));
    assert!(report.is_ok(), "{:?}", report.first_bad);
}
