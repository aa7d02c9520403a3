//! `GET /v1/models`: the configured models a key may use, in one shape both SDKs accept.

use crate::auth::presented_key;
use crate::error::{json_response, GatewayError};
use crate::state::AppState;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use moat_core::Protocol;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

/// Lists models (`id` = `None`) or describes one, for an authenticated key.
pub async fn models(
    state: &AppState,
    headers: &HeaderMap,
    peer: IpAddr,
    id: Option<&str>,
) -> Response {
    // Anthropic clients send anthropic-version; they get errors in their own shape.
    let protocol = if headers.contains_key("anthropic-version") {
        Protocol::Anthropic
    } else {
        Protocol::OpenAi
    };
    match list(state, headers, peer, id).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => {
            let client =
                crate::forwarded::client_ip(peer, headers, &state.config.server.trusted_proxies);
            state
                .refusals
                .data_plane(client, e)
                .into_protocol_response(protocol)
        }
    }
}

async fn list(
    state: &AppState,
    headers: &HeaderMap,
    peer: IpAddr,
    id: Option<&str>,
) -> Result<Value, GatewayError> {
    let presented = presented_key(headers).ok_or(GatewayError::MissingKey)?;
    let key = state.keys.authenticate(presented).await?;
    let key = key.ok_or(moat_policy::ScopeError::InvalidKey)?;
    let client = crate::forwarded::client_ip(peer, headers, &state.config.server.trusted_proxies);
    moat_policy::authorize(&key, None, client, state.clock.now_secs())?;
    let created_at = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_secs(state.started_at.max(0) as u64),
    )
    .to_string();
    let entry = |name: &str| {
        json!({
            "id": name, "object": "model", "created": state.started_at, "owned_by": "moat",
            "type": "model", "display_name": name, "created_at": created_at,
        })
    };
    let visible: Vec<&String> = state
        .routes
        .names
        .iter()
        .filter(|m| moat_policy::may_use_model(&key, m))
        .collect();
    if let Some(id) = id {
        return visible
            .iter()
            .find(|m| m.as_str() == id)
            .map(|m| entry(m))
            .ok_or_else(|| GatewayError::UnknownModel(id.to_string()));
    }
    let data: Vec<Value> = visible.iter().map(|m| entry(m)).collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "first_id": visible.first(),
        "last_id": visible.last(),
    }))
}
