//! What an endpoint answers, before faults and framing: a JSON body or an SSE transcript.

use serde_json::Value;

/// A successful reply of an endpoint.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// A 200 with this JSON body.
    Json(Value),
    /// A 200 `text/event-stream` with these events.
    Stream(Transcript),
}

/// The events of one stream, the last being its terminator (`[DONE]`, `message_stop`,
/// `response.completed`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Transcript {
    pub(crate) events: Vec<SseEvent>,
    /// The `event:` name a `MalformedChunk` fault gives its broken event, so that clients which
    /// dispatch on the name try to parse it.
    pub(crate) malformed_name: Option<&'static str>,
}

impl Transcript {
    /// An empty transcript for a stream of unnamed events (OpenAI chat).
    pub(crate) fn unnamed() -> Transcript {
        Transcript::default()
    }

    /// An empty transcript whose broken events will be named `malformed_name`.
    pub(crate) fn named(malformed_name: &'static str) -> Transcript {
        Transcript {
            events: Vec::new(),
            malformed_name: Some(malformed_name),
        }
    }

    /// Appends an event.
    pub(crate) fn push(&mut self, event: SseEvent) {
        self.events.push(event);
    }
}

/// One server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` line, if any.
    pub(crate) name: Option<&'static str>,
    /// The `data:` payload, on one line.
    pub(crate) data: String,
    /// Whether it carries a word or fragment, so `word_delay` precedes it.
    pub(crate) paced: bool,
}

impl SseEvent {
    /// An unnamed event with a JSON payload.
    pub(crate) fn data(value: &Value) -> SseEvent {
        SseEvent {
            name: None,
            data: value.to_string(),
            paced: false,
        }
    }

    /// A named event with a JSON payload.
    pub(crate) fn named(name: &'static str, value: &Value) -> SseEvent {
        SseEvent {
            name: Some(name),
            ..SseEvent::data(value)
        }
    }

    /// OpenAI's `data: [DONE]` terminator.
    pub(crate) fn done() -> SseEvent {
        SseEvent {
            name: None,
            data: "[DONE]".to_owned(),
            paced: false,
        }
    }

    /// The broken event a `MalformedChunk` fault injects.
    pub(crate) fn malformed(name: Option<&'static str>) -> SseEvent {
        SseEvent {
            name,
            data: "{not json".to_owned(),
            paced: false,
        }
    }

    /// Marks the event as carrying a word, so `word_delay` precedes it.
    pub(crate) fn paced(self) -> SseEvent {
        SseEvent {
            paced: true,
            ..self
        }
    }

    /// The event on the wire: optional `event:` line, `data:` line, blank line.
    pub(crate) fn encode(&self) -> String {
        match self.name {
            Some(name) => format!("event: {name}\ndata: {}\n\n", self.data),
            None => format!("data: {}\n\n", self.data),
        }
    }
}
