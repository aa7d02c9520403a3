//! Admin keys with roles on the live gateway: each role sees the audit log as its role allows
//! (admin and security: bodies as stored; auditor: redacted; viewer: none), every read of bodies
//! is itself a `read` record, routes refuse the roles they do not name, and admin keys and
//! virtual keys never open each other's doors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness};
use moat_audit::{AuditRecord, RecordKind, SeqRange};
use moat_config::Durability;
use moat_core::Secret;
use moat_store::{
    generate_admin_key, AdminKeyStore, AdminRole, AuditQuery, AuditStore, MemoryStore,
};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "bootstrap-admin-token-0123";

/// The five things an auditor must never see, as a client sent them.
const EMAIL: &str = "alice.smith@example.com";
const PHONE: &str = "+44 20 7946 0958";
const CARD: &str = "4111 1111 1111 1111";
const API_KEY: &str = "sk-proj-Xk9vQ2mLp7Rz4Tn8Wb3Yc6Hd1Fg5";
const IP: &str = "203.0.113.77";
const RAW: [&str; 5] = [EMAIL, PHONE, CARD, API_KEY, IP];

struct Keys {
    admin: String,
    security: String,
    auditor: String,
    viewer: String,
    /// Ids, in the same order.
    ids: [String; 4],
}

async fn start(token: bool) -> (Harness, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start_with_admin_keys(
        |c| {
            // Sync: a record (a read record too) is committed before its response completes.
            c.audit.durability = Durability::Sync;
            if token {
                c.admin.token = Some(Secret::new(TOKEN.into()));
            }
        },
        store.clone(),
    )
    .await;
    (h, store)
}

async fn admin_keys(store: &MemoryStore) -> Keys {
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for (role, name) in [
        (AdminRole::Admin, "root"),
        (AdminRole::Security, "sec"),
        (AdminRole::Auditor, "alice"),
        (AdminRole::Viewer, "dash"),
    ] {
        let g = generate_admin_key(name, role, 1);
        store.insert_admin_key(&g.record).await.unwrap();
        ids.push(g.record.id.clone());
        keys.push(g.key.expose().clone());
    }
    let [admin, security, auditor, viewer]: [String; 4] = keys.try_into().unwrap();
    Keys {
        admin,
        security,
        auditor,
        viewer,
        ids: ids.try_into().unwrap(),
    }
}

/// Two requests whose bodies carry all five kinds of sensitive value.
async fn sensitive_traffic(h: &Harness) {
    let texts = [
        format!("Write to {EMAIL} or call {PHONE}; my card is {CARD}."),
        format!("Use the key {API_KEY} from host {IP}."),
    ];
    for text in texts {
        // The end user named is an e-mail address: personal metadata beside the bodies.
        let ask = json!({"model": "gpt", "max_tokens": 5, "user": EMAIL, "messages": [{"role": "user", "content": text}]});
        let (status, _) = json_of(h.openai("/v1/chat/completions", &ask).await).await;
        assert_eq!(status, 200);
    }
}

async fn get(h: &Harness, path: &str, key: &str) -> (u16, String) {
    let r = h.admin(path, Some(key)).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn send(h: &Harness, method: reqwest::Method, path: &str, key: &str) -> u16 {
    let body = json!({"owner": "ops", "criticality": "low", "sensitivity": "internal"});
    h.http
        .request(method, h.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn reads(store: &MemoryStore) -> Vec<AuditRecord> {
    let mut q = AuditQuery::new(10_000);
    q.kind = Some("read".into());
    store
        .query_audit(&q)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect()
}

#[tokio::test]
async fn each_role_sees_the_audit_log_as_its_role_allows_and_body_reads_are_recorded() {
    let (h, store) = start(false).await;
    let keys = admin_keys(&store).await;
    sensitive_traffic(&h).await;
    let stored = store.query_audit(&AuditQuery::new(100)).await.unwrap();
    assert_eq!(stored.len(), 2);
    let path = "/admin/v1/audit?kind=request&limit=10";

    // Admin and security: every record exactly as the chain holds it.
    for key in [&keys.admin, &keys.security] {
        let (status, text) = get(&h, path, key).await;
        assert_eq!(status, 200, "{text}");
        for raw in RAW {
            assert!(text.contains(raw), "{raw} missing from {text}");
        }
        for record in &stored {
            assert!(
                text.contains(&record.json),
                "record {} not byte for byte",
                record.seq
            );
        }
        let page: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (page["redacted"].clone(), page["next_after_seq"].clone()),
            (json!(false), Value::Null)
        );
        assert!(page["data"][0].get("redacted").is_none());
    }

    // Auditor: bodies present, every one of the five redacted, and the records say so.
    let (status, text) = get(&h, path, &keys.auditor).await;
    assert_eq!(status, 200, "{text}");
    for raw in RAW {
        assert!(!text.contains(raw), "the auditor saw {raw}: {text}");
    }
    for kind in ["email", "phone", "card", "secret", "ip"] {
        assert!(
            text.contains(&format!("[REDACTED:{kind}]")),
            "no {kind} marker: {text}"
        );
    }
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (page["role"].clone(), page["redacted"].clone()),
        (json!("auditor"), json!(true))
    );
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for record in data {
        assert_eq!(record["redacted"], true);
        assert!(record["request_body"]["full"]["messages"].is_array());
        // Personal metadata becomes keyed pseudonyms (the same for both records, so they
        // correlate); the rest of the metadata is as stored.
        assert_eq!(record["source_ip"], pseudonym("source_ip", "127.0.0.1"));
        assert_eq!(record["end_user"], pseudonym("end_user", EMAIL));
        assert_eq!(record["account"], "acct");
    }

    // Viewer: metadata only, no body fields at all.
    let (status, text) = get(&h, path, &keys.viewer).await;
    assert_eq!(status, 200, "{text}");
    for raw in RAW {
        assert!(!text.contains(raw), "the viewer saw {raw}");
    }
    // Only the metadata markers: no body reached the viewer to be redacted.
    for kind in ["phone", "card", "secret"] {
        assert!(!text.contains(&format!("[REDACTED:{kind}]")), "{text}");
    }
    let page: Value = serde_json::from_str(&text).unwrap();
    for record in page["data"].as_array().unwrap() {
        assert!(record.get("request_body").is_none() && record.get("response_body").is_none());
        assert_eq!(record["source_ip"], pseudonym("source_ip", "127.0.0.1"));
        assert_eq!(record["end_user"], pseudonym("end_user", EMAIL));
        assert_eq!(record["redacted"], true);
        assert_eq!(record["account"], "acct");
        assert_eq!(record["status"], 200);
    }

    // One read record per answer that showed bodies, naming reader, role, query and seqs; none
    // for the viewer.
    let got = reads(&store).await;
    let seqs: Vec<u64> = stored.iter().map(|r| r.seq).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    for (record, (id, role)) in got.iter().zip([
        (&keys.ids[0], "admin"),
        (&keys.ids[1], "security"),
        (&keys.ids[2], "auditor"),
    ]) {
        assert_eq!(record.kind, RecordKind::Read);
        let read = record.read.as_ref().unwrap();
        assert_eq!((&read.reader, read.role.as_str()), (id, role));
        assert_eq!(record.key_id.as_ref(), Some(id));
        assert_eq!(read.query, path);
        assert_eq!(read.records, SeqRange::runs(seqs.iter().copied()));
        assert_eq!(record.source_ip.as_deref(), Some("127.0.0.1"));
    }

    // Reading the read records shows no body, so it is not recorded again (tailing the log does
    // not feed on itself).
    let (status, text) = get(&h, "/admin/v1/audit?kind=read", &keys.admin).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(reads(&store).await.len(), 3);
    h.gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_record_by_seq_and_pages_by_cursor() {
    let (h, store) = start(false).await;
    let keys = admin_keys(&store).await;
    sensitive_traffic(&h).await;

    let (status, text) = get(&h, "/admin/v1/audit/1", &keys.auditor).await;
    assert_eq!(status, 200, "{text}");
    let record: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (record["seq"].clone(), record["redacted"].clone()),
        (json!(1), json!(true))
    );
    assert!(!text.contains(EMAIL) && text.contains("[REDACTED:email]"));
    let got = reads(&store).await;
    assert_eq!(got.len(), 1);
    let read = got[0].read.as_ref().unwrap();
    assert_eq!(
        (read.query.as_str(), read.records.as_slice()),
        ("/admin/v1/audit/1", &[SeqRange { from: 1, to: 1 }][..])
    );

    let (status, _) = get(&h, "/admin/v1/audit/999", &keys.admin).await;
    assert_eq!(status, 404);
    let (status, _) = get(&h, "/admin/v1/audit/first", &keys.admin).await;
    assert_eq!(status, 400);

    // Pages of one request record each, joined by the cursor.
    let (_, first) = get(&h, "/admin/v1/audit?kind=request&limit=1", &keys.viewer).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["data"][0]["seq"], 1);
    assert_eq!(first["next_after_seq"], 1);
    let (_, second) = get(
        &h,
        "/admin/v1/audit?kind=request&limit=1&after_seq=1",
        &keys.viewer,
    )
    .await;
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(second["data"][0]["seq"], 2);
    assert_eq!(second["next_after_seq"], Value::Null);

    // Filters and their validation.
    let (_, none) = get(&h, "/admin/v1/audit?account=nobody", &keys.viewer).await;
    assert_eq!(
        serde_json::from_str::<Value>(&none).unwrap()["data"],
        json!([])
    );
    let (_, later) = get(
        &h,
        "/admin/v1/audit?from=2999-01-01T00:00:00Z",
        &keys.viewer,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&later).unwrap()["data"],
        json!([])
    );
    for bad in [
        "from=yesterday",
        "decision=deny",
        "kind=requests",
        "colour=red",
        "status=ok",
    ] {
        let (status, text) = get(&h, &format!("/admin/v1/audit?{bad}"), &keys.viewer).await;
        assert_eq!(status, 400, "{bad}: {text}");
    }
    h.gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_route_refuses_the_roles_it_does_not_name() {
    let (h, store) = start(false).await;
    let keys = admin_keys(&store).await;
    use reqwest::Method;

    // Verdicts (evidence): not for viewers.
    let (status, text) = get(&h, "/admin/v1/detect/verdicts", &keys.viewer).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["type"],
        "permission_error"
    );
    for key in [&keys.admin, &keys.security, &keys.auditor] {
        assert_eq!(get(&h, "/admin/v1/detect/verdicts", key).await.0, 200);
    }
    // Metadata: every role.
    for path in [
        "/admin/v1/workflows",
        "/admin/v1/spend",
        "/admin/v1/incidents",
    ] {
        for key in [&keys.admin, &keys.security, &keys.auditor, &keys.viewer] {
            assert_eq!(get(&h, path, key).await.0, 200, "{path}");
        }
    }
    // Workflow writes: admins only.
    for key in [&keys.security, &keys.auditor, &keys.viewer] {
        assert_eq!(
            send(&h, Method::PUT, "/admin/v1/workflows/drafts", key).await,
            403
        );
        assert_eq!(
            send(&h, Method::DELETE, "/admin/v1/workflows/drafts", key).await,
            403
        );
    }
    assert_eq!(
        send(&h, Method::PUT, "/admin/v1/workflows/drafts", &keys.admin).await,
        201
    );
    assert_eq!(
        send(
            &h,
            Method::DELETE,
            "/admin/v1/workflows/drafts",
            &keys.viewer
        )
        .await,
        403
    );
    assert_eq!(
        send(
            &h,
            Method::DELETE,
            "/admin/v1/workflows/drafts",
            &keys.admin
        )
        .await,
        204
    );
    h.gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_keys_and_virtual_keys_never_open_each_others_doors() {
    let (h, store) = start(true).await;
    let keys = admin_keys(&store).await;

    // A virtual key, no key, an unknown admin key and a revoked one: 401 with a challenge.
    let unknown = generate_admin_key("ghost", AdminRole::Admin, 1);
    store.revoke_admin_key(&keys.ids[3], 5).await.unwrap();
    for key in [
        Some(h.key.as_str()),
        None,
        Some(unknown.key.expose().as_str()),
        Some(keys.viewer.as_str()),
    ] {
        let r = h.admin("/admin/v1/workflows", key).await;
        assert_eq!(r.status().as_u16(), 401, "{key:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    // An admin key on the data plane is no virtual key.
    let ask =
        json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    for key in [&keys.admin, &keys.auditor] {
        let (status, _) = json_of(h.openai_as(key, "/v1/chat/completions", &ask).await).await;
        assert_eq!(status, 401);
    }
    // The bootstrap token is an admin: it reads bodies and is named in the read record.
    let (status, text) = get(&h, "/admin/v1/audit?kind=request", TOKEN).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["role"],
        "admin"
    );
    assert_eq!(
        send(
            &h,
            reqwest::Method::PUT,
            "/admin/v1/workflows/drafts",
            TOKEN
        )
        .await,
        201
    );
    h.gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_any_admin_credential_the_admin_api_does_not_exist() {
    let (h, store) = start(false).await;
    assert_eq!(
        h.admin("/admin/v1/audit", None).await.status().as_u16(),
        404
    );
    assert_eq!(
        h.admin("/admin/v1/audit", Some(&h.key))
            .await
            .status()
            .as_u16(),
        404
    );
    // A revoked key opens nothing either.
    let g = generate_admin_key("gone", AdminRole::Admin, 1);
    store.insert_admin_key(&g.record).await.unwrap();
    store.revoke_admin_key(&g.record.id, 2).await.unwrap();
    assert_eq!(
        h.admin("/admin/v1/audit", Some(g.key.expose()))
            .await
            .status()
            .as_u16(),
        404
    );
    // The first active key brings it into being, at once.
    let g = generate_admin_key("new", AdminRole::Viewer, 3);
    store.insert_admin_key(&g.record).await.unwrap();
    assert_eq!(
        h.admin("/admin/v1/audit", None).await.status().as_u16(),
        401
    );
    assert_eq!(
        h.admin("/admin/v1/audit", Some(g.key.expose()))
            .await
            .status()
            .as_u16(),
        200
    );
    h.gateway.shutdown().await.unwrap();
}

/// The pseudonym the test gateways' audit key gives `value` in `field`.
fn pseudonym(field: &str, value: &str) -> String {
    common::audit_keys().pseudonym(field, value)
}
