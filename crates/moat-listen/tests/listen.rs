//! The accept loop on a real loopback listener: timeouts, caps and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use moat_listen::{Limits, Listen};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

const LIMITS: Limits = Limits {
    header_read_timeout: Duration::from_millis(400),
    idle_timeout: Duration::from_millis(600),
    max_connections: 50,
    max_connections_per_address: 5,
    http2_max_concurrent_streams: 4,
};

/// Answers `ok`, after `?ms=N` milliseconds when asked.
async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let ms: u64 = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits, grace: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(Listen::new(limits).serve(
        listener,
        |_peer| tower::service_fn(app),
        async move {
            let _ = stopped.await;
        },
        grace,
    ));
    Server {
        addr,
        stop: Some(stop),
        task,
    }
}

/// A connection from `source` (any 127/8 address is loopback on Linux).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closes `stream` within `bound`, reading (and dropping) what it sends.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// One HTTP/1.1 GET on `stream`; the status line's code.
async fn get(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let mut got = Vec::new();
    while !got.ends_with(b"ok") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got[9..12]).into_owned()
}

#[tokio::test]
async fn connections_that_start_no_request_are_closed_after_the_header_timeout() {
    let server = start(LIMITS, Duration::from_secs(5)).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(b"GET /healthz HT").await.unwrap();
    let mut preface = TcpStream::connect(server.addr).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // Without the timeouts none of these would ever be closed.
    for s in [&mut silent, &mut partial, &mut preface] {
        assert!(closed_within(s, Duration::from_secs(10)).await);
    }
    // Meanwhile a client that sends its request is served.
    let mut ok = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut ok, "/").await, "200");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_but_a_slow_answer_is_not_cut() {
    let server = start(LIMITS, Duration::from_secs(5)).await;
    // HTTP/1.1 keep-alive, idle after its answer.
    let mut h1 = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut h1, "/").await, "200");
    assert!(closed_within(&mut h1, Duration::from_secs(10)).await);

    // A request in flight three times longer than the idle timeout is answered.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut slow, "/?ms=1800").await, "200");

    // HTTP/2: a connection whose stream ended is closed after the idle timeout.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let (done_tx, done) = oneshot::channel();
    tokio::spawn(async move {
        let _ = conn.await;
        let _ = done_tx.send(());
    });
    let req = Request::get(format!("http://{}/?ms=900", server.addr))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
    tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .expect("the idle HTTP/2 connection is closed")
        .unwrap();
}

#[tokio::test]
async fn past_the_per_address_cap_connections_are_closed_at_once_other_addresses_are_served() {
    let server = start(LIMITS, Duration::from_secs(5)).await;
    let mut held = Vec::new();
    for _ in 0..LIMITS.max_connections_per_address {
        let mut s = connect_from("127.0.0.2", server.addr).await;
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        held.push(s);
    }
    // One more from the same address is closed at once, long before any timeout.
    let mut refused = connect_from("127.0.0.2", server.addr).await;
    assert!(closed_within(&mut refused, Duration::from_millis(300)).await);
    let mut other = connect_from("127.0.0.3", server.addr).await;
    assert_eq!(get(&mut other, "/").await, "200");
    // Once the held ones time out, the address has room again.
    for s in &mut held {
        assert!(closed_within(s, Duration::from_secs(10)).await);
    }
    let mut again = connect_from("127.0.0.2", server.addr).await;
    assert_eq!(get(&mut again, "/").await, "200");
}

#[tokio::test]
async fn past_the_global_cap_connections_are_closed_at_once() {
    let limits = Limits {
        max_connections: 3,
        ..LIMITS
    };
    let server = start(limits, Duration::from_secs(5)).await;
    let mut held = Vec::new();
    for i in 0..3 {
        let mut s = connect_from(&format!("127.0.1.{i}"), server.addr).await;
        assert_eq!(get(&mut s, "/").await, "200");
        held.push(s);
    }
    let mut refused = connect_from("127.0.1.9", server.addr).await;
    assert!(closed_within(&mut refused, Duration::from_millis(300)).await);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_then_returns() {
    let mut server = start(LIMITS, Duration::from_secs(10)).await;
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(b"GET /?ms=700 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.take().unwrap().send(()).unwrap();
    let mut buf = vec![0u8; 1024];
    let n = busy.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("the server returns once its requests are done")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_what_is_left_after_the_grace_period() {
    let mut server = start(LIMITS, Duration::from_millis(300)).await;
    let mut stuck = TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"GET /?ms=60000 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("the server returns after the grace period")
        .unwrap()
        .unwrap();
    assert!(closed_within(&mut stuck, Duration::from_secs(2)).await);
}
