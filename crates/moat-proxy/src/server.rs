//! The HTTP server: routes, plumbing layers, health and metrics endpoints, graceful shutdown.

use crate::error::{json_response, GatewayError};
use crate::pipeline::{handle, Endpoint};
use crate::state::AppState;
use crate::telemetry;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{HeaderMap, Request, StatusCode};
use hyper::body::Incoming;
use moat_core::Protocol;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The router with every route moat serves.
pub fn router(state: Arc<AppState>) -> Router {
    let endpoint = |e: Endpoint| {
        move |State(s): State<Arc<AppState>>,
              ConnectInfo(peer): ConnectInfo<SocketAddr>,
              req: Request<Body>| async move { handle(s, e, peer, req).await }
    };
    Router::new()
        .route("/v1/chat/completions", post(endpoint(Endpoint::ChatCompletions)))
        .route("/v1/embeddings", post(endpoint(Endpoint::Embeddings)))
        .route("/v1/responses", post(endpoint(Endpoint::Responses)))
        .route("/v1/messages", post(endpoint(Endpoint::Messages)))
        .route("/v1/messages/count_tokens", post(endpoint(Endpoint::CountTokens)))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/healthz", get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::admin::routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            // A panic is a bug; the client still gets a well-formed error, and the process lives on.
            tracing::error!("request handler panicked");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": {"message": "internal error", "type": "server_error", "param": null, "code": null}}),
            )
        }))
        .with_state(state)
}

async fn list_models(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    crate::models::models(&s, &headers, peer.ip(), None).await
}

async fn get_model(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    crate::models::models(&s, &headers, peer.ip(), Some(&id)).await
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    // Red while the audit log cannot keep records: appends failing, chain broken, backlog full.
    if let Some(why) = s.audit.as_ref().and_then(|log| log.unavailable()) {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable", "reason": "audit", "detail": why}),
        );
    }
    match s.store.ping().await {
        Ok(()) => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "reason": "store"}),
            )
        }
    }
}

async fn metrics() -> Response {
    match telemetry::prometheus() {
        Some(handle) => (
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}

fn client_protocol(headers: &HeaderMap) -> Protocol {
    if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        Protocol::Anthropic
    } else {
        Protocol::OpenAi
    }
}

async fn not_found(req: Request<Body>) -> Response {
    let message = format!("no route for {} {}", req.method(), req.uri().path());
    let err = GatewayError::InvalidRequest {
        message,
        param: None,
    };
    let mut r = err.into_protocol_response(client_protocol(req.headers()));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn method_not_allowed(req: Request<Body>) -> Response {
    let message = format!(
        "method {} is not allowed on {}",
        req.method(),
        req.uri().path()
    );
    let err = GatewayError::InvalidRequest {
        message,
        param: None,
    };
    let mut r = err.into_protocol_response(client_protocol(req.headers()));
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// A running gateway: its address and the means to stop it.
pub struct Gateway {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// Binds `addr` (port 0 for any) and serves in a background task.
    pub async fn start(state: AppState, addr: SocketAddr) -> std::io::Result<Gateway> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let grace = state.config.server.shutdown_grace;
        let token = shutdown.clone();
        let task = tokio::spawn(serve(listener, Arc::new(state), grace, async move {
            token.cancelled().await
        }));
        Ok(Gateway {
            addr,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish up to the grace period, and waits.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Serves until `signal` resolves, then drains: in-flight requests and streams get up to `grace` to
/// finish before the server returns regardless. With a spend store, budget spend is saved every
/// [`SPEND_SAVE_INTERVAL`](crate::SPEND_SAVE_INTERVAL) meanwhile and once more after draining.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    grace: Duration,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let saver = state.spend_store.clone().map(|store| {
        let done = CancellationToken::new();
        let task = crate::spend::spawn_saver(Arc::clone(&state), store, done.clone());
        (task, done)
    });
    let refresher = state.workflow_store.clone().map(|store| {
        let done = CancellationToken::new();
        let task = crate::workflows::spawn_refresher(Arc::clone(&state), store, done.clone());
        (task, done)
    });
    let audit = state.audit.clone();
    let result = drain(listener, state, grace, signal).await;
    // Every request that finished is in the log before the process says it stopped, unless
    // the store cannot take it within the grace period: then the count of records lost is
    // logged and the process stops anyway.
    if let Some(log) = audit {
        log.flush_within(grace).await;
    }
    if let Some((task, done)) = refresher {
        done.cancel();
        let _ = task.await;
    }
    // Requests that finished have settled into the ledger by now, so the last save holds them.
    // Streams still running when the grace period ran out settle later and are not saved.
    if let Some((task, done)) = saver {
        done.cancel();
        if let Err(e) = task.await {
            tracing::error!(error = %e, "the budget spend saver failed");
        }
    }
    result
}

/// Serves until `signal`, then waits for open connections up to `grace`; connections are
/// accepted, bounded and timed out by `moat-listen` under the `[server]` limits.
async fn drain(
    listener: TcpListener,
    state: Arc<AppState>,
    grace: Duration,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = &state.config.server;
    let limits = moat_listen::Limits {
        header_read_timeout: server.header_read_timeout,
        idle_timeout: server.idle_timeout,
        max_connections: server.max_connections,
        max_connections_per_address: server.max_connections_per_address,
        http2_max_concurrent_streams: server.http2_max_concurrent_streams,
    };
    // A trusted proxy carries many clients over its connections: only the global cap applies.
    let trusted = server.trusted_proxies.clone();
    let listen =
        moat_listen::Listen::new(limits).exempt(move |ip| trusted.iter().any(|n| n.contains(&ip)));
    let app = router(state);
    let signal = async move {
        signal.await;
        tracing::info!(
            grace_s = grace.as_secs(),
            "shutting down: draining in-flight requests"
        );
    };
    // Handlers read the peer's address as axum's `ConnectInfo`.
    let service = move |peer: SocketAddr| {
        tower::ServiceExt::map_request(app.clone(), move |mut r: Request<Incoming>| {
            r.extensions_mut().insert(ConnectInfo(peer));
            r
        })
    };
    listen.serve(listener, service, signal, grace).await
}
