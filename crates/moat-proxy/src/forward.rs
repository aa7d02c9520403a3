//! Forwarding: try the route's targets in order, translating where the target speaks the other
//! protocol, retrying and failing over (`failover.rs` holds the policy) until one answers or a
//! failure that no other attempt can help.

use crate::body::{self, BodyPeek};
use crate::error::GatewayError;
use crate::failover::{self, Class, Failover, Limits};
use crate::pipeline::Endpoint;
use crate::relay;
use crate::routing::Target;
use crate::telemetry::{upstream_error, RequestRecord};
use crate::upstream::Operation;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use moat_core::Protocol;
use moat_policy::resilience::{BreakerState, Permit, Transition};
use moat_protocol::translate;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::time::Instant;

/// One client request on its way upstream.
pub struct Exchange {
    /// The endpoint the client called.
    pub endpoint: Endpoint,
    /// The client's body as received.
    pub raw: Bytes,
    /// The body's routing fields.
    pub peek: BodyPeek,
    /// The whole body as JSON, parsed the first time a translation needs it.
    pub parsed: Option<Value>,
    /// The client's headers.
    pub headers: HeaderMap,
    /// The client's query string.
    pub query: Option<String>,
    /// Unix seconds at arrival, for `created` fields of translated responses.
    pub created: i64,
    /// Keep-alive interval for a streamed answer.
    pub keepalive: std::time::Duration,
    /// The criticality of the request's workflow (`medium` without one): it picks the timeouts.
    pub criticality: moat_config::Criticality,
    /// Retries, backoff, the retry budget and timeouts.
    pub failover: Arc<Failover>,
    /// The targets of the route's `context_fallback`, for a request too long for its model.
    pub context_plan: Option<Vec<Target>>,
}

impl Exchange {
    /// The body as a JSON tree, parsed once on first use (translation and estimates need it;
    /// passthrough does not).
    fn json(&mut self) -> Result<&Value, GatewayError> {
        let parsed = match self.parsed.take() {
            Some(v) => v,
            None => {
                serde_json::from_slice(&self.raw).map_err(|e| GatewayError::invalid_json(&e))?
            }
        };
        Ok(self.parsed.insert(parsed))
    }
}

/// How a request reaches a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Same protocol: the body goes as sent (model renamed), the answer comes back byte for byte.
    Passthrough(Operation),
    /// An OpenAI chat request to an Anthropic target.
    ChatViaMessages,
    /// An Anthropic messages request to an OpenAI-kind target.
    MessagesViaChat,
    /// An OpenAI Responses request to an Anthropic target.
    ResponsesViaMessages,
    /// An Anthropic token count for an OpenAI-kind target, which has no such endpoint: estimated here.
    EstimateTokens,
}

impl Mode {
    /// How `endpoint` reaches a target of `kind`; `None` if it cannot.
    pub fn of(endpoint: Endpoint, kind: Protocol) -> Option<Mode> {
        use Endpoint::*;
        match (endpoint, kind) {
            (ChatCompletions, Protocol::OpenAi) => {
                Some(Mode::Passthrough(Operation::ChatCompletions))
            }
            (ChatCompletions, Protocol::Anthropic) => Some(Mode::ChatViaMessages),
            (Messages, Protocol::Anthropic) => Some(Mode::Passthrough(Operation::Messages)),
            (Messages, Protocol::OpenAi) => Some(Mode::MessagesViaChat),
            (Embeddings, Protocol::OpenAi) => Some(Mode::Passthrough(Operation::Embeddings)),
            (Responses, Protocol::OpenAi) => Some(Mode::Passthrough(Operation::Responses)),
            (Responses, Protocol::Anthropic) => Some(Mode::ResponsesViaMessages),
            (CountTokens, Protocol::Anthropic) => Some(Mode::Passthrough(Operation::CountTokens)),
            (CountTokens, Protocol::OpenAi) => Some(Mode::EstimateTokens),
            (Embeddings, Protocol::Anthropic) => None,
        }
    }
}

/// Tries the targets of `plan` in order until one answers. A failure another attempt may fix
/// (unreachable, reset, timeout before the first byte, 408, 409, 429, 5xx) is retried on the same
/// target up to `failover.retries` times after a backoff that honours the upstream's
/// `retry-after`, then the next target is tried; every attempt after the first needs the retry
/// budget. A provider that refuses moat's credentials (401/403) is not retried: the next target
/// is tried at once. A target whose breaker is open is skipped. A request too long for the model's context
/// moves to the route's `context_fallback`; any other failure is answered as it is.
pub async fn forward(
    mut exchange: Exchange,
    plan: Vec<Target>,
    record: &mut RequestRecord,
) -> Result<Response, GatewayError> {
    let mut queue = usable(&exchange, plan);
    if queue.is_empty() {
        return Err(GatewayError::invalid(
            format!(
                "model '{}' has no target that serves {}: {} needs an OpenAI-kind provider",
                exchange.peek.model,
                exchange.endpoint.operation(),
                exchange.endpoint.operation()
            ),
            Some("model"),
        ));
    }
    let failover = Arc::clone(&exchange.failover);
    failover.deposit();
    let mut run = Run {
        failover: &failover,
        limits: failover.limits(exchange.criticality, record.started),
        last_error: None,
        retry_in_ms: None,
        left: None,
    };
    let mut context_plan = exchange.context_plan.take();
    while let Some((target, mode)) = queue.pop_front() {
        match run.target(&mut exchange, &target, mode, record).await {
            Step::Answered(response) => return Ok(response),
            Step::Next => run.left = Some(target),
            Step::Stop(error) => return Err(error),
            Step::TooLong(error) => {
                let larger = context_plan.take().map(|p| usable(&exchange, p));
                match larger {
                    Some(targets) if !targets.is_empty() => {
                        tracing::info!(provider = %target.provider.name, model = %target.model, "request too long for the model's context; trying its context_fallback");
                        queue = targets;
                        run.last_error = Some(error);
                        run.left = Some(target);
                    }
                    _ => return Err(error),
                }
            }
        }
    }
    Err(run.exhausted())
}

/// The targets of `plan` that can serve the exchange's endpoint, with how.
fn usable(exchange: &Exchange, plan: Vec<Target>) -> VecDeque<(Target, Mode)> {
    plan.into_iter()
        .filter_map(|t| Mode::of(exchange.endpoint, t.provider.kind).map(|m| (t, m)))
        .collect()
}

/// One request's way through its plan.
struct Run<'a> {
    failover: &'a Failover,
    limits: Limits,
    /// The last attempt's failure, answered if no target succeeds.
    last_error: Option<GatewayError>,
    /// The soonest an open breaker of a skipped target lets a probe through.
    retry_in_ms: Option<u64>,
    /// The target just left behind (failed or skipped), for the fallback count.
    left: Option<Target>,
}

/// Where a target left the request.
enum Step {
    Answered(Response),
    /// Failed or skipped: try the next target.
    Next,
    /// Too long for the model's context: only a larger model helps.
    TooLong(GatewayError),
    /// Answer this error.
    Stop(GatewayError),
}

impl Run<'_> {
    /// Attempts `target`, retrying it while that may help.
    async fn target(
        &mut self,
        exchange: &mut Exchange,
        target: &Target,
        mode: Mode,
        record: &mut RequestRecord,
    ) -> Step {
        let mut retry = 0;
        loop {
            let Ok(permit) = self.acquire(target, mode, record) else {
                return Step::Next;
            };
            if self.limits.expired() {
                return Step::Stop(self.limits.total_exceeded());
            }
            // Every attempt after the request's first is a retry or a fallback: the budget keeps
            // an outage from multiplying the load on the providers.
            if record.attempts > 0 && !self.failover.withdraw() {
                tracing::warn!(provider = %target.provider.name, model = %target.model, "retry budget exhausted; not trying further targets");
                return Step::Stop(self.exhausted());
            }
            if let Some(from) = self.left.take() {
                failover::fallback(&from, target);
            }
            record.attempts += 1;
            record.provider = Some(target.provider.name.clone());
            record.response_model = Some(target.model.clone());
            let failed = match attempt(exchange, target, mode, record, &self.limits).await {
                Ok(attempted) => {
                    failover::attempt_outcome(target, "success");
                    if let Some(t) = permit.and_then(|p| p.success(self.now())) {
                        failover::breaker_transition(target, t, record, self.now());
                    }
                    return Step::Answered(match attempted {
                        Attempted::Done(response) => response,
                        Attempted::Streaming(stream) => {
                            stream.respond(std::mem::replace(record, RequestRecord::detached()))
                        }
                    });
                }
                Err(failed) => failed,
            };
            let class = failover::classify(&failed.error);
            if class == Class::Unhonoured {
                failover::unhonoured(target, &failed.error);
                self.last_error = Some(failed.error);
                return Step::Next;
            }
            upstream_error(&target.provider.name, failed.error.kind());
            failover::attempt_outcome(target, class.label());
            match class {
                Class::Retryable | Class::NextTarget => {
                    if let Some(t) = permit.and_then(|p| p.failure(self.now())) {
                        failover::breaker_transition(target, t, record, self.now());
                    }
                }
                // The target worked; the request did not. A probe's permit, dropped unreported,
                // frees the probe for the next request.
                Class::ContextLength => return Step::TooLong(failed.error),
                Class::ContentPolicy | Class::Final | Class::Unhonoured => {
                    return Step::Stop(failed.error)
                }
            }
            tracing::info!(provider = %target.provider.name, model = %target.model, error = %failed.error, "attempt failed");
            if self.limits.expired() {
                return Step::Stop(self.limits.total_exceeded());
            }
            self.last_error = Some(failed.error);
            if class == Class::NextTarget {
                return Step::Next;
            }
            retry += 1;
            if !self.back_off(target, retry, failed.retry_after_ms).await {
                return Step::Next;
            }
        }
    }

    /// Leave from `target`'s breaker to try it: `Ok(None)` without a breaker, `Err` when it is
    /// open (the target is skipped and the time to its next probe noted). A probe let through
    /// is a transition to half-open, recorded as caused by `record`'s request.
    fn acquire<'t>(
        &mut self,
        target: &'t Target,
        mode: Mode,
        record: &RequestRecord,
    ) -> Result<Option<Permit<'t>>, ()> {
        // An estimate never reaches the provider, so it neither waits for nor feeds its breaker.
        let Some(breaker) = target
            .breaker
            .as_deref()
            .filter(|_| mode != Mode::EstimateTokens)
        else {
            return Ok(None);
        };
        match breaker.try_acquire(self.now()) {
            Ok(permit) => {
                if permit.is_probe() {
                    let half_open = Transition {
                        from: BreakerState::Open,
                        to: BreakerState::HalfOpen,
                    };
                    failover::breaker_transition(target, half_open, record, self.now());
                }
                Ok(Some(permit))
            }
            Err(open) => {
                failover::skipped(target, open.retry_in_ms);
                let soonest = self
                    .retry_in_ms
                    .map_or(open.retry_in_ms, |r| r.min(open.retry_in_ms));
                self.retry_in_ms = Some(soonest);
                Err(())
            }
        }
    }

    /// Waits before retry number `retry` of `target`; `false` when it should not be retried
    /// (retries used up, a `retry-after` longer than `max_retry_wait`, or a wait past the
    /// request's deadline), so the next target is tried at once.
    async fn back_off(&self, target: &Target, retry: u32, hint_ms: Option<u64>) -> bool {
        if retry > self.failover.retries() {
            return false;
        }
        match self.failover.delay(retry, hint_ms) {
            Some(delay) if !self.limits.would_expire(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            Some(_) => false,
            None => {
                tracing::info!(provider = %target.provider.name, retry_after_ms = hint_ms, "upstream asks for a longer wait than max_retry_wait; trying the next target");
                false
            }
        }
    }

    /// The answer when the plan ran out: the last attempt's failure, or, when no target could be
    /// tried at all, a 503 saying so.
    fn exhausted(&mut self) -> GatewayError {
        match self.last_error.take() {
            Some(error) => error,
            None => GatewayError::AllTargetsUnavailable {
                retry_in_ms: self.retry_in_ms.unwrap_or(0),
            },
        }
    }

    fn now(&self) -> i64 {
        self.failover.now_ms()
    }
}

/// An attempt that succeeded: a finished response, or a stream that takes over the request record.
enum Attempted {
    Done(Response),
    Streaming(Box<relay::PendingStream>),
}

/// A failed attempt, with the wait the upstream asked for.
struct Failed {
    error: GatewayError,
    retry_after_ms: Option<u64>,
}

impl From<GatewayError> for Failed {
    fn from(error: GatewayError) -> Self {
        Failed {
            error,
            retry_after_ms: None,
        }
    }
}

async fn attempt(
    exchange: &mut Exchange,
    target: &Target,
    mode: Mode,
    record: &mut RequestRecord,
    limits: &Limits,
) -> Result<Attempted, Failed> {
    if mode == Mode::EstimateTokens {
        return Ok(Attempted::Done(relay::estimated_token_count(
            exchange.json()?,
            record,
        )));
    }
    let (op, body) = upstream_body(exchange, target, mode)?;
    let query = match mode {
        Mode::Passthrough(_) => exchange.query.as_deref(),
        _ => None,
    };
    let provider = &target.provider;
    let timeouts = &limits.timeouts;
    let sent = Instant::now();
    let first_byte = timeouts.first_byte.unwrap_or(provider.first_byte_timeout);
    // A stream that must start within `first_token` cannot wait longer for its headers.
    let first_token = timeouts.first_token.filter(|_| exchange.peek.stream);
    let headers_by = limits.bound(sent + first_token.map_or(first_byte, |t| t.min(first_byte)));
    let criticality = exchange.criticality;
    let response = provider
        .send(op, query, body, &exchange.headers, criticality, headers_by)
        .await?;
    let status = response.status();
    if !status.is_success() {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let retry_after_ms = moat_policy::resilience::retry_after_ms(
            header("retry-after-ms"),
            header("retry-after"),
            exchange.failover.now_ms(),
        );
        return Err(Failed {
            error: relay::upstream_failure(response, provider).await,
            retry_after_ms,
        });
    }
    let is_sse = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let ctx = relay::RelayContext {
        endpoint: exchange.endpoint,
        mode,
        provider: provider.clone(),
        target_model: target.model.clone(),
        created: exchange.created,
        client_wants_usage: exchange.peek.include_usage,
        structured_output: mode == Mode::ChatViaMessages
            && translate::asks_structured_output(exchange.json()?),
        echo: match mode {
            Mode::ResponsesViaMessages => {
                Some(translate::ResponsesEcho::from_request(exchange.json()?))
            }
            _ => None,
        },
        wants_base64: exchange.peek.wants_base64,
        keepalive: exchange.keepalive,
        idle: timeouts.stream_idle.unwrap_or(provider.idle_timeout),
        deadline: limits.deadline.zip(timeouts.total),
    };
    if exchange.peek.stream && is_sse {
        let mut stream = relay::PendingStream::new(response, ctx);
        if let Some(limit) = first_token {
            stream
                .first_token(limits.bound(sent + limit), limit)
                .await?;
        }
        return Ok(Attempted::Streaming(Box::new(stream)));
    }
    Ok(relay::buffered(response, ctx, record)
        .await
        .map(Attempted::Done)?)
}

/// The upstream operation and body for `mode`.
fn upstream_body(
    exchange: &mut Exchange,
    target: &Target,
    mode: Mode,
) -> Result<(Operation, Bytes), GatewayError> {
    let (op, value) = match mode {
        Mode::Passthrough(op) => {
            // OpenAI streams are metered from their usage chunk, so moat asks for it; the relay
            // removes it again if the client had not.
            let force_usage = op == Operation::ChatCompletions && exchange.peek.stream;
            return Ok((
                op,
                body::passthrough(&exchange.raw, &exchange.peek, &target.model, force_usage),
            ));
        }
        Mode::ChatViaMessages => (
            Operation::Messages,
            translate::openai_chat_to_anthropic_request(exchange.json()?, &target.model)?,
        ),
        Mode::MessagesViaChat => (
            Operation::ChatCompletions,
            translate::anthropic_to_openai_chat_request(exchange.json()?, &target.model)?,
        ),
        Mode::ResponsesViaMessages => (
            Operation::Messages,
            translate::responses_to_anthropic_request(exchange.json()?, &target.model)?,
        ),
        Mode::EstimateTokens => return Ok((Operation::CountTokens, Bytes::new())),
    };
    let bytes =
        serde_json::to_vec(&value).map_err(|e| GatewayError::invalid(e.to_string(), None))?;
    Ok((op, Bytes::from(bytes)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn modes_cover_every_endpoint_and_kind() {
        assert_eq!(Mode::of(Endpoint::Embeddings, Protocol::Anthropic), None);
        assert_eq!(
            Mode::of(Endpoint::ChatCompletions, Protocol::Anthropic),
            Some(Mode::ChatViaMessages)
        );
        assert_eq!(
            Mode::of(Endpoint::CountTokens, Protocol::OpenAi),
            Some(Mode::EstimateTokens)
        );
        assert_eq!(
            Mode::of(Endpoint::Responses, Protocol::Anthropic),
            Some(Mode::ResponsesViaMessages)
        );
    }
}
