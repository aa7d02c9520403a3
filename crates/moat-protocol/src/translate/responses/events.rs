//! The Responses stream events moat writes: named by `event:`, numbered by `sequence_number`
//! from 0, and the output items already done.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::sse::encode_event;

/// Writes the events of one Responses stream.
#[derive(Debug, Clone, Default)]
pub(super) struct Events {
    sequence: u64,
    done: Vec<Value>,
}

impl Events {
    /// The output index of the item being streamed: the number of items done.
    pub(super) fn output_index(&self) -> usize {
        self.done.len()
    }

    /// The items done, in order.
    pub(super) fn done_items(&self) -> &[Value] {
        &self.done
    }

    /// One event: `type` and `sequence_number` first, then the fields of the object `fields`.
    pub(super) fn emit(&mut self, frames: &mut Vec<Bytes>, kind: &str, fields: Value) {
        let mut event = json!({"type": kind, "sequence_number": self.sequence});
        extend(&mut event, fields);
        self.sequence += 1;
        frames.push(encode_event(Some(kind), &event.to_string()));
    }

    /// An event about the open item `item_id`, with `extra` fields.
    pub(super) fn item_event(
        &mut self,
        frames: &mut Vec<Bytes>,
        kind: &str,
        item_id: &str,
        extra: Value,
    ) {
        let mut fields = json!({"item_id": item_id, "output_index": self.output_index()});
        extend(&mut fields, extra);
        self.emit(frames, kind, fields);
    }

    /// An event about part `content_index` of the open item `item_id`, with `extra` fields.
    pub(super) fn part_event(
        &mut self,
        frames: &mut Vec<Bytes>,
        kind: &str,
        item_id: &str,
        content_index: usize,
        extra: Value,
    ) {
        let mut fields = json!({
            "item_id": item_id,
            "output_index": self.output_index(),
            "content_index": content_index,
        });
        extend(&mut fields, extra);
        self.emit(frames, kind, fields);
    }

    /// `response.output_item.added` for the item about to be streamed.
    pub(super) fn added(&mut self, frames: &mut Vec<Bytes>, item: Value) {
        let fields = json!({"output_index": self.output_index(), "item": item});
        self.emit(frames, "response.output_item.added", fields);
    }

    /// `response.output_item.done` for `item`, which joins the items done.
    pub(super) fn done(&mut self, frames: &mut Vec<Bytes>, item: Value) {
        let fields = json!({"output_index": self.output_index(), "item": item.clone()});
        self.emit(frames, "response.output_item.done", fields);
        self.done.push(item);
    }
}

/// Adds the fields of the object `extra` to the object `to`.
fn extend(to: &mut Value, extra: Value) {
    if let (Some(to), Value::Object(extra)) = (to.as_object_mut(), extra) {
        to.extend(extra);
    }
}
