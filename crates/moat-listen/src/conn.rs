//! One connection: served by hyper, watched for a first request that never comes and for
//! idleness, and closed on shutdown once its requests are done.

use crate::admit::Ticket;
use crate::{BoxError, Limits, CLOSE_BOUND};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Why the server closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// No request started within `header_read_timeout` of opening.
    NoRequest,
    /// No request in flight for `idle_timeout`.
    Idle,
    /// The server is stopping.
    Shutdown,
}

impl Close {
    fn label(self) -> &'static str {
        match self {
            Close::NoRequest => "no_request",
            Close::Idle => "idle",
            Close::Shutdown => "shutdown",
        }
    }
}

/// Serves one admitted connection to its end.
pub(crate) async fn serve<S, B>(
    builder: Arc<Builder<TokioExecutor>>,
    tcp: TcpStream,
    service: S,
    limits: Limits,
    stopping: CancellationToken,
    _ticket: Ticket,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let activity = Arc::new(Activity::new());
    let tracked = Tracked {
        inner: service,
        activity: Arc::clone(&activity),
    };
    let conn = builder.serve_connection(TokioIo::new(tcp), tracked);
    tokio::pin!(conn);
    let why = tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                closed_by_error(&e);
            }
            return;
        }
        why = activity.expired(limits.header_read_timeout, limits.idle_timeout) => why,
        () = stopping.cancelled() => Close::Shutdown,
    };
    if why != Close::Shutdown {
        metrics::counter!("moat_connections_closed_total", "reason" => why.label()).increment(1);
    }
    conn.as_mut().graceful_shutdown();
    // In-flight requests and streams run on (the server bounds them by its grace period); once
    // none is left the goodbye gets a short bound, since a peer need not answer an HTTP/2 ping.
    tokio::select! {
        _ = conn.as_mut() => {}
        () = activity.idle() => {
            let _ = tokio::time::timeout(CLOSE_BOUND, conn).await;
        }
    }
}

/// Counts connections hyper ended on a timeout of its own (a partial HTTP/1 head).
fn closed_by_error(e: &BoxError) {
    let timeout = e
        .downcast_ref::<hyper::Error>()
        .is_some_and(hyper::Error::is_timeout);
    if timeout {
        metrics::counter!("moat_connections_closed_total", "reason" => "header_timeout")
            .increment(1);
    }
}

/// A connection's requests in flight, and since when it has had none.
struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    in_flight: usize,
    idle_since: Instant,
    /// Whether any request has started on this connection.
    served: bool,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request started; it ends when the guard (carried by its response body) is dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        let mut s = self.state();
        s.in_flight += 1;
        s.served = true;
        drop(s);
        self.changed.notify_waiters();
        InFlight(Arc::clone(self))
    }

    /// Resolves when the connection has had no request in flight for its limit:
    /// `first` before any request, `idle` after one.
    async fn expired(&self, first: Duration, idle: Duration) -> Close {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (deadline, why) = {
                let s = self.state();
                if s.in_flight > 0 {
                    (None, Close::Idle)
                } else if s.served {
                    (Some(s.idle_since + idle), Close::Idle)
                } else {
                    (Some(s.idle_since + first), Close::NoRequest)
                }
            };
            match deadline {
                None => notified.await,
                Some(at) if Instant::now() >= at => return why,
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    }

    /// Resolves once no request is in flight.
    async fn idle(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state().in_flight == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One request in flight.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
        }
        drop(s);
        self.0.changed.notify_waiters();
    }
}

/// The service, counting each request as in flight until its response body is done.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
{
    type Response = Response<Guarded<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let service = self.inner.clone();
        Box::pin(async move {
            let response = service.oneshot(request).await.map_err(Into::into)?;
            Ok(response.map(|body| Guarded {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that holds its request's place in flight until hyper drops it.
pub(crate) struct Guarded<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: Body + Unpin> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
