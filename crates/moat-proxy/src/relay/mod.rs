//! Relaying the upstream's answer: buffered bodies and SSE streams, passed through byte for byte when
//! protocols match and translated when they differ, with usage observed on the side.
//!
//! `hold.rs` holds a stream back until its first token when the request's criticality asks for
//! one in time, so that a slow start can still fail over. `meter.rs` estimates a stream's output
//! as it goes, for a stream whose budget reservation is not a true upper bound.

mod hold;
mod meter;

pub use hold::PendingStream;

use crate::error::{json_response, GatewayError};
use crate::forward::Mode;
use crate::pipeline::Endpoint;
use crate::telemetry::RequestRecord;
use crate::upstream::{error_chain, Operation, Provider};
use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{header, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use moat_core::Protocol;
use moat_policy::budget::BudgetRefusal;
use moat_protocol::embeddings;
use moat_protocol::sse::{SseDecoder, SseEvent, DONE};
use moat_protocol::translate::{
    self, AnthropicToOpenAiStream, AnthropicToResponsesStream, OpenAiToAnthropicStream,
    ResponsesEcho,
};
use moat_protocol::usage::{AnswerKind, StreamKind, Usage, UsageObserver};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Largest upstream body read into memory for a non-streamed answer.
const MAX_UPSTREAM_BODY: usize = 64 << 20;

/// What the relay needs to know about the attempt that answered.
pub struct RelayContext {
    /// The endpoint the client called.
    pub endpoint: Endpoint,
    /// How the request reached the target.
    pub mode: Mode,
    /// The provider that answered.
    pub provider: Arc<Provider>,
    /// The provider's model name, reported as the model that answered.
    pub target_model: Arc<str>,
    /// Unix seconds, for translated `created` fields.
    pub created: i64,
    /// Whether the client asked for the usage chunk of an OpenAI stream.
    pub client_wants_usage: bool,
    /// Whether the client asked for a structured output (translated refusals take its shape).
    pub structured_output: bool,
    /// What a Responses answer translated from Anthropic repeats of its request.
    pub echo: Option<ResponsesEcho>,
    /// Whether the client asked for base64 embeddings.
    pub wants_base64: bool,
    /// How often a silent stream gets a keep-alive comment.
    pub keepalive: Duration,
    /// Longest silence within the answer (the criticality's `stream_idle`, else the provider's).
    pub idle: Duration,
    /// When the whole request must be over, and the limit that set it (for the message).
    pub deadline: Option<(Instant, Duration)>,
}

/// Reads an upstream error response into a `GatewayError` that keeps its status and body, the
/// body's secrets masked (an upstream may echo the key moat sent it). A 401 or 403 means the
/// provider refused moat's own credentials: logged as a warning and answered as a 502
/// `upstream_auth_failed`, never as the client's key being wrong.
pub async fn upstream_failure(
    response: http::Response<Incoming>,
    provider: &Provider,
) -> GatewayError {
    let status = response.status().as_u16();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let body = read_all(response, provider.idle_timeout, 1 << 20, None)
        .await
        .unwrap_or_default();
    let body = match moat_protocol::errors::mask_error_body(&body, &provider.secrets()) {
        Some(masked) => Bytes::from(masked),
        None => body,
    };
    if matches!(status, 401 | 403) {
        let message = moat_protocol::errors::parse_error_body(&body);
        let message = message
            .pointer("/error/message")
            .or_else(|| message.get("message"))
            .map_or_else(|| message.to_string(), ToString::to_string);
        let message: String = message.chars().take(300).collect();
        tracing::warn!(
            provider = %provider.name,
            status,
            upstream_message = %message,
            "the provider refused moat's credentials: check this provider's api_key and headers"
        );
        return GatewayError::UpstreamAuth {
            provider: provider.name.to_string(),
            status,
        };
    }
    GatewayError::UpstreamStatus {
        provider: provider.name.to_string(),
        status,
        body,
        protocol: provider.kind,
        retry_after,
    }
}

/// Reads a whole answer, meters it and translates it if needed. Failures here happen before the
/// client saw a byte, so the caller may still fail over.
pub async fn buffered(
    response: http::Response<Incoming>,
    ctx: RelayContext,
    record: &mut RequestRecord,
) -> Result<Response, GatewayError> {
    let status = response.status();
    let until = ctx.deadline.map(|(at, _)| at);
    let body = read_all(response, ctx.idle, MAX_UPSTREAM_BODY, until).await?;
    let not_json = |e: serde_json::Error| GatewayError::UpstreamUnavailable {
        message: format!(
            "upstream {} sent a body that is not JSON: {e}",
            ctx.provider.name
        ),
        timeout: false,
    };
    let translated = |v: Value| Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
    let kind = answer_kind(ctx.endpoint, ctx.provider.kind);
    let (usage, out) = match ctx.mode {
        Mode::Passthrough(Operation::Embeddings) if ctx.wants_base64 => {
            let parsed: Value = serde_json::from_slice(&body).map_err(not_json)?;
            let usage = usage_of(kind, &parsed);
            (
                usage,
                embeddings::floats_to_base64(parsed).map_or(body, translated),
            )
        }
        // Same protocol: the answer goes back byte for byte; only its usage fields are read.
        Mode::Passthrough(_) | Mode::EstimateTokens => {
            (Usage::from_answer(kind, &body).map_err(not_json)?, body)
        }
        Mode::ChatViaMessages => {
            let parsed: Value = serde_json::from_slice(&body).map_err(not_json)?;
            let usage = usage_of(kind, &parsed);
            let v = translate::anthropic_to_openai_chat_response(
                &parsed,
                &ctx.target_model,
                ctx.created,
                ctx.structured_output,
            )?;
            (usage, translated(v))
        }
        Mode::ResponsesViaMessages => {
            let parsed: Value = serde_json::from_slice(&body).map_err(not_json)?;
            let echo = ctx.echo.clone().unwrap_or_default();
            let v = translate::anthropic_to_responses_response(
                &parsed,
                &echo,
                &ctx.target_model,
                ctx.created,
            )?;
            (usage_of(kind, &parsed), translated(v))
        }
        Mode::MessagesViaChat => {
            let parsed: Value = serde_json::from_slice(&body).map_err(not_json)?;
            let usage = usage_of(kind, &parsed);
            (
                usage,
                translated(translate::openai_chat_to_anthropic_response(
                    &parsed,
                    &ctx.target_model,
                )?),
            )
        }
    };
    record.audit_input.response_body = Some(out.clone());
    record.finish(status.as_u16(), usage, None);
    let mut response = Response::new(Body::from(out));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answered_by(&mut response, &ctx);
    Ok(response)
}

/// Answers an Anthropic token count for a target that cannot count: an estimate
/// ([`moat_protocol::usage::estimate_input_tokens`]), labelled as one in `x-moat-estimate`.
pub fn estimated_token_count(body: &Value, record: &mut RequestRecord) -> Response {
    let tokens = moat_protocol::usage::estimate_input_tokens(body);
    record.finish(
        200,
        Some(Usage {
            input_tokens: tokens,
            ..Usage::default()
        }),
        None,
    );
    let mut response = json_response(StatusCode::OK, &json!({ "input_tokens": tokens }));
    response
        .headers_mut()
        .insert("x-moat-estimate", HeaderValue::from_static("true"));
    response
}

/// Where an answer to `endpoint` from a provider of `kind` keeps its usage.
fn answer_kind(endpoint: Endpoint, kind: Protocol) -> AnswerKind {
    match (endpoint, kind) {
        (Endpoint::Embeddings, _) => AnswerKind::OpenAiEmbeddings,
        (Endpoint::Responses, Protocol::OpenAi) => AnswerKind::OpenAiResponses,
        (Endpoint::CountTokens, _) => AnswerKind::AnthropicCountTokens,
        (_, Protocol::OpenAi) => AnswerKind::OpenAiChat,
        (_, Protocol::Anthropic) => AnswerKind::Anthropic,
    }
}

/// The usage of an answer already parsed into a tree (translation needed the tree anyway).
fn usage_of(kind: AnswerKind, body: &Value) -> Option<Usage> {
    match kind {
        AnswerKind::OpenAiChat => Usage::from_openai_chat(body),
        AnswerKind::OpenAiEmbeddings => Usage::from_openai_embeddings(body),
        AnswerKind::OpenAiResponses => Usage::from_openai_responses(body),
        AnswerKind::Anthropic => body.get("usage").and_then(Usage::from_anthropic),
        AnswerKind::AnthropicCountTokens => {
            body.get("input_tokens")
                .and_then(Value::as_u64)
                .map(|n| Usage {
                    input_tokens: n,
                    ..Usage::default()
                })
        }
    }
}

/// Reads a whole body within `limit` bytes, each chunk within `idle` of the last and all of it
/// before `until`.
async fn read_all(
    response: http::Response<Incoming>,
    idle: Duration,
    limit: usize,
    until: Option<Instant>,
) -> Result<Bytes, GatewayError> {
    let mut stream = response.into_body().into_data_stream();
    let mut buf = BytesMut::new();
    loop {
        let next = Instant::now() + idle;
        let at = until.map_or(next, |u| u.min(next));
        match tokio::time::timeout_at(at, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(GatewayError::UpstreamUnavailable {
                        message: format!("upstream body larger than {limit} bytes"),
                        timeout: false,
                    });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Some(Err(e))) => {
                return Err(GatewayError::UpstreamUnavailable {
                    message: format!("upstream body failed: {}", error_chain(&e)),
                    timeout: false,
                })
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(_) if at < next => {
                return Err(GatewayError::UpstreamUnavailable {
                    message: "upstream body not received within the request's time limit".into(),
                    timeout: true,
                })
            }
            Err(_) => {
                return Err(GatewayError::UpstreamUnavailable {
                    message: format!("upstream body stalled for {} ms", idle.as_millis()),
                    timeout: true,
                })
            }
        }
    }
}

fn answered_by(response: &mut Response, ctx: &RelayContext) {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ctx.provider.name) {
        headers.insert("x-moat-provider", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.target_model) {
        headers.insert("x-moat-model", v);
    }
}

/// What a stream does with each upstream event.
enum Shape {
    /// Same protocol: forward each event's original bytes.
    Raw,
    /// Same protocol, OpenAI chat, usage forced on by moat: forward all but the usage-only chunk.
    StripUsage,
    /// Anthropic events in, OpenAI chunks out.
    ToOpenAi(Box<AnthropicToOpenAiStream>),
    /// OpenAI chunks in, Anthropic events out.
    ToAnthropic(Box<OpenAiToAnthropicStream>),
    /// Anthropic events in, OpenAI Responses events out.
    ToResponses(Box<AnthropicToResponsesStream>),
}

type ByteStream = Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

struct Relay {
    upstream: ByteStream,
    decoder: SseDecoder,
    observer: UsageObserver,
    upstream_kind: StreamKind,
    client: Client,
    shape: Shape,
    out: VecDeque<Bytes>,
    idle: Duration,
    keepalive: Duration,
    silent: Duration,
    deadline: Option<(Instant, Duration)>,
    finished: bool,
    error: Option<&'static str>,
    /// While the stream is held for its first token: what the upstream has sent of it so far.
    held: Option<hold::Held>,
    /// Whether each content delta's estimated output must be covered by the budget hold.
    metering: Metering,
    /// Estimated output tokens forwarded so far (counted while metering or undecided).
    output_estimate: u64,
    /// What the client received, for the audit record (when the audit log keeps bodies).
    capture: Option<crate::audit::Capture>,
    /// Whether the record has been finished (settled and handed to the audit log).
    closed: bool,
    record: RequestRecord,
}

/// Whether a stream is metered against its budget hold, decided when the record (and the
/// settlement on it) joins the relay.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Metering {
    /// Held for its first token, record not yet attached: estimated, not yet covered.
    Undecided,
    On,
    Off,
}

/// Whose failure ends a stream early, which picks the error event's type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The upstream broke, stalled, or sent something unreadable.
    Upstream,
    /// A budget cannot pay for more output.
    Budget,
    /// The audit log did not commit the answer's record in time (`sync` durability).
    Audit,
}

/// The client's side of a stream: which terminator and error event it expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
}

/// The relay of a stream whose response headers arrived, before anything went to the client.
fn relay(response: http::Response<Incoming>, ctx: &RelayContext) -> Relay {
    let (upstream_kind, client, shape) = match ctx.mode {
        Mode::Passthrough(Operation::Responses) => (
            StreamKind::OpenAiResponses,
            Client::OpenAiResponses,
            Shape::Raw,
        ),
        Mode::Passthrough(Operation::Messages) => {
            (StreamKind::Anthropic, Client::Anthropic, Shape::Raw)
        }
        Mode::Passthrough(_) if ctx.client_wants_usage => {
            (StreamKind::OpenAiChat, Client::OpenAiChat, Shape::Raw)
        }
        Mode::Passthrough(_) | Mode::EstimateTokens => (
            StreamKind::OpenAiChat,
            Client::OpenAiChat,
            Shape::StripUsage,
        ),
        Mode::ChatViaMessages => (
            StreamKind::Anthropic,
            Client::OpenAiChat,
            Shape::ToOpenAi(Box::new(
                AnthropicToOpenAiStream::new(
                    &ctx.target_model,
                    ctx.created,
                    ctx.client_wants_usage,
                )
                .structured_output(ctx.structured_output),
            )),
        ),
        Mode::ResponsesViaMessages => (
            StreamKind::Anthropic,
            Client::OpenAiResponses,
            Shape::ToResponses(Box::new(AnthropicToResponsesStream::new(
                ctx.echo.clone().unwrap_or_default(),
                &ctx.target_model,
                ctx.created,
            ))),
        ),
        Mode::MessagesViaChat => (
            StreamKind::OpenAiChat,
            Client::Anthropic,
            Shape::ToAnthropic(Box::new(OpenAiToAnthropicStream::new(&ctx.target_model))),
        ),
    };
    Relay {
        upstream: Box::pin(response.into_body().into_data_stream()),
        decoder: SseDecoder::new(),
        observer: UsageObserver::default(),
        upstream_kind,
        client,
        shape,
        out: VecDeque::new(),
        idle: ctx.idle,
        keepalive: ctx.keepalive,
        silent: Duration::ZERO,
        deadline: ctx.deadline,
        finished: false,
        error: None,
        held: None,
        metering: Metering::Undecided,
        output_estimate: 0,
        capture: None,
        closed: false,
        record: RequestRecord::detached(),
    }
}

/// The client's response for a relay: status, SSE headers, who answered, and the relay as body,
/// which streams the upstream's answer as it arrives. Once the first byte has gone out there is no
/// failing over: an upstream failure becomes the client protocol's error event, never a clean end
/// over a truncated answer.
fn respond(relay: Relay, status: StatusCode, ctx: &RelayContext) -> Response {
    let body = futures_util::stream::unfold(relay, |mut relay| async move {
        let next = relay.next_frame().await?;
        Some((Ok::<_, std::convert::Infallible>(next), relay))
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    answered_by(&mut response, ctx);
    response
}

impl Relay {
    /// The next bytes for the client, or `None` when the stream is over; what goes out is also
    /// captured for the audit record when the log keeps bodies.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.capture.is_none() && crate::audit::keeps_bodies(&self.record) {
            self.capture = Some(crate::audit::Capture::default());
        }
        let frame = self.produce_frame().await;
        if let (Some(f), Some(c)) = (&frame, self.capture.as_mut()) {
            c.push(f);
        }
        frame
    }

    async fn produce_frame(&mut self) -> Option<Bytes> {
        loop {
            if self.finished && !self.closed {
                self.close().await;
            }
            // In `sync` durability the answer's last frames (its terminator among them) wait
            // for the record's commit: a client that saw the end of its answer has its record.
            let hold_tail = !self.closed && self.observer.completed() && self.audit_is_sync();
            if !hold_tail {
                // Everything one upstream read produced goes out as one body chunk: one write
                // to the client instead of one per event.
                match self.out.len() {
                    0 => {}
                    1 => return self.out.pop_front(),
                    _ => {
                        let mut joined =
                            BytesMut::with_capacity(self.out.iter().map(Bytes::len).sum());
                        for frame in self.out.drain(..) {
                            joined.extend_from_slice(&frame);
                        }
                        return Some(joined.freeze());
                    }
                }
            }
            if self.finished {
                return None;
            }
            self.pull().await;
        }
    }

    /// The answer is over: settles its usage, limits and budget and writes its audit record
    /// (with what the client received, the frames still to go included), waiting for the
    /// commit in `sync` durability.
    async fn close(&mut self) {
        self.closed = true;
        let usage = self.observer.usage();
        if let Some(settlement) = self.record.settlement.as_mut() {
            // Usage is final once the answer's stop reason (Anthropic's and Responses' usage
            // ride with it, OpenAI's usage chunk follows it) or its end was seen.
            let ended = self.observer.completed() || self.observer.stop_reason().is_some();
            settlement.final_usage(usage.is_some() && ended);
        }
        if let Some(mut c) = self.capture.take() {
            for frame in &self.out {
                c.push(frame);
            }
            c.finish_into(&mut self.record.audit_input);
        }
        self.record.finish(200, usage, self.error);
        if let (Some(ack), Some(log)) = (self.record.audit_ack.take(), self.record.audit.clone()) {
            if let Err(e) = log
                .committed(ack)
                .await
                .map_err(crate::error::GatewayError::from)
            {
                // The answer's last frames (its terminator) were held for the commit: the
                // client gets the protocol's error event instead, never a clean end.
                tracing::error!(request_id = %self.record.request_id, error = %e, "stream ended without its terminator: its audit record was not committed");
                self.out.clear();
                let event = self.error_event(Failure::Audit, &e.to_string());
                self.out.push_back(event);
            }
        }
    }

    fn audit_is_sync(&self) -> bool {
        self.record
            .audit
            .as_ref()
            .is_some_and(|a| a.config().durability == moat_config::Durability::Sync)
    }

    /// Waits for upstream bytes, sending keep-alive comments through long silences, and turns what
    /// arrives into client frames.
    async fn pull(&mut self) {
        let mut wait = self.keepalive.min(self.idle.saturating_sub(self.silent));
        if let Some((at, total)) = self.deadline {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let message = format!(
                    "request exceeded its time limit of {} ms mid-stream",
                    total.as_millis()
                );
                return self.fail("upstream_stream_deadline", &message);
            }
            wait = wait.min(left);
        }
        match tokio::time::timeout(wait, self.upstream.next()).await {
            Ok(Some(Ok(chunk))) => {
                self.silent = Duration::ZERO;
                self.on_bytes(&chunk);
            }
            Ok(Some(Err(e))) => {
                let message = format!("upstream stream failed: {}", error_chain(&e));
                self.fail("upstream_stream_error", &message);
            }
            Ok(None) => self.on_end(),
            Err(_) if self.deadline.is_some_and(|(at, _)| Instant::now() >= at) => {
                // The next pull reports it.
            }
            Err(_) => {
                self.silent += wait;
                if self.silent >= self.idle {
                    let message =
                        format!("upstream stream stalled for {} ms", self.idle.as_millis());
                    self.fail("upstream_stream_idle", &message);
                } else {
                    self.out.push_back(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
        }
    }

    fn on_bytes(&mut self, chunk: &[u8]) {
        self.decoder.push(chunk);
        while let Some(event) = self.decoder.next_event() {
            match event {
                Ok(event) => self.on_event(&event),
                Err(e) => {
                    return self.fail(
                        "upstream_stream_malformed",
                        &format!("upstream stream unreadable: {e}"),
                    )
                }
            }
            if self.finished {
                return;
            }
        }
    }

    fn on_event(&mut self, event: &SseEvent) {
        self.observer.observe(self.upstream_kind, event);
        if let Some(held) = &mut self.held {
            held.observe(self.upstream_kind, event);
        }
        if self.metering != Metering::Off {
            let tokens = meter::content_tokens(self.upstream_kind, event);
            if tokens > 0 {
                let total = self.output_estimate.saturating_add(tokens);
                if let (Metering::On, Some(s)) = (self.metering, &mut self.record.settlement) {
                    if let Err(refusal) = s.cover_output(total) {
                        // Cut before this delta goes out: what was forwarded stays within the
                        // hold, and the hold within the budget.
                        return self.cut(&refusal);
                    }
                }
                self.output_estimate = total;
            }
        }
        let passthrough = matches!(self.shape, Shape::Raw | Shape::StripUsage);
        if passthrough && !event.is_json_or_done() {
            // Forwarded raw, a broken event would make the client's SDK fail on a parse error;
            // it ends the stream the way the translators end it.
            return self.fail(
                "upstream_stream_malformed",
                "upstream stream sent an event that is not JSON",
            );
        }
        let frames = match &mut self.shape {
            Shape::Raw => Ok(vec![event.raw.clone()]),
            Shape::StripUsage if moat_protocol::usage::is_usage_only_chunk(&event.data) => {
                Ok(vec![])
            }
            Shape::StripUsage => Ok(vec![event.raw.clone()]),
            Shape::ToOpenAi(t) => t.on_event(event),
            Shape::ToAnthropic(t) => t.on_event(event),
            Shape::ToResponses(t) => t.on_event(event),
        };
        match frames {
            Ok(frames) => self.out.extend(frames),
            Err(e) => self.fail(
                "upstream_stream_malformed",
                &format!("upstream stream could not be translated: {e}"),
            ),
        }
    }

    /// The upstream closed the connection: finish cleanly only if the answer was complete.
    fn on_end(&mut self) {
        if let Some(event) = self.decoder.finish() {
            self.on_event(&event);
        }
        if self.finished {
            return;
        }
        self.finished = true;
        let frames = match &mut self.shape {
            Shape::ToOpenAi(t) => t.finish(),
            Shape::ToAnthropic(t) => t.finish(),
            Shape::ToResponses(t) => t.finish(),
            Shape::Raw | Shape::StripUsage => {
                if self.observer.completed() {
                    vec![]
                } else if self.observer.stop_reason().is_some()
                    && self.client != Client::OpenAiResponses
                {
                    // The answer is complete but its terminator went missing: finish it here.
                    self.error = Some("upstream_stream_unterminated");
                    vec![self.terminator()]
                } else {
                    self.error = Some("upstream_stream_truncated");
                    vec![self.error_event(
                        Failure::Upstream,
                        "upstream stream ended before the answer was complete",
                    )]
                }
            }
        };
        self.out.extend(frames);
    }

    /// Takes over the request's record once the stream goes to the client, and decides whether
    /// the stream is metered against its budget hold (`model` answered). What a held stream
    /// sent before is covered at once; if the budget cannot cover even that, the stream is cut
    /// after it.
    fn attach(&mut self, mut record: RequestRecord, model: &str) {
        let metered = record
            .settlement
            .as_mut()
            .is_some_and(|s| s.meter_stream(model));
        self.record = record;
        self.metering = if metered { Metering::On } else { Metering::Off };
        if !metered || self.output_estimate == 0 {
            return;
        }
        let Some(s) = self.record.settlement.as_mut() else {
            return;
        };
        if let Err(refusal) = s.cover_output(self.output_estimate) {
            // Already in the client's buffer: settled with the rest, up to what is held.
            s.streamed_output(self.output_estimate);
            if !self.finished {
                self.cut(&refusal);
            }
        }
    }

    /// Ends a metered stream whose budget cannot pay for more output, with the client
    /// protocol's billing error event.
    fn cut(&mut self, refusal: &BudgetRefusal) {
        metrics::counter!("moat_budget_stream_cut_total").increment(1);
        tracing::warn!(
            request_id = %self.record.request_id,
            scope = %refusal.scope,
            id = %refusal.id,
            period = refusal.period.as_str(),
            estimated_output_tokens = self.output_estimate,
            "stream cut: budget exhausted mid-answer"
        );
        let message = format!("budget exhausted mid-answer: {refusal}");
        self.end_with_error(Failure::Budget, "budget_exhausted", &message);
    }

    fn fail(&mut self, kind: &'static str, message: &str) {
        if self.held.is_none() {
            // A held stream's failure is reported by the failover that follows it.
            tracing::warn!(request_id = %self.record.request_id, error = kind, message, "stream failed");
        }
        self.end_with_error(Failure::Upstream, kind, message);
    }

    fn end_with_error(&mut self, failure: Failure, kind: &'static str, message: &str) {
        self.error = Some(kind);
        let event = self.error_event(failure, message);
        self.out.push_back(event);
        self.finished = true;
    }

    fn terminator(&self) -> Bytes {
        match self.client {
            Client::OpenAiChat => Bytes::from_static(DONE),
            Client::Anthropic => {
                moat_protocol::sse::encode_event(Some("message_stop"), r#"{"type":"message_stop"}"#)
            }
            Client::OpenAiResponses => Bytes::new(),
        }
    }

    /// The client protocol's in-stream error event: the types and codes its non-stream error
    /// of the same cause has (`insufficient_quota` / `billing_error` for a budget).
    fn error_event(&self, failure: Failure, message: &str) -> Bytes {
        let (openai_type, openai_code, anthropic_type) = match failure {
            Failure::Upstream => ("server_error", "upstream_error", "api_error"),
            Failure::Budget => ("insufficient_quota", "insufficient_quota", "billing_error"),
            Failure::Audit => ("server_error", "audit_unavailable", "api_error"),
        };
        match self.client {
            Client::OpenAiChat => {
                let e = json!({"error": {"message": message, "type": openai_type, "param": null, "code": openai_code}});
                moat_protocol::sse::encode_data(&e.to_string())
            }
            Client::OpenAiResponses => {
                let e = json!({"type": "error", "code": openai_code, "message": message, "param": null});
                moat_protocol::sse::encode_event(Some("error"), &e.to_string())
            }
            Client::Anthropic => {
                let e =
                    json!({"type": "error", "error": {"type": anthropic_type, "message": message}});
                moat_protocol::sse::encode_event(Some("error"), &e.to_string())
            }
        }
    }
}
