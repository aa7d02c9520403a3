//! The accept loop and per-connection serving, with a kill switch a handler can pull to reset the
//! TCP connection.
//!
//! Why hyper directly and not axum: a fault must be able to drop the socket without writing any
//! HTTP response (`ResetBeforeHeaders`), and abort a body mid-stream. Both need the connection in our
//! hands. Each accepted socket gets a [`CancellationToken`] (its kill switch) that the request
//! handler receives; cancelling it makes the connection task drop hyper's connection future, and the
//! socket wrapper, seeing the kill switch pulled, sets `SO_LINGER` to zero first so the close is a
//! TCP RST rather than a FIN. Routing is seven fixed paths, which a `match` serves better than a
//! framework whose extractors would answer bad input in their own (non-provider) error shapes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::router;
use crate::state::Shared;

/// Pause after an accept error that is not about one connection (e.g. out of file descriptors),
/// so a persistent error does not spin the loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The listening server: its address, the shutdown signal and the tasks to wait for.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Server {
    /// Binds `listen` and starts accepting in a background task.
    pub(crate) async fn bind(listen: SocketAddr, shared: Arc<Shared>) -> io::Result<Server> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(accept_loop(
            listener,
            shared,
            shutdown.clone(),
            tasks.clone(),
        ));
        tracing::debug!(%addr, "simulated upstream listening");
        Ok(Server {
            addr,
            shutdown,
            tasks,
        })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, drops every connection and waits until all their tasks ended.
    pub(crate) async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A dropped sim must not keep serving (or holding stalled connections) in the background.
        self.shutdown.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tasks.spawn(serve_connection(
                    stream,
                    peer,
                    Arc::clone(&shared),
                    shutdown.clone(),
                ));
            }
            Err(err) if is_connection_error(&err) => {
                tracing::debug!(%err, "accept failed for one connection");
            }
            Err(err) => {
                tracing::warn!(%err, "accept failed; backing off");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                }
            }
        }
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    // Small SSE events must leave as they are produced, not when Nagle decides.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "could not set TCP_NODELAY");
    }
    let kill = CancellationToken::new();
    let io = TokioIo::new(KillableStream {
        stream,
        kill: kill.clone(),
    });
    let handler_kill = kill.clone();
    let service = service_fn(move |request| {
        let shared = Arc::clone(&shared);
        let kill = handler_kill.clone();
        async move { Ok::<_, std::convert::Infallible>(router::handle(shared, kill, request).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection(io, service);
    tokio::select! {
        result = connection => {
            if let Err(err) = result {
                // Aborted streams (CutStream) end here by design; nothing to report above debug.
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        }
        () = kill.cancelled() => tracing::debug!(%peer, "connection reset by fault"),
        () = shutdown.cancelled() => {}
    }
}

/// A TCP stream that resets (RST) instead of closing (FIN) once its kill switch was pulled.
struct KillableStream {
    stream: TcpStream,
    kill: CancellationToken,
}

impl Drop for KillableStream {
    fn drop(&mut self) {
        if self.kill.is_cancelled() {
            if let Err(err) = self.stream.set_zero_linger() {
                tracing::debug!(%err, "could not set SO_LINGER 0; closing with FIN");
            }
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
