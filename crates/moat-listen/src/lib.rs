//! moat's accept loop: serves one HTTP service (HTTP/1.1 and HTTP/2, chosen per connection) on a
//! TCP listener with the limits an internet-facing server needs and `axum::serve` leaves out.
//!
//! - A connection that has not started a request within `header_read_timeout` (a partial request
//!   line, a bare HTTP/2 preface, nothing at all) is closed; so is a partial HTTP/1 head (hyper's
//!   header-read timeout, driven by a real timer), and an HTTP/1 connection waiting for its next
//!   request longer than that.
//! - A connection with no request in flight for `idle_timeout` is closed (HTTP/2 included).
//! - HTTP/2: at most `http2_max_concurrent_streams` streams per connection, and keep-alive pings
//!   that drop a peer which stops answering.
//! - At most `max_connections` open connections, and `max_connections_per_address` per client
//!   address (IPv6: per /64); past either, a new connection is closed at once, counted in
//!   `moat_connections_refused_total{reason}` and logged at most every 10 s.
//! - Accept errors (out of file descriptors...) are logged, counted in
//!   `moat_accept_errors_total` and backed off; the listener never dies or spins.
//! - Shutdown stops accepting, lets in-flight requests and streams finish up to a grace period,
//!   then closes what is left and returns.
//!
//! [`AddressThrottle`] is the per-address limiter of failed authentications, [`LogEvery`] a
//! rate limit for log lines, [`raise_fd_limit`] lifts the soft file-descriptor limit.

mod admit;
mod conn;
mod fdlimit;
mod logevery;
mod throttle;

pub use fdlimit::raise_fd_limit;
pub use logevery::LogEvery;
pub use throttle::AddressThrottle;

use admit::Admission;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// An error a service or body may fail with.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// HTTP/2 keep-alive: a ping this often, and the connection is dropped when one goes unanswered
/// this long (a peer that vanished mid-stream).
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a connection told to close (idle, or the server stopping with nothing in flight) may
/// take to say goodbye (an HTTP/2 GOAWAY waits for a ping) before it is dropped.
const CLOSE_BOUND: Duration = Duration::from_secs(1);

/// The limits of the listener (`[server]` in moat's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection must start a request (HTTP/1: send a whole request head) within this long
    /// of opening, or of its previous response (HTTP/1 keep-alive).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections per client address at most (IPv6: per /64).
    pub max_connections_per_address: usize,
    /// Concurrent HTTP/2 streams per connection at most.
    pub http2_max_concurrent_streams: u32,
}

/// Peers the per-address cap does not apply to (trusted proxies carry many clients).
pub type Exempt = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The listener's configuration: its limits and who is exempt from the per-address cap.
#[derive(Clone)]
pub struct Listen {
    limits: Limits,
    exempt: Exempt,
}

impl std::fmt::Debug for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listen")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Listen {
    /// A listener with `limits`, nobody exempt.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            exempt: Arc::new(|_| false),
        }
    }

    /// Exempts peers for which `exempt` holds from the per-address cap.
    pub fn exempt(mut self, exempt: impl Fn(IpAddr) -> bool + Send + Sync + 'static) -> Self {
        self.exempt = Arc::new(exempt);
        self
    }

    fn builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.limits.http2_max_concurrent_streams)
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_TIMEOUT);
        builder
    }

    /// Serves connections from `listener` until `shutdown` resolves, each with the service
    /// `make(peer)` builds; then stops accepting, gives open connections up to `grace` to finish
    /// their requests and streams, closes the rest and returns.
    pub async fn serve<M, S, B>(
        self,
        listener: TcpListener,
        make: M,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> std::io::Result<()>
    where
        M: Fn(SocketAddr) -> S,
        S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let builder = Arc::new(self.builder());
        let admission = Arc::new(Admission::new(
            self.limits.max_connections,
            self.limits.max_connections_per_address,
            Arc::clone(&self.exempt),
        ));
        let stopping = CancellationToken::new();
        let mut connections = JoinSet::new();
        let mut backoff = Backoff::default();
        let accept_errors = LogEvery::new(Duration::from_secs(10));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                // Finished connections are reaped as they end, so the set holds open ones only.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        backoff.reset();
                        let Some(ticket) = admission.admit(peer) else {
                            // Closed at once: the client sees the connection end.
                            drop(tcp);
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        connections.spawn(conn::serve(
                            Arc::clone(&builder),
                            tcp,
                            make(peer),
                            self.limits,
                            stopping.clone(),
                            ticket,
                        ));
                    }
                    // The peer gave up between its SYN and our accept: nothing to back off from.
                    Err(e) if is_connection_error(&e) => {}
                    Err(e) => {
                        metrics::counter!("moat_accept_errors_total").increment(1);
                        let pause = backoff.next();
                        if let Some(suppressed) = accept_errors.ready() {
                            tracing::error!(error = %e, pause_ms = pause.as_millis() as u64, suppressed, "accepting a connection failed; backing off");
                        }
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(pause) => {}
                        }
                    }
                },
            }
        }
        drop(listener);
        stopping.cancel();
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = connections.len(),
                "grace period over: closing remaining connections"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

/// Errors of one connection that `accept` reports (it is gone), as opposed to the listener's.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Pauses after consecutive accept errors: 5 ms doubling up to 1 s, reset by a success.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let pause = Duration::from_millis(5u64 << self.failures.min(8)).min(Duration::from_secs(1));
        self.failures = self.failures.saturating_add(1);
        pause
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second_and_resets() {
        let mut b = Backoff::default();
        assert_eq!(b.next(), Duration::from_millis(5));
        assert_eq!(b.next(), Duration::from_millis(10));
        for _ in 0..20 {
            assert!(b.next() <= Duration::from_secs(1));
        }
        assert_eq!(b.next(), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(5));
    }
}
