//! `GET /v1/models` and `GET /v1/models/{id}` in one shape that both SDKs accept.
//!
//! OpenAI's fields (`object`, `created`, `owned_by`) and Anthropic's (`type`, `display_name`,
//! `created_at`, `has_more`, `first_id`, `last_id`) live side by side; each SDK ignores the other's.

use serde_json::{json, Value};

use crate::reply::Reply;

/// The models the sim lists: (id, display name, Unix creation time, RFC 3339 creation time).
/// The sim answers for any model name; this list is what clients discover.
const MODELS: [(&str, &str, i64, &str); 5] = [
    ("sim-gpt", "Sim GPT", 1_715_558_400, "2024-05-13T00:00:00Z"),
    (
        "sim-gpt-mini",
        "Sim GPT Mini",
        1_721_174_400,
        "2024-07-17T00:00:00Z",
    ),
    (
        "sim-claude",
        "Sim Claude",
        1_727_654_400,
        "2024-09-30T00:00:00Z",
    ),
    (
        "sim-claude-haiku",
        "Sim Claude Haiku",
        1_730_419_200,
        "2024-11-01T00:00:00Z",
    ),
    (
        "sim-embedding",
        "Sim Embedding",
        1_705_968_000,
        "2024-01-23T00:00:00Z",
    ),
];

/// The model list.
pub(crate) fn list() -> Reply {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, name, created, created_at)| model(id, name, *created, created_at))
        .collect();
    Reply::Json(json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "first_id": MODELS.first().map(|m| m.0),
        "last_id": MODELS.last().map(|m| m.0),
    }))
}

/// One model; any id is served, since the sim answers for any model.
pub(crate) fn retrieve(id: &str) -> Reply {
    let known = MODELS.iter().find(|m| m.0 == id);
    Reply::Json(match known {
        Some((id, name, created, created_at)) => model(id, name, *created, created_at),
        None => model(id, id, MODELS[0].2, MODELS[0].3),
    })
}

fn model(id: &str, display_name: &str, created: i64, created_at: &str) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": created,
        "owned_by": "moat-sim",
        "type": "model",
        "display_name": display_name,
        "created_at": created_at,
    })
}
