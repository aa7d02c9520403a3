//! The Anthropic event stream of a reply message, each event named by an `event:` line.

use serde_json::{json, Value};

use super::{tool_use_id, Block, Message};
use crate::reply::{SseEvent, Transcript};

/// `message_start`, `ping`, each block's start/deltas/stop, `message_delta`, `message_stop`.
pub(super) fn events(message: &Message<'_>) -> Transcript {
    let mut transcript = Transcript::named("content_block_delta");
    let mut start = message.object();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    // As Anthropic does: input usage is final here, output usage a small placeholder.
    start["usage"] = message.usage(1);
    push(&mut transcript, "message_start", json!({"message": start}));
    push(&mut transcript, "ping", json!({}));
    for (block, index) in message.blocks.iter().zip(0u64..) {
        block_events(&mut transcript, block, index);
    }
    let mut usage = message.usage(message.output_tokens);
    if let Value::Object(fields) = &mut usage {
        fields.remove("service_tier");
    }
    let delta = json!({
        "delta": {"stop_reason": message.stop_reason, "stop_sequence": null},
        "usage": usage,
    });
    push(&mut transcript, "message_delta", delta);
    push(&mut transcript, "message_stop", json!({}));
    transcript
}

fn block_events(transcript: &mut Transcript, block: &Block, index: u64) {
    let start = match block {
        Block::Thinking { .. } => json!({"type": "thinking", "thinking": "", "signature": ""}),
        Block::Text(_) => json!({"type": "text", "text": ""}),
        Block::Tool(call) => json!({
            "type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": {},
        }),
    };
    let payload = json!({"index": index, "content_block": start});
    push(transcript, "content_block_start", payload);
    let delta = |delta: Value| json!({"index": index, "delta": delta});
    match block {
        Block::Thinking { thought, signature } => {
            for word in thought.deltas() {
                let d = delta(json!({"type": "thinking_delta", "thinking": word}));
                push_paced(transcript, d);
            }
            let d = delta(json!({"type": "signature_delta", "signature": signature}));
            push(transcript, "content_block_delta", d);
        }
        Block::Text(g) => {
            for word in g.deltas() {
                push_paced(
                    transcript,
                    delta(json!({"type": "text_delta", "text": word})),
                );
            }
        }
        Block::Tool(call) => {
            // Anthropic opens every tool input with an empty fragment.
            let empty = delta(json!({"type": "input_json_delta", "partial_json": ""}));
            push(transcript, "content_block_delta", empty);
            for fragment in &call.fragments {
                let d = delta(json!({"type": "input_json_delta", "partial_json": fragment}));
                push_paced(transcript, d);
            }
        }
    }
    push(transcript, "content_block_stop", json!({"index": index}));
}

/// Appends a named event whose payload gets `type` first, as Anthropic orders it.
fn push(transcript: &mut Transcript, name: &'static str, payload: Value) {
    transcript.push(event(name, payload));
}

fn push_paced(transcript: &mut Transcript, payload: Value) {
    transcript.push(event("content_block_delta", payload).paced());
}

fn event(name: &'static str, payload: Value) -> SseEvent {
    let mut data = serde_json::Map::new();
    data.insert("type".to_owned(), json!(name));
    if let Value::Object(mut fields) = payload {
        data.append(&mut fields);
    }
    SseEvent::named(name, &Value::Object(data))
}
