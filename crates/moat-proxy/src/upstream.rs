//! Upstream providers: one HTTP client per provider, how to address it, which headers reach it.

use crate::error::GatewayError;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use moat_config::{Criticality, FailoverConfig, ProviderConfig};
use moat_core::{Protocol, Secret};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A configured provider, ready to send to.
pub struct Provider {
    /// Name from config, used in logs and metrics.
    pub name: Arc<str>,
    /// The protocol it speaks.
    pub kind: Protocol,
    base_url: String,
    api_key: Option<Secret<String>>,
    /// One client per criticality, indexed by `Criticality::index`: hyper sets the connect
    /// timeout per connector, so a criticality with its own `connect` timeout gets its own pool;
    /// the others share the provider's (clones of one client share one pool).
    clients: [HttpClient; 3],
    /// Longest wait for response headers.
    pub first_byte_timeout: Duration,
    /// Longest silence between two body chunks.
    pub idle_timeout: Duration,
    /// Tags routing rules select it by.
    pub tags: Vec<String>,
    extra_headers: HeaderMap,
}

/// Which upstream operation a request maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// OpenAI `/chat/completions`.
    ChatCompletions,
    /// OpenAI `/embeddings`.
    Embeddings,
    /// OpenAI `/responses`.
    Responses,
    /// Anthropic `/v1/messages`.
    Messages,
    /// Anthropic `/v1/messages/count_tokens`.
    CountTokens,
}

impl Provider {
    /// Builds the provider and its connection pool: hyper's pooled client over rustls with the
    /// Mozilla root set, HTTP/1.1 or HTTP/2 by ALPN. It reads no proxy variables and follows no
    /// redirects: moat talks only to the upstreams in its config. (hyper directly rather than
    /// reqwest: reqwest's per-request layers cost ~70 us of added p50 latency in `bench/`.)
    /// A criticality whose `[failover]` timeouts set `connect` gets a pool of its own.
    pub fn new(config: &ProviderConfig, failover: &FailoverConfig) -> Provider {
        let shared = client(config.connect_timeout);
        let clients = Criticality::ALL.map(|c| match failover.timeouts(c).connect {
            Some(connect) if connect != config.connect_timeout => client(connect),
            _ => shared.clone(),
        });
        let mut extra_headers = HeaderMap::new();
        for (name, value) in &config.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                extra_headers.insert(n, v);
            }
        }
        Provider {
            name: Arc::from(config.name.as_str()),
            kind: config.kind,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_key: config.api_key.clone(),
            clients,
            first_byte_timeout: config.first_byte_timeout,
            idle_timeout: config.idle_timeout,
            tags: config.tags.clone(),
            extra_headers,
        }
    }

    /// What moat sends this provider that must never travel back out: its API key and the
    /// values of its extra headers of 16 characters or more (custom auth headers). Upstream
    /// error bodies are masked for them.
    pub fn secrets(&self) -> Vec<&str> {
        let headers = self
            .extra_headers
            .values()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.len() >= 16);
        self.api_key
            .as_ref()
            .map(|k| k.expose().as_str())
            .into_iter()
            .chain(headers)
            .collect()
    }

    /// The full URL of an operation. OpenAI base URLs include `/v1` (as the OpenAI SDK takes them);
    /// Anthropic base URLs do not (as the Anthropic SDK takes them).
    pub fn url(&self, op: Operation, query: Option<&str>) -> String {
        let path = match op {
            Operation::ChatCompletions => "/chat/completions",
            Operation::Embeddings => "/embeddings",
            Operation::Responses => "/responses",
            Operation::Messages => "/v1/messages",
            Operation::CountTokens => "/v1/messages/count_tokens",
        };
        match query {
            Some(q) if !q.is_empty() => format!("{}{path}?{q}", self.base_url),
            _ => format!("{}{path}", self.base_url),
        }
    }

    /// Sends one request of `criticality` and waits for the response headers until `until` (the
    /// caller's first-byte, first-token and total bounds, whichever comes first). Connection
    /// failures and timeouts are `UpstreamUnavailable`, which a retry or a fallback may rescue.
    pub async fn send(
        &self,
        op: Operation,
        query: Option<&str>,
        body: Bytes,
        client_headers: &HeaderMap,
        criticality: Criticality,
        until: Instant,
    ) -> Result<http::Response<Incoming>, GatewayError> {
        let mut headers = forward_headers(client_headers, self.kind);
        self.authorize(&mut headers);
        for (name, value) in &self.extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        let unusable = |what: String| GatewayError::UpstreamUnavailable {
            message: format!("upstream {}: {what}", self.name),
            timeout: false,
        };
        let uri: Uri = self
            .url(op, query)
            .parse()
            .map_err(|e| unusable(format!("unusable URL: {e}")))?;
        let mut request = Request::post(uri)
            .body(Full::new(body))
            .map_err(|e| unusable(format!("request could not be built: {e}")))?;
        *request.headers_mut() = headers;
        let client = &self.clients[criticality.index()];
        let sent = Instant::now();
        match tokio::time::timeout_at(until, client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(GatewayError::UpstreamUnavailable {
                message: format!("upstream {} unreachable: {}", self.name, error_chain(&e)),
                timeout: is_timeout(&e),
            }),
            Err(_) => Err(GatewayError::UpstreamUnavailable {
                message: format!(
                    "upstream {} sent no response within {} ms",
                    self.name,
                    until.saturating_duration_since(sent).as_millis()
                ),
                timeout: true,
            }),
        }
    }

    fn authorize(&self, headers: &mut HeaderMap) {
        let Some(key) = &self.api_key else { return };
        let result = match self.kind {
            Protocol::OpenAi => HeaderValue::try_from(format!("Bearer {}", key.expose()))
                .map(|v| headers.insert(http::header::AUTHORIZATION, v)),
            Protocol::Anthropic => {
                HeaderValue::try_from(key.expose().as_str()).map(|v| headers.insert("x-api-key", v))
            }
        };
        if result.is_err() {
            tracing::warn!(provider = %self.name, "provider api_key is not a valid header value; sent without it");
        }
    }
}

/// hyper's pooled client over rustls with the Mozilla root set, connecting within `connect`.
pub(crate) fn client(connect: Duration) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(https)
}

/// The headers a client request passes upstream. Credentials never do; the protocol's own extension
/// headers (`anthropic-*` to Anthropic, `openai-*` to OpenAI) always do, so beta headers stay paired
/// with the body fields they enable. `openai-organization` and `openai-project` name the client's own
/// OpenAI account and would clash with the provider's key, so they stay behind.
pub fn forward_headers(client: &HeaderMap, target: Protocol) -> HeaderMap {
    let mut out = HeaderMap::new();
    out.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in client {
        let n = name.as_str();
        let keep = match target {
            Protocol::Anthropic => n.starts_with("anthropic-"),
            Protocol::OpenAi => {
                n.starts_with("openai-") && n != "openai-organization" && n != "openai-project"
            }
        };
        if keep {
            out.append(name.clone(), value.clone());
        }
    }
    if target == Protocol::Anthropic && !out.contains_key("anthropic-version") {
        // Clients of the other protocol do not send one; Anthropic requires it.
        out.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
    }
    out
}

/// Whether an error, or any of its sources, is an I/O timeout (a connect timeout, say).
pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// The error and its sources, joined, for messages that say what actually failed.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_travel_and_protocol_headers_do() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer client-key"),
        );
        h.insert("x-api-key", HeaderValue::from_static("client-key"));
        h.insert("anthropic-beta", HeaderValue::from_static("a,b"));
        h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        h.insert("openai-beta", HeaderValue::from_static("assistants=v2"));
        h.insert("openai-organization", HeaderValue::from_static("org-1"));
        let a = forward_headers(&h, Protocol::Anthropic);
        assert_eq!(a["anthropic-beta"], "a,b");
        assert!(a.get("authorization").is_none() && a.get("x-api-key").is_none());
        let o = forward_headers(&h, Protocol::OpenAi);
        assert_eq!(o["openai-beta"], "assistants=v2");
        assert!(o.get("openai-organization").is_none() && o.get("anthropic-beta").is_none());
        let cross = forward_headers(&HeaderMap::new(), Protocol::Anthropic);
        assert_eq!(cross["anthropic-version"], "2023-06-01");
    }
}
