//! Redaction of a streamed answer kept as its SSE transcript, across events.
//!
//! A model streams its text in fragments of a few characters, one event each, so an e-mail
//! address or card number is usually split across events and no single event holds a match.
//! The content fragments of each channel (a choice's content, a tool call's arguments, a content
//! block's text) are assembled in order, the assembled text is searched, and each finding is cut
//! out of the fragments it spans: the marker goes where the finding starts, the rest of it is
//! removed from the later fragments. The transcript keeps its events, their order and every
//! other field (each redacted as any JSON is: strings, keys, numbers), so the auditor reads the
//! same stream the client received, and assembling the redacted stream's fragments gives exactly
//! the redacted assembled text.

use moat_protocol::sse::SseDecoder;
use serde_json::Value;

use super::{find, redact, redact_json, Finding};

/// `text` redacted across events if it is an SSE transcript (its first line is an SSE field or
/// comment and at least one event carries data); `None` if it is not one.
pub fn redact_sse(text: &str) -> Option<String> {
    let first = text.trim_start_matches(['\n', '\r']).lines().next()?;
    if !["data:", "event:", ":", "id:", "retry:"]
        .iter()
        .any(|p| first.starts_with(p))
    {
        return None;
    }
    let mut events = decode(text);
    if events.is_empty() {
        return None;
    }
    let mut fragments: Vec<Fragment> = Vec::new();
    for (at, event) in events.iter().enumerate() {
        if let Data::Json(value) = &event.data {
            fragments_of(value, at, &mut fragments);
        }
    }
    for channel in channels(&fragments) {
        cut_findings(&mut events, &fragments, &channel);
    }
    let mut out = String::with_capacity(text.len());
    for event in events {
        if let Some(name) = &event.name {
            out.push_str("event: ");
            out.push_str(&redact(name).0);
            out.push('\n');
        }
        let data = match event.data {
            Data::Json(value) => redact_json(value).to_string(),
            Data::Text(text) => redact(&text).0,
        };
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    Some(out)
}

struct Event {
    name: Option<String>,
    data: Data,
}

enum Data {
    Json(Value),
    /// Not JSON (`[DONE]`, or JSON nested too deeply for a tree): redacted as text.
    Text(String),
}

/// One content fragment: which channel it belongs to, where it sits (event, JSON pointer), its
/// text.
struct Fragment {
    channel: String,
    event: usize,
    pointer: String,
    text: String,
}

fn decode(text: &str) -> Vec<Event> {
    let mut decoder = SseDecoder::with_max_event_size(usize::MAX);
    decoder.push(text.as_bytes());
    let mut out = Vec::new();
    let mut take = |e: moat_protocol::sse::SseEvent| {
        let data = match serde_json::from_str::<Value>(&e.data) {
            Ok(value) => Data::Json(value),
            Err(_) => Data::Text(e.data),
        };
        out.push(Event {
            name: e.event,
            data,
        });
    };
    while let Some(next) = decoder.next_event() {
        if let Ok(event) = next {
            take(event);
        }
    }
    while let Some(event) = decoder.finish() {
        take(event);
    }
    out
}

/// The content fragments of one event, by protocol: OpenAI chat chunks (and completions),
/// Anthropic `content_block_delta`, OpenAI Responses `*.delta`.
fn fragments_of(value: &Value, event: usize, out: &mut Vec<Fragment>) {
    let mut push = |channel: String, pointer: String, text: Option<&Value>| {
        if let Some(Value::String(text)) = text {
            out.push(Fragment {
                channel,
                event,
                pointer,
                text: text.clone(),
            });
        }
    };
    if let Some(Value::Array(choices)) = value.get("choices") {
        for (at, choice) in choices.iter().enumerate() {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(at as u64);
            push(
                format!("choices[{index}].text"),
                format!("/choices/{at}/text"),
                choice.get("text"),
            );
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            for field in ["content", "reasoning_content", "reasoning", "refusal"] {
                push(
                    format!("choices[{index}].{field}"),
                    format!("/choices/{at}/delta/{field}"),
                    delta.get(field),
                );
            }
            if let Some(Value::Array(calls)) = delta.get("tool_calls") {
                for (t, call) in calls.iter().enumerate() {
                    let tool = call
                        .get("index")
                        .and_then(Value::as_u64)
                        .unwrap_or(t as u64);
                    push(
                        format!("choices[{index}].tool_calls[{tool}].arguments"),
                        format!("/choices/{at}/delta/tool_calls/{t}/function/arguments"),
                        call.get("function").and_then(|f| f.get("arguments")),
                    );
                }
            }
        }
        return;
    }
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return;
    };
    if kind == "content_block_delta" {
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        for field in ["text", "thinking", "partial_json"] {
            push(
                format!("content[{index}].{field}"),
                format!("/delta/{field}"),
                value.get("delta").and_then(|d| d.get(field)),
            );
        }
    } else if kind.ends_with(".delta") {
        let at = |name: &str| value.get(name).and_then(Value::as_u64).unwrap_or(0);
        let channel = format!(
            "{kind}[{}][{}][{}]",
            at("output_index"),
            at("content_index"),
            at("summary_index")
        );
        push(channel, "/delta".into(), value.get("delta"));
    }
}

/// The channels, in order of their first fragment.
fn channels(fragments: &[Fragment]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in fragments {
        if !out.contains(&f.channel) {
            out.push(f.channel.clone());
        }
    }
    out
}

/// Finds what to redact in `channel`'s assembled text and rewrites its fragments in `events`.
fn cut_findings(events: &mut [Event], fragments: &[Fragment], channel: &str) {
    let parts: Vec<&Fragment> = fragments.iter().filter(|f| f.channel == channel).collect();
    let assembled: String = parts.iter().map(|f| f.text.as_str()).collect();
    let findings = find(&assembled);
    if findings.is_empty() {
        return;
    }
    let mut start = 0;
    for part in parts {
        let end = start + part.text.len();
        let rewritten = cut(&part.text, start, &findings);
        start = end;
        let Some(rewritten) = rewritten else { continue };
        if let Data::Json(value) = &mut events[part.event].data {
            if let Some(slot) = value.pointer_mut(&part.pointer) {
                *slot = Value::String(rewritten);
            }
        }
    }
}

/// `text`, which starts at byte `start` of the assembled text, with the findings that overlap it
/// cut out (the marker where a finding starts); `None` if none overlaps.
fn cut(text: &str, start: usize, findings: &[Finding]) -> Option<String> {
    let end = start + text.len();
    // Findings and fragments both end on character boundaries of the assembled text, so these
    // slices exist; were one not to, the text is dropped rather than shown unredacted.
    let slice = |from: usize, to: usize| text.get(from - start..to - start).unwrap_or("");
    let overlapping: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.start < end && start < f.end)
        .collect();
    if overlapping.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = start;
    for f in overlapping {
        let (from, to) = (f.start.max(start), f.end.min(end));
        out.push_str(slice(at, from));
        if f.start >= start {
            out.push_str("[REDACTED:");
            out.push_str(f.kind.as_str());
            out.push(']');
        }
        at = to;
    }
    out.push_str(slice(at, end));
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn chat_stream(pieces: &[&str]) -> String {
        let mut out = String::from(": keep-alive\n\n");
        for p in pieces {
            let chunk = serde_json::json!({
                "id": "c1", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]
            });
            out.push_str(&format!("data: {chunk}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        out
    }

    /// The content of every chat chunk of `sse`, in order.
    fn assembled(sse: &str) -> String {
        decode(sse)
            .into_iter()
            .filter_map(|e| match e.data {
                Data::Json(v) => v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from),
                Data::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn pii_split_across_chat_events_is_redacted() {
        let sse = chat_stream(&[
            "Mail jane.r",
            "oe@exam",
            "ple.com or pay 4111 1111",
            " 1111 1111 now",
        ]);
        assert!(
            !sse.contains("jane.roe@example.com"),
            "split in the transcript"
        );
        let out = redact_sse(&sse).unwrap();
        assert_eq!(
            assembled(&out),
            "Mail [REDACTED:email] or pay [REDACTED:card] now"
        );
        for piece in ["jane.r", "oe@exam", "ple.com", "4111", "1111"] {
            assert!(!out.contains(piece), "{piece} in {out}");
        }
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
    }

    #[test]
    fn anthropic_and_responses_deltas_are_assembled_per_channel() {
        let sse = concat!(
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"call +44 20 79\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"to\\\":\\\"bob@ex\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"46 0958 today\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ample.com\\\"}\"}}\n\n",
            "data: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\"sk-proj-abcdefghij\"}\n\n",
            "data: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\"KLMNOPQRSTUVWXYZ0123\"}\n\n",
        );
        let out = redact_sse(sse).unwrap();
        assert!(out.contains("call [REDACTED:phone]"), "{out}");
        assert!(out.contains(r#"{\"to\":\"[REDACTED:email]"#), "{out}");
        assert!(out.contains("[REDACTED:secret]"), "{out}");
        for piece in ["79", "0958", "bob@ex", "ample.com", "abcdefghij", "KLMNOP"] {
            assert!(!out.contains(piece), "{piece} in {out}");
        }
        assert!(
            out.contains(" today"),
            "the rest of a fragment stays: {out}"
        );
        assert_eq!(out.matches("event: content_block_delta\n").count(), 4);
    }

    #[test]
    fn other_fields_of_events_are_redacted_too() {
        let sse = "data: {\"error\":{\"message\":\"bad key for bob@example.com\",\"code\":4111111111111111}}\n\n";
        let out = redact_sse(sse).unwrap();
        assert!(out.contains("bad key for [REDACTED:email]"), "{out}");
        assert!(out.contains("\"code\":\"[REDACTED:card]\""), "{out}");
    }

    #[test]
    fn text_that_is_not_a_transcript_is_left_to_the_caller() {
        assert_eq!(redact_sse("just text, bob@example.com"), None);
        assert_eq!(redact_sse("{\"data\": 1}"), None);
        assert_eq!(redact_sse(": only a comment\n\n"), None);
    }
}
