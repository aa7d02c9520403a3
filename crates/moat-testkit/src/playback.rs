//! Plays a reply onto the wire: response heads, and bodies that pace, stall or abort on cue.
//!
//! A body is a queue of steps (send these bytes after this pause, abort, stall) turned into a
//! stream with `unfold`, so no task outlives the connection: when the client leaves, hyper drops
//! the body and with it every pending pause or stall.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use moat_core::Protocol;
use serde_json::Value;

use crate::errors::ApiError;
use crate::fault::{StatusReply, StreamFault};
use crate::reply::{SseEvent, Transcript};

/// The body type of every response the sim sends.
pub(crate) type SimBody = UnsyncBoxBody<Bytes, io::Error>;

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// One step of a body.
#[derive(Debug)]
enum Step {
    /// Wait `delay`, then send `bytes`.
    Send { delay: Duration, bytes: Bytes },
    /// Abort the body: hyper then closes the connection without the chunked terminator.
    Abort,
    /// Send nothing more, ever, and keep the connection open.
    Stall,
}

/// A 200 JSON response, degraded by a stream fault if one applies.
pub(crate) fn json(
    protocol: Protocol,
    request_id: &str,
    value: &Value,
    fault: Option<StreamFault>,
) -> Response<SimBody> {
    let bytes = Bytes::from(value.to_string());
    let half = bytes.slice(..bytes.len() / 2);
    let body = match fault {
        None | Some(StreamFault::NoDone) => full(bytes),
        Some(StreamFault::SlowFirst(delay)) => stepped(vec![Step::Send { delay, bytes }]),
        Some(StreamFault::Cut(_)) => stepped(vec![send(half), Step::Abort]),
        Some(StreamFault::Stall(_)) => stepped(vec![send(half), Step::Stall]),
        Some(StreamFault::Malformed(_)) => full(half),
    };
    response(protocol, request_id, StatusCode::OK, JSON, body)
}

/// A 200 event stream of `transcript`, degraded by a stream fault if one applies.
pub(crate) fn stream(
    protocol: Protocol,
    request_id: &str,
    transcript: Transcript,
    fault: Option<StreamFault>,
    word_delay: Duration,
) -> Response<SimBody> {
    let Transcript {
        mut events,
        malformed_name,
    } = transcript;
    // Faults stop short of the terminator, so a degraded stream never looks complete.
    let terminator = events.len().saturating_sub(1);
    let mut first_delay = Duration::ZERO;
    let mut ending = None;
    match fault {
        None => {}
        Some(StreamFault::SlowFirst(delay)) => first_delay = delay,
        Some(StreamFault::NoDone) => {
            events.pop();
        }
        Some(StreamFault::Cut(after)) => {
            events.truncate(after.min(terminator));
            ending = Some(Step::Abort);
        }
        Some(StreamFault::Stall(after)) => {
            events.truncate(after.min(terminator));
            ending = Some(Step::Stall);
        }
        Some(StreamFault::Malformed(after)) => {
            events.insert(after.min(terminator), SseEvent::malformed(malformed_name));
        }
    }
    let mut steps: Vec<Step> = events
        .iter()
        .enumerate()
        .map(|(i, event)| Step::Send {
            delay: match (i, event.paced) {
                (0, _) => first_delay,
                (_, true) => word_delay,
                (_, false) => Duration::ZERO,
            },
            bytes: Bytes::from(event.encode()),
        })
        .collect();
    steps.extend(ending);
    let mut response = response(
        protocol,
        request_id,
        StatusCode::OK,
        EVENT_STREAM,
        stepped(steps),
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// An error response in `protocol`'s envelope.
pub(crate) fn error(protocol: Protocol, request_id: &str, err: &ApiError) -> Response<SimBody> {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = full(Bytes::from(err.body(protocol, request_id).to_string()));
    response(protocol, request_id, status, JSON, body)
}

/// The response of a `Status` fault: its raw body or the protocol's default error for the status.
pub(crate) fn status(
    protocol: Protocol,
    request_id: &str,
    reply: StatusReply,
    model: Option<&str>,
) -> Response<SimBody> {
    let code = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(raw) => {
            let content_type = if serde_json::from_str::<Value>(&raw).is_ok() {
                JSON
            } else {
                "text/plain; charset=utf-8"
            };
            response(protocol, request_id, code, content_type, full(raw.into()))
        }
        None => {
            let err = ApiError::for_status(protocol, code.as_u16(), model);
            let body = full(Bytes::from(err.body(protocol, request_id).to_string()));
            response(protocol, request_id, code, JSON, body)
        }
    };
    let headers = [
        ("retry-after", reply.retry_after),
        ("retry-after-ms", reply.retry_after_ms),
    ];
    for (name, value) in headers {
        let Some(value) = value else { continue };
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(name), value);
            }
            Err(_) => tracing::warn!(name, value, "fault header value is not a valid header"),
        }
    }
    response
}

fn response(
    protocol: Protocol,
    request_id: &str,
    status: StatusCode,
    content_type: &'static str,
    body: SimBody,
) -> Response<SimBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let id_header = match protocol {
        Protocol::OpenAi => "x-request-id",
        Protocol::Anthropic => "request-id",
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(id_header), value);
    }
    response
}

fn full(bytes: Bytes) -> SimBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn send(bytes: Bytes) -> Step {
    Step::Send {
        delay: Duration::ZERO,
        bytes,
    }
}

fn stepped(steps: Vec<Step>) -> SimBody {
    let steps = VecDeque::from(steps);
    let frames = futures_util::stream::unfold(steps, |mut steps| async move {
        match steps.pop_front()? {
            Step::Send { delay, bytes } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok(Frame::data(bytes)), steps))
            }
            Step::Abort => {
                // hyper stops at a body error without flushing what it buffered: yield once so
                // it flushes the events already produced, then fail the body.
                tokio::task::yield_now().await;
                steps.clear();
                let err = io::Error::new(io::ErrorKind::ConnectionAborted, "simulated stream cut");
                Some((Err(err), steps))
            }
            Step::Stall => {
                std::future::pending::<()>().await;
                None
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}
