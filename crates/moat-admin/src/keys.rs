//! The admin API's key routes, over a [`KeyService`]. Who may call each is the gateway's guard's
//! decision, before these run; each handler takes the [`Caller`] the guard hands it, so a route
//! registered without a guard fails closed.
//!
//! - `POST /admin/v1/keys`: `{account, workflow?, models?, cidrs?, expires_in?}` -> 201 with the
//!   key (shown once) and its view.
//! - `GET /admin/v1/keys`: every key's view (never a hash or secret).
//! - `POST /admin/v1/keys/{id}/rotate`: `{grace?}` (default 24h, at most 30 days) -> 200 with the
//!   new key (shown once) and `old_key_valid_until`.
//! - `DELETE /admin/v1/keys/{id}`: revokes -> 200 with the view.
//!
//! Durations are humantime strings (`"24h"`) or whole seconds. Errors: 400 bad body, 404 unknown
//! id, 409 rotating a revoked key, 503 store failure, in the OpenAI error shape.

use crate::duration::parse_duration_value;
use crate::service::{IssuedKey, KeyError, KeyService, NewKey, DEFAULT_GRACE};
use crate::Caller;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the key handlers need from the gateway's state.
pub trait KeyAdminState: Send + Sync + 'static {
    /// The key service, whose on-change hook makes this gateway's cache forget a changed key.
    fn key_service(&self) -> &KeyService;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    account: String,
    workflow: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    cidrs: Vec<String>,
    expires_in: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace: Option<Value>,
}

/// `POST /admin/v1/keys`.
pub async fn create<S: KeyAdminState>(
    State(state): State<Arc<S>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let new = match parse::<CreateBody>(&body).and_then(new_key) {
        Ok(new) => new,
        Err(e) => return failure(&e),
    };
    match state.key_service().create(new).await {
        Ok(issued) => {
            let view = &issued.view;
            tracing::info!(key_id = %view.id, account = %view.account, admin_key = %caller.id, "key created through the admin API");
            json_response(StatusCode::CREATED, &issued_json(&issued))
        }
        Err(e) => failure(&e),
    }
}

/// `GET /admin/v1/keys`.
pub async fn list<S: KeyAdminState>(
    State(state): State<Arc<S>>,
    _guarded: Extension<Caller>,
) -> Response {
    match state.key_service().list().await {
        Ok(keys) => json_response(StatusCode::OK, &json!({"object": "list", "data": keys})),
        Err(e) => failure(&e),
    }
}

/// `POST /admin/v1/keys/{id}/rotate`.
pub async fn rotate<S: KeyAdminState>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let grace = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(DEFAULT_GRACE)
    } else {
        parse::<RotateBody>(&body).and_then(|b| match b.grace {
            Some(v) => {
                parse_duration_value("grace", &v).map_err(|e| KeyError::Invalid(e.to_string()))
            }
            None => Ok(DEFAULT_GRACE),
        })
    };
    let grace = match grace {
        Ok(g) => g,
        Err(e) => return failure(&e),
    };
    match state.key_service().rotate(&id, grace).await {
        Ok(issued) => {
            tracing::info!(key_id = %id, old_key_valid_until = issued.old_valid_until, admin_key = %caller.id, "key rotated through the admin API");
            json_response(StatusCode::OK, &issued_json(&issued))
        }
        Err(e) => failure(&e),
    }
}

/// `DELETE /admin/v1/keys/{id}`.
pub async fn revoke<S: KeyAdminState>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match state.key_service().revoke(&id).await {
        Ok(view) => {
            tracing::info!(key_id = %id, admin_key = %caller.id, "key revoked through the admin API");
            json_response(StatusCode::OK, &json!(view))
        }
        Err(e) => failure(&e),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, KeyError> {
    serde_json::from_slice(body).map_err(|e| KeyError::Invalid(format!("invalid body: {e}")))
}

fn new_key(body: CreateBody) -> Result<NewKey, KeyError> {
    let cidrs = body
        .cidrs
        .iter()
        .map(|c| {
            c.trim()
                .parse()
                .map_err(|_| KeyError::Invalid(format!("'cidrs': '{c}' is not a network")))
        })
        .collect::<Result<_, _>>()?;
    let expires_in = body
        .expires_in
        .map(|v| parse_duration_value("expires_in", &v))
        .transpose()
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    Ok(NewKey {
        account: body.account,
        workflow: body.workflow,
        models: body.models,
        cidrs,
        expires_in,
    })
}

/// The view with the key itself, which this answer is the only one to show.
fn issued_json(issued: &IssuedKey) -> Value {
    let mut body = json!(issued.view);
    body["key"] = json!(issued.key.expose());
    if let Some(until) = issued.old_valid_until {
        body["old_key_valid_until"] = json!(until);
    }
    body
}

fn failure(e: &KeyError) -> Response {
    let (status, kind) = match e {
        KeyError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        KeyError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found_error"),
        KeyError::Revoked(_) => (StatusCode::CONFLICT, "invalid_request_error"),
        KeyError::Store(e) => {
            tracing::error!(error = %e, "the key store failed an admin API call");
            (StatusCode::SERVICE_UNAVAILABLE, "server_error")
        }
    };
    error(status, kind, &e.to_string())
}

/// An admin API error, in the OpenAI error shape the rest of the gateway answers with.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

/// `body` as JSON with `status`.
fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
