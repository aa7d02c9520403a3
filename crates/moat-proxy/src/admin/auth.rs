//! Who is calling the admin API, and whether their role may call this route.
//!
//! Both credentials are compared as SHA-256 digests in constant time (`moat_policy::KeyHash`),
//! so neither their content nor their length shows in timings. Admin keys are read from the
//! store on every call (the admin API is off the request path), so a revocation holds at once.

use super::{error, Caller};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use moat_store::{parse_admin_key, AdminRole, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;

/// The id a read record names when the bootstrap token of `[admin] token` read (admin key ids are
/// 12 lowercase alphanumerics, so it cannot be one).
pub(crate) const BOOTSTRAP_ID: &str = "admin-token";

/// The guard of a route admitting `roles`: authenticates, refuses other roles (403), and hands
/// the caller to the handler.
pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    roles: &'static [AdminRole],
    mut req: Request<Body>,
    next: Next,
) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            crate::forwarded::client_ip(
                peer.ip(),
                req.headers(),
                &state.config.server.trusted_proxies,
            )
        });
    // An address over its failure limit is refused before its credential is checked.
    if let Some(wait) = client.and_then(|c| state.refusals.admin_blocked(c)) {
        return too_many_failures(wait);
    }
    let (id, role) = match authenticate(&state, req.headers()).await {
        Ok(found) => found,
        Err(refusal) => {
            if refusal.status() == StatusCode::UNAUTHORIZED {
                if let Some(wait) = client.and_then(|c| state.refusals.admin_failure(c)) {
                    return too_many_failures(wait);
                }
            }
            return refusal;
        }
    };
    if !roles.contains(&role) {
        let message = format!(
            "the '{role}' role may not {} {}",
            req.method(),
            req.uri().path()
        );
        tracing::info!(admin_key = %id, %role, method = %req.method(), path = req.uri().path(), "admin API call refused by role");
        return error(StatusCode::FORBIDDEN, "permission_error", &message);
    }
    let source_ip = client.map(|c| c.to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    req.extensions_mut().insert(Caller {
        id,
        role,
        source_ip,
        user_agent,
    });
    next.run(req).await
}

/// The id and role of the credential presented, or the refusal: 401 for a missing or wrong one,
/// 404 when the admin API has no credential at all, 503 when the store cannot be read.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, AdminRole), Response> {
    if let Some(presented) = bearer(headers) {
        let hash = moat_policy::hash_key(presented);
        if state
            .admin_token
            .as_ref()
            .is_some_and(|expected| hash.matches(expected))
        {
            return Ok((BOOTSTRAP_ID.to_string(), AdminRole::Admin));
        }
        if let (Some(id), Some(store)) = (parse_admin_key(presented), &state.admin_keys) {
            match store.get_admin_key(id).await {
                Ok(Some(key)) if key.revoked_at.is_none() && hash.matches(&key.hash) => {
                    return Ok((key.id, key.role));
                }
                Ok(_) => {}
                Err(e) => return Err(unavailable(&e)),
            }
        }
    }
    if configured(state).await.map_err(|e| unavailable(&e))? {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "missing or invalid admin key: send it as 'Authorization: Bearer <key>'",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(r)
    } else {
        // No credential configured: the admin API is off, and says nothing about itself.
        Err(error(StatusCode::NOT_FOUND, "not_found_error", "not found"))
    }
}

/// Whether any credential could open the admin API: the token, or an active stored admin key.
async fn configured(state: &AppState) -> Result<bool, StoreError> {
    if state.admin_token.is_some() {
        return Ok(true);
    }
    match &state.admin_keys {
        Some(store) => Ok(store
            .list_admin_keys()
            .await?
            .iter()
            .any(|k| k.revoked_at.is_none())),
        None => Ok(false),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// 429 with `Retry-After` for an address over its admin failure limit.
fn too_many_failures(wait: std::time::Duration) -> Response {
    let secs = wait.as_millis().div_ceil(1000).max(1);
    let message =
        format!("too many failed admin authentications from this address: try again in {secs} s");
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", &message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
    r
}

fn unavailable(e: &StoreError) -> Response {
    tracing::error!(error = %e, "cannot read the admin keys");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the admin keys cannot be read",
    )
}
