//! Workflows registered at run time through the admin API: they govern their keys at once,
//! can be replaced and removed, are validated like the config file's, and never shadow them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{json_of, Harness, KeyScope};
use moat_config::{Unregistered, WorkflowConfig};
use moat_core::{Secret, SystemClock};
use moat_store::{MemoryStore, WorkflowStore};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "admin-token-0123456789";

async fn start(store: Arc<MemoryStore>) -> Harness {
    Harness::start_over_store(
        |c| {
            c.admin.token = Some(Secret::new(TOKEN.into()));
            c.governance.unregistered = Unregistered::Deny;
            c.workflows.push(WorkflowConfig::new("declared", "ops"));
        },
        Arc::new(SystemClock),
        store,
    )
    .await
}

impl Harness {
    async fn admin_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, self.url(path)).bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn chat() -> Value {
    json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_workflow_registered_through_the_admin_api_governs_its_keys_at_once() {
    let store = Arc::new(MemoryStore::new());
    let h = start(store.clone()).await;
    let key = h
        .create_key(KeyScope {
            workflow: Some("drafts"),
            ..KeyScope::default()
        })
        .await;
    // Not registered yet: unregistered traffic is denied.
    let (status, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &chat()).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("workflow_unregistered"))
    );

    let spec = json!({"owner": "brand@x.example", "criticality": "low", "sensitivity": "public",
                      "models": ["gpt"], "limits": {"requests_per_minute": 1}, "budget": {"daily": "2.50"}});
    let (status, row) = h
        .admin_send(
            reqwest::Method::PUT,
            "/admin/v1/workflows/drafts",
            Some(&spec),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(
        (row["name"].as_str(), row["source"].as_str()),
        (Some("drafts"), Some("store"))
    );
    assert_eq!(row["budget"]["daily"]["usd"], "2.50");
    assert_eq!(store.list_workflows().await.unwrap().len(), 1);

    // Registered: served, and its limit of one request a minute holds.
    let (status, _) = json_of(h.openai_as(&key, "/v1/chat/completions", &chat()).await).await;
    assert_eq!(status, 200);
    let (status, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &chat()).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );

    // Replaced: 200, the new owner shows in the inventory.
    let mut changed = spec.clone();
    changed["owner"] = json!("studio@x.example");
    let (status, _) = h
        .admin_send(
            reqwest::Method::PUT,
            "/admin/v1/workflows/drafts",
            Some(&changed),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = json_of(h.admin("/admin/v1/workflows", Some(TOKEN)).await).await;
    let names: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["source"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("declared", "config"), ("drafts", "store")]);
    assert_eq!(list["data"][1]["owner"], "studio@x.example");

    // Removed: its keys are unregistered again.
    let (status, _) = h
        .admin_send(reqwest::Method::DELETE, "/admin/v1/workflows/drafts", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = h
        .admin_send(reqwest::Method::DELETE, "/admin/v1/workflows/drafts", None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = json_of(h.openai_as(&key, "/v1/chat/completions", &chat()).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("workflow_unregistered"))
    );
}

#[tokio::test]
async fn admin_writes_are_validated_and_never_touch_the_config_files_workflows() {
    let store = Arc::new(MemoryStore::new());
    let h = start(store.clone()).await;
    let bad = json!({"owner": "", "criticality": "urgent", "sensitivity": "public", "budget": {"daily": "0.0000001"}});
    let (status, body) = h
        .admin_send(reqwest::Method::PUT, "/admin/v1/workflows/x", Some(&bad))
        .await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap();
    for part in [
        "owner: must not be empty",
        "unknown criticality \"urgent\"",
        "budget.daily: invalid amount",
    ] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
    let unknown = json!({"owner": "o", "criticality": "low", "sensitivity": "public", "budgt": {}});
    let (status, _) = h
        .admin_send(
            reqwest::Method::PUT,
            "/admin/v1/workflows/x",
            Some(&unknown),
        )
        .await;
    assert_eq!(status, 400);
    let renamed = json!({"name": "y", "owner": "o", "criticality": "low", "sensitivity": "public"});
    let (status, _) = h
        .admin_send(
            reqwest::Method::PUT,
            "/admin/v1/workflows/x",
            Some(&renamed),
        )
        .await;
    assert_eq!(status, 400);
    let ok = json!({"owner": "o", "criticality": "low", "sensitivity": "public"});
    let (status, body) = h
        .admin_send(
            reqwest::Method::PUT,
            "/admin/v1/workflows/declared",
            Some(&ok),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = h
        .admin_send(
            reqwest::Method::DELETE,
            "/admin/v1/workflows/declared",
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert!(store.list_workflows().await.unwrap().is_empty());
    // Without the admin token nothing is written.
    let r = h
        .http
        .put(h.url("/admin/v1/workflows/x"))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(store.list_workflows().await.unwrap().is_empty());
}

#[tokio::test]
async fn workflows_already_in_the_store_are_loaded_at_start() {
    let store = Arc::new(MemoryStore::new());
    let spec = moat_store::WorkflowSpec::from(&WorkflowConfig::new("from-the-cli", "ops"));
    store.put_workflow(&spec, 0).await.unwrap();
    let h = start(store).await;
    let key = h
        .create_key(KeyScope {
            workflow: Some("from-the-cli"),
            ..KeyScope::default()
        })
        .await;
    let (status, _) = json_of(h.openai_as(&key, "/v1/chat/completions", &chat()).await).await;
    assert_eq!(status, 200);
}
