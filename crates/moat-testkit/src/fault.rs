//! Injectable faults and what each one makes the sim do.

use std::time::Duration;

use moat_core::Protocol;

use crate::errors::ApiError;

/// Something going wrong with one request, queued with [`crate::SimUpstream::push_fault`].
///
/// Stream faults (`SlowFirstToken`, `CutStream`, `StallStream`, `MalformedChunk`, `NoDone`) also
/// act on JSON replies; the crate documentation lists how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status instead of serving the request.
    Status {
        /// HTTP status code.
        status: u16,
        /// Raw response body; `None` gives the protocol's own error body for that status.
        body: Option<String>,
        /// Value of a `retry-after` header, sent as given.
        retry_after: Option<String>,
        /// Value of a `retry-after-ms` header, sent as given.
        retry_after_ms: Option<String>,
    },
    /// Wait this long before sending the response headers, then answer normally.
    DelayHeaders(Duration),
    /// Close the TCP connection with a reset, without any HTTP response.
    ResetBeforeHeaders,
    /// Accept the request and never respond; the connection stays open until the client leaves.
    NeverAnswer,
    /// Send the headers at once and the first stream event (or the JSON body) after this delay.
    SlowFirstToken(Duration),
    /// Send this many SSE events, then abort the connection without the stream's terminator.
    CutStream {
        /// Events sent before the cut.
        after_events: usize,
    },
    /// Send this many SSE events, then stay silent with the connection open.
    StallStream {
        /// Events sent before the stall.
        after_events: usize,
    },
    /// Inject a `data: {not json` event after this many events, then continue normally.
    MalformedChunk {
        /// Events sent before the malformed one.
        after_events: usize,
    },
    /// End the stream cleanly without its terminator: no `data: [DONE]` on OpenAI chat, no
    /// `message_stop` on Anthropic, no `response.completed` on Responses.
    NoDone,
    /// 400 with the provider's real context-length error.
    ContextLengthExceeded,
    /// 400 with the provider's content-policy rejection.
    ContentPolicy,
}

/// A stream fault, applied while the reply body plays out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFault {
    SlowFirst(Duration),
    Cut(usize),
    Stall(usize),
    Malformed(usize),
    NoDone,
}

/// A `Status` fault's response, before it is shaped for the protocol.
#[derive(Clone, Debug)]
pub(crate) struct StatusReply {
    pub(crate) status: u16,
    pub(crate) body: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) retry_after_ms: Option<String>,
}

/// What the request handler does about a fault.
#[derive(Clone, Debug)]
pub(crate) enum Plan {
    /// Reset the connection.
    Reset,
    /// Never answer.
    Hang,
    /// Wait, then serve normally.
    Delay(Duration),
    /// Answer with this status.
    Status(StatusReply),
    /// Answer with this error, shaped for the protocol.
    Error(ApiError),
    /// Serve normally, degrading the body.
    Stream(StreamFault),
}

impl Fault {
    /// What this fault does to a request of `protocol`.
    pub(crate) fn plan(self, protocol: Protocol) -> Plan {
        match self {
            Fault::Status {
                status,
                body,
                retry_after,
                retry_after_ms,
            } => Plan::Status(StatusReply {
                status,
                body,
                retry_after,
                retry_after_ms,
            }),
            Fault::DelayHeaders(delay) => Plan::Delay(delay),
            Fault::ResetBeforeHeaders => Plan::Reset,
            Fault::NeverAnswer => Plan::Hang,
            Fault::SlowFirstToken(delay) => Plan::Stream(StreamFault::SlowFirst(delay)),
            Fault::CutStream { after_events } => Plan::Stream(StreamFault::Cut(after_events)),
            Fault::StallStream { after_events } => Plan::Stream(StreamFault::Stall(after_events)),
            Fault::MalformedChunk { after_events } => {
                Plan::Stream(StreamFault::Malformed(after_events))
            }
            Fault::NoDone => Plan::Stream(StreamFault::NoDone),
            Fault::ContextLengthExceeded => {
                Plan::Error(ApiError::context_length_exceeded(protocol))
            }
            Fault::ContentPolicy => Plan::Error(ApiError::content_policy(protocol)),
        }
    }
}
