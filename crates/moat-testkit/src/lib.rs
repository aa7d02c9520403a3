//! A simulated OpenAI and Anthropic provider on a real socket, with fault injection.
//!
//! `moat demo` runs it as its built-in upstream and every gateway test uses it as the fake
//! provider. It speaks the providers' wire formats closely enough for the official SDKs:
//!
//! | route | protocol |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI Chat Completions, streamed or not, `n`, tools, structured output |
//! | `POST /v1/responses` | OpenAI Responses, typed event stream, function calls, structured output |
//! | `POST /v1/embeddings` | OpenAI embeddings, float or base64 |
//! | `GET /v1/models`, `GET /v1/models/{id}` | one shape that satisfies both SDKs |
//! | `POST /v1/messages` | Anthropic Messages, streamed or not, tools, thinking, structured output |
//! | `POST /v1/messages/count_tokens` | Anthropic token counting |
//!
//! # What the simulated model says
//! Replies are deterministic: the same request always gets the same answer (ids included; only
//! `created` timestamps follow the clock). A text reply is `Simulated reply from MODEL:` followed by
//! words from a fixed list chosen by a stable hash of the model and the last user text, 24 words in
//! all. Each word is one output token, and `max_tokens` (or `max_completion_tokens`,
//! `max_output_tokens`) cuts the reply to exactly that many words, with the protocol's "length" stop
//! reason. Input tokens are the whitespace-separated words of all text in the request's messages
//! (system prompt, instructions and tool results included).
//!
//! When the request offers function tools, does not forbid them, and its last turn is not a tool
//! result, the reply is one call to the named tool (or the first one) whose arguments set every
//! `required` property of the schema to a value of its type. A tool call costs one output token per
//! streamed argument fragment; if `max_tokens` is smaller than that, the sim answers with truncated
//! text instead. Anthropic requests with `thinking` enabled (or adaptive) get a short deterministic
//! thinking block with a signature first; its words count as output tokens and against
//! `max_tokens`, as Anthropic counts them. The sim is stateless: a Responses `previous_response_id`
//! gets a 400 `previous_response_not_found`.
//!
//! ## Structured output
//! A request that asks for JSON gets JSON as its text (chat `message.content`, Responses
//! `output_text`, the Anthropic text block) instead of words:
//!
//! | protocol | asked with |
//! |---|---|
//! | Chat Completions | `response_format: {type: "json_schema", json_schema: {name, schema}}` or `{type: "json_object"}` |
//! | Responses | `text: {format: {type: "json_schema", name, schema}}` (flat) or `{type: "json_object"}` |
//! | Messages | `output_config: {format: {type: "json_schema", schema}}`, or the legacy `output_format` |
//!
//! `json_object` gets `{"reply": TEXT}` with the usual text reply. A schema gets a value valid for
//! it, built deterministically by the same generator as tool arguments, but with every listed
//! property (not only the required ones) and strings drawn from the word list: `const` and `enum`
//! give their first value, `$ref` follows `#/$defs/...` and `#/definitions/...`, `anyOf`/`oneOf`
//! their first non-null branch, `allOf` merges its objects, a list of types its first non-null
//! one; arrays get one item (or `minItems`), numbers 1 unless bounds exclude it, strings honour
//! `minLength`/`maxLength` and the common `format`s (a fixed date-time, email, uuid...). Depth and
//! size are bounded, so recursive or hostile schemas end. Tool calls still take precedence when
//! tools are offered.
//!
//! The JSON streams in token-sized pieces (runs of word characters and of punctuation, as
//! `{"`, `city`, `":"`, `oslo`, `"}`), each one output token; `max_tokens` cuts it like any reply,
//! leaving invalid JSON with the length stop reason, as real providers do.
//!
//! When the last user text contains `[sim:refuse]`, a structured request is refused with
//! "I'm sorry, I can't help with that." (one token per word): Chat Completions sends it as
//! `message.refusal` with `content: null` (streamed as `delta.refusal`) and finish reason `stop`;
//! Responses as a message whose content part is `{type: "refusal", refusal}` (streamed as
//! `response.refusal.delta`/`.done`); Anthropic as a text block with `stop_reason: "refusal"`.
//! Without a structured format the marker is just text.
//!
//! # Faults
//! [`SimUpstream::push_fault`] queues a [`Fault`] for the next request on any route;
//! [`SimUpstream::push_fault_for_model`] for the next request whose body names that model. A request
//! takes its model's fault first and otherwise the oldest queued one. Every request consumes at most
//! one fault, whatever its route, and before authentication or validation, because a fault stands for
//! what the provider does to the next request it receives.
//!
//! [`SimUpstream::set_outage`] stands for a provider that is down: until it is cleared with
//! `set_outage(None)`, every request on every route gets that fault, ahead of authentication and of
//! the queues, which it leaves untouched for after the recovery. Requests met by a fault, outage
//! included, are still recorded and counted ([`SimUpstream::request_count_for_model`]).
//!
//! Stream faults count SSE events from the start of the stream (the `[DONE]` line included) and never
//! reach the final event, so a cut stream never looks complete. The event `MalformedChunk` injects is
//! named like the stream's deltas (`content_block_delta`, `response.output_text.delta`; unnamed on
//! OpenAI chat) so that clients dispatching on event names do try to parse it.
//!
//! On a JSON (non-stream) reply, stream faults act on the body: `SlowFirstToken` delays the body
//! after the headers, `CutStream` sends half of the body and aborts the connection, `StallStream`
//! sends half and then goes silent, `MalformedChunk` sends half of the JSON and ends the body
//! cleanly, and `NoDone` does nothing. On an error reply (a 4xx the sim produced itself) stream
//! faults have no effect. `ResetBeforeHeaders` closes with a TCP reset (`SO_LINGER` 0), so clients
//! see `ECONNRESET`; `NeverAnswer` and `StallStream` hold their connection until the client leaves
//! or the sim shuts down.

mod answer;
mod anthropic;
mod embeddings;
mod errors;
mod fault;
mod format;
mod models;
mod openai_chat;
mod playback;
mod reply;
mod request;
mod responses;
mod router;
mod schema;
mod server;
mod state;
mod structured;
mod text;
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use fault::Fault;

use server::Server;
use state::Shared;

/// How a [`SimUpstream`] listens and behaves.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Address to listen on; `None` binds `127.0.0.1:0` (a free port).
    pub listen: Option<SocketAddr>,
    /// When set, every request must carry this key: OpenAI routes as `Authorization: Bearer`,
    /// Anthropic routes as `x-api-key` or Bearer, `/v1/models` either way. Otherwise 401 in the
    /// protocol's error shape.
    pub api_key: Option<String>,
    /// Pause before each streamed word (or argument fragment); zero by default.
    pub word_delay: Duration,
}

/// One request the sim received, as it arrived.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path with the query string, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Headers, names in lower case, values lossily decoded as UTF-8; in arrival order except
    /// that repeated headers are grouped under their first occurrence.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, `Null` when it was empty or not JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running simulated provider. Dropping it stops the server; [`SimUpstream::shutdown`] also waits
/// until every connection is closed.
#[derive(Debug)]
pub struct SimUpstream {
    shared: Arc<Shared>,
    server: Server,
}

impl SimUpstream {
    /// Binds `127.0.0.1:0` and serves in a tokio task.
    pub async fn start() -> std::io::Result<SimUpstream> {
        Self::start_with(SimOptions::default()).await
    }

    /// Binds `options.listen` (default `127.0.0.1:0`) and serves in a tokio task.
    pub async fn start_with(options: SimOptions) -> std::io::Result<SimUpstream> {
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let shared = Arc::new(Shared::new(options));
        let server = Server::bind(listen, Arc::clone(&shared)).await?;
        Ok(SimUpstream { shared, server })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL for the OpenAI SDK: `http://ADDR/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    /// Base URL for the Anthropic SDK: `http://ADDR`.
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Queues a fault for the next request on any route (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.push_fault(None, fault);
    }

    /// Queues a fault for the next request whose body names `model`.
    pub fn push_fault_for_model(&self, model: &str, fault: Fault) {
        self.shared.push_fault(Some(model), fault);
    }

    /// Starts an outage: until `set_outage(None)`, every request (any route, before
    /// authentication and before queued faults, which stay queued) gets `fault`, e.g. a 503
    /// `Status` or `ResetBeforeHeaders`. `None` ends it.
    pub fn set_outage(&self, fault: Option<Fault>) {
        self.shared.set_outage(fault);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        self.shared.request_count()
    }

    /// How many requests received so far have a JSON body whose `model` is `model`, faulted ones
    /// included.
    pub fn request_count_for_model(&self, model: &str) -> usize {
        self.shared.request_count_for_model(model)
    }

    /// Stops accepting, closes every open connection (held and stalled ones included) and waits
    /// for their tasks to end.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
