//! A bare reverse proxy: hyper server in, pooled hyper client out, the answer's body streamed
//! through as it arrives, nothing inspected.
//! It is the floor any proxy pays on this machine (one more loopback hop, one more task wake-up), so
//! the report can say how far moat sits above it.

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Starts the proxy on a free loopback port, forwarding every request to `upstream` (host:port).
pub async fn start(upstream: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let client = client.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let client = client.clone();
                    async move { Ok::<_, Infallible>(forward(&client, upstream, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn forward(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Response<Either<Incoming, Full<Bytes>>> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Ok(uri) = format!("http://{upstream}{path}").parse() else {
        return error();
    };
    parts.uri = uri;
    let Ok(body) = body.collect().await else {
        return error();
    };
    let Ok(response) = client
        .request(Request::from_parts(parts, Full::new(body.to_bytes())))
        .await
    else {
        return error();
    };
    response.map(Either::Left)
}

fn error() -> Response<Either<Incoming, Full<Bytes>>> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(b"bad gateway"))));
    *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    r
}
