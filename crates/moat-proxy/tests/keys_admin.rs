//! Virtual keys managed live through the admin API on a real listening gateway: created keys
//! work at once, a rotation keeps the old secret exactly until its grace window ends on the
//! injected clock, a revocation holds at once despite the auth cache, writes need the admin
//! role, and nothing lists a hash or a secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness};
use moat_core::{Clock, ManualClock, Secret};
use moat_store::{generate_admin_key, AdminKeyStore, AdminRole, KeyStore, MemoryStore};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "bootstrap-admin-token-0123";
/// 2027-01-15T08:00:00Z.
const START_MS: i64 = 1_800_000_000_000;

fn chat() -> Value {
    json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

async fn write(
    h: &Harness,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = h.http.request(method, h.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    json_of(r.send().await.unwrap()).await
}

async fn chat_status(h: &Harness, key: &str) -> u16 {
    h.openai_as(key, "/v1/chat/completions", &chat())
        .await
        .status()
        .as_u16()
}

/// A gateway on a manual clock whose auth cache keeps entries for an hour, so only
/// `KeyCache::forget` can make a change hold at once.
async fn start() -> (Harness, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    let h = Harness::start_with_clock(
        |c| {
            c.keys.cache_ttl = Duration::from_secs(3600);
            c.admin.token = Some(Secret::new(TOKEN.into()));
        },
        clock.clone() as Arc<dyn Clock>,
    )
    .await;
    (h, clock)
}

#[tokio::test]
async fn a_key_created_through_the_api_works_and_rotation_keeps_the_old_one_for_exactly_the_grace()
{
    let (h, clock) = start().await;
    let (status, created) = write(
        &h,
        "POST",
        "/admin/v1/keys",
        TOKEN,
        Some(json!({"account": "acme", "models": ["gpt"], "expires_in": "30d"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let old = created["key"].as_str().unwrap().to_string();
    assert!(old.starts_with(&format!("moat_{id}_")));
    assert_eq!(created["state"], "active");
    assert_eq!(created["expires_at"], START_MS / 1000 + 30 * 86_400);
    assert_eq!(chat_status(&h, &old).await, 200);

    let (status, rotated) = write(
        &h,
        "POST",
        &format!("/admin/v1/keys/{id}/rotate"),
        TOKEN,
        Some(json!({"grace": "1h"})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["key"].as_str().unwrap().to_string();
    assert_eq!(rotated["id"], id.as_str(), "a rotation keeps the id");
    assert_ne!(new, old);
    let until = START_MS / 1000 + 3600;
    assert_eq!(rotated["old_key_valid_until"], until);
    assert_eq!(rotated["grace_until"], until);
    assert_eq!(chat_status(&h, &old).await, 200, "old works in the grace");
    assert_eq!(chat_status(&h, &new).await, 200, "new works at once");

    // One millisecond before the window's end the old key still works; at the end it does not.
    clock.advance_ms(3_600_000 - 1_000);
    assert_eq!(chat_status(&h, &old).await, 200);
    clock.advance_ms(1_000);
    assert_eq!(chat_status(&h, &old).await, 401, "old refused at the end");
    assert_eq!(chat_status(&h, &new).await, 200);
    let (_, list) = json_of(h.admin("/admin/v1/keys", Some(TOKEN)).await).await;
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["grace_until"], Value::Null, "the window is over");
}

#[tokio::test]
async fn a_revocation_through_the_api_holds_at_once_despite_the_cache() {
    let (h, _clock) = start().await;
    let (_, created) = write(
        &h,
        "POST",
        "/admin/v1/keys",
        TOKEN,
        Some(json!({"account": "acme"})),
    )
    .await;
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    assert_eq!(chat_status(&h, key).await, 200, "cached now");
    let (status, revoked) = write(&h, "DELETE", &format!("/admin/v1/keys/{id}"), TOKEN, None).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(chat_status(&h, key).await, 401, "refused at once");
    // Rotating a revoked key is a conflict, an unknown id is 404, a bad body is 400.
    let rotate = format!("/admin/v1/keys/{id}/rotate");
    assert_eq!(write(&h, "POST", &rotate, TOKEN, None).await.0, 409);
    assert_eq!(
        write(
            &h,
            "POST",
            "/admin/v1/keys/nosuchkey123/rotate",
            TOKEN,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        write(&h, "DELETE", "/admin/v1/keys/nosuchkey123", TOKEN, None)
            .await
            .0,
        404
    );
    for bad in [
        json!({"account": "a", "cidrs": ["nowhere"]}),
        json!({"account": "a", "expires_in": "soon"}),
        json!({"acct": "a"}),
        json!({"account": " "}),
    ] {
        let (status, body) = write(&h, "POST", "/admin/v1/keys", TOKEN, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    let (_, other) = write(
        &h,
        "POST",
        "/admin/v1/keys",
        TOKEN,
        Some(json!({"account": "b"})),
    )
    .await;
    let other_rotate = format!("/admin/v1/keys/{}/rotate", other["id"].as_str().unwrap());
    assert_eq!(
        write(
            &h,
            "POST",
            &other_rotate,
            TOKEN,
            Some(json!({"grace": "31d"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        write(&h, "POST", &other_rotate, TOKEN, Some(json!({"grace": -1})))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn a_viewer_lists_keys_without_secrets_and_may_not_write() {
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start_with_admin_keys(|_| {}, store.clone()).await;
    let viewer = generate_admin_key("v", AdminRole::Viewer, 1);
    let admin = generate_admin_key("a", AdminRole::Admin, 1);
    store.insert_admin_key(&viewer.record).await.unwrap();
    store.insert_admin_key(&admin.record).await.unwrap();
    let (viewer, admin) = (viewer.key.expose().clone(), admin.key.expose().clone());

    let (status, created) = write(
        &h,
        "POST",
        "/admin/v1/keys",
        &admin,
        Some(json!({"account": "acme", "cidrs": ["10.0.0.0/8"]})),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["key"].as_str().unwrap().to_string();
    write(
        &h,
        "POST",
        &format!("/admin/v1/keys/{id}/rotate"),
        &admin,
        Some(json!({"grace": 600})),
    )
    .await;

    let r = h.admin("/admin/v1/keys", Some(&viewer)).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let stored = store.get_key(&id).await.unwrap().unwrap();
    for secret in [
        key.clone(),
        stored.hash.to_hex(),
        stored.previous.unwrap().hash.to_hex(),
        h.key.clone(),
    ] {
        assert!(!text.contains(&secret), "list shows no secret or hash");
    }
    assert!(!text.contains("hash"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["cidrs"], json!(["10.0.0.0/8"]));
    assert!(row["grace_until"].as_i64().is_some(), "{row}");

    for (method, path) in [
        ("POST", "/admin/v1/keys".to_string()),
        ("POST", format!("/admin/v1/keys/{id}/rotate")),
        ("DELETE", format!("/admin/v1/keys/{id}")),
    ] {
        let body = (method == "POST").then(|| json!({"account": "x"}));
        let (status, body) = write(&h, method, &path, &viewer, body).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    assert!(store
        .get_key(&id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    // No credential at all: 401.
    assert_eq!(h.admin("/admin/v1/keys", None).await.status(), 401);
}
