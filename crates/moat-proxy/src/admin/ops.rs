//! The admin API's operational routes: the detector's verdicts, the workflow inventory (read,
//! register, remove), spend and objective incidents. Who may call each is decided in `mod.rs`
//! before these run.

use super::{error, Caller};
use crate::error::json_response;
use crate::state::AppState;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// `GET /admin/v1/detect/verdicts` query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerdictQuery {
    /// Only verdicts that crossed the threshold.
    #[serde(default)]
    flagged: bool,
    /// Only this account and its end users.
    account: Option<String>,
}

/// `GET /admin/v1/detect/verdicts[?flagged=true][&account=...]`: every account and end user the
/// detector has seen, with score, flag, cluster, reasons, evidence and the action it maps to.
pub(crate) async fn verdicts(
    State(state): State<Arc<AppState>>,
    _guarded: Extension<Caller>,
    query: Result<Query<VerdictQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &e.body_text(),
            )
        }
    };
    match state.detection.verdicts(q.account, q.flagged).await {
        Ok(rows) => json_response(
            StatusCode::OK,
            &json!({
                "object": "list",
                "mode": state.detection.mode().as_str(),
                "data": rows,
            }),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            &e.to_string(),
        ),
    }
}

/// `GET /admin/v1/workflows`: the workflow inventory with labels, limits, budgets, objectives
/// and the spend of the current windows.
pub(crate) async fn workflows(
    State(state): State<Arc<AppState>>,
    _guarded: Extension<Caller>,
) -> Response {
    let unregistered = state.config.governance.unregistered.as_str();
    json_response(
        StatusCode::OK,
        &json!({
            "object": "list",
            "unregistered": unregistered,
            "data": state.governance.inventory(),
        }),
    )
}

/// `PUT /admin/v1/workflows/{name}`: registers (201) or replaces (200) a workflow at run time,
/// from its JSON spec (the `name` may be left out; if present it must match the path). The
/// store keeps it; the inventory takes it at once. Workflows of the config file are changed by
/// editing the file (409).
pub(crate) async fn put_workflow(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let Some(store) = state.workflow_store.clone() else {
        return error(StatusCode::CONFLICT, "invalid_request_error", "this gateway has no store for workflows registered at run time; declare them in the config file");
    };
    if state.governance.inventory.in_config(&name) {
        let message = format!("workflow '{name}' is declared in the config file; change it there");
        return error(StatusCode::CONFLICT, "invalid_request_error", &message);
    }
    let mut value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the body must be a JSON object",
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("the body is not JSON: {e}"),
            )
        }
    };
    match value.get("name") {
        None => value["name"] = json!(name),
        Some(v) if v.as_str() == Some(name.as_str()) => {}
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the body's name differs from the path's",
            )
        }
    }
    let spec: moat_store::WorkflowSpec = match serde_json::from_value(value) {
        Ok(spec) => spec,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("not a workflow: {e}"),
            )
        }
    };
    if let Err(problems) = spec.to_config() {
        let message = format!("invalid workflow: {}", problems.join("; "));
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
    }
    let existed = state.governance.inventory.get(&name).is_some();
    if let Err(e) = store.put_workflow(&spec, state.clock.now_ms()).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            &e.to_string(),
        );
    }
    if let Err(e) = crate::workflows::reload(&state, store.as_ref()).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            &e.to_string(),
        );
    }
    tracing::info!(workflow = %name, replaced = existed, admin_key = %caller.id, "workflow registered through the admin API");
    let row = state
        .governance
        .inventory()
        .into_iter()
        .find(|w| w["name"] == name.as_str())
        .unwrap_or(serde_json::Value::Null);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    json_response(status, &row)
}

/// `DELETE /admin/v1/workflows/{name}`: removes a workflow registered at run time (204); its
/// keys become unregistered traffic. 404 if there is none, 409 for the config file's.
pub(crate) async fn delete_workflow(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if state.governance.inventory.in_config(&name) {
        let message = format!("workflow '{name}' is declared in the config file; remove it there");
        return error(StatusCode::CONFLICT, "invalid_request_error", &message);
    }
    let Some(store) = state.workflow_store.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("no workflow '{name}'"),
        );
    };
    match store.delete_workflow(&name).await {
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("no workflow '{name}'"),
        ),
        Ok(true) => match crate::workflows::reload(&state, store.as_ref()).await {
            Ok(_) => {
                tracing::info!(workflow = %name, admin_key = %caller.id, "workflow removed through the admin API");
                let mut r = Response::new(axum::body::Body::empty());
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            Err(e) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                &e.to_string(),
            ),
        },
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            &e.to_string(),
        ),
    }
}

/// `GET /admin/v1/spend`: settled spend per key, workflow and account in the current windows.
pub(crate) async fn spend(
    State(state): State<Arc<AppState>>,
    _guarded: Extension<Caller>,
) -> Response {
    json_response(
        StatusCode::OK,
        &json!({ "object": "list", "data": state.governance.spend() }),
    )
}

/// `GET /admin/v1/incidents`: workflow objective violations kept in memory (the last 1000),
/// oldest first.
pub(crate) async fn incidents(
    State(state): State<Arc<AppState>>,
    _guarded: Extension<Caller>,
) -> Response {
    json_response(
        StatusCode::OK,
        &json!({ "object": "list", "data": state.guardrails.incidents() }),
    )
}
