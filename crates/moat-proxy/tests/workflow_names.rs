//! Workflow names through the admin API: `PUT /admin/v1/workflows/{name}` refuses names outside
//! the safe charset and length (NUL bytes, `../..`, 65 characters) with a clear 400, and stores
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Harness;
use moat_core::{Secret, SystemClock};
use moat_store::{MemoryStore, WorkflowStore};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "9f8e2c41b7d35a60c1e4-admin";

#[tokio::test]
async fn unsafe_workflow_names_are_refused_and_nothing_is_stored() {
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start_over_store(
        |c| c.admin.token = Some(Secret::new(TOKEN.into())),
        Arc::new(SystemClock),
        store.clone(),
    )
    .await;
    let spec = json!({"owner": "o@x.example", "criticality": "low", "sensitivity": "public"});
    let long = "w".repeat(65);
    // Percent-encoded in the path, as a client would send them.
    // (A bare `..` segment never arrives: URL parsers resolve it before sending.)
    for path_name in ["..%2F..", "a%00b", "..x", long.as_str(), "-x"] {
        let r = h
            .http
            .put(h.url(&format!("/admin/v1/workflows/{path_name}")))
            .bearer_auth(TOKEN)
            .json(&spec)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(status, 400, "{path_name}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("name: must be 1 to 64 letters, digits"),
            "{path_name}: {message}"
        );
        assert!(!message.contains('\0'), "{message:?}");
    }
    assert!(store.list_workflows().await.unwrap().is_empty());
    // A safe name still registers.
    let r = h
        .http
        .put(h.url("/admin/v1/workflows/support-bot.v2"))
        .bearer_auth(TOKEN)
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}
