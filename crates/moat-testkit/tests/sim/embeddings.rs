//! Embeddings and models over HTTP.

use base64::Engine as _;
use moat_testkit::SimUpstream;
use serde_json::{json, Value};

use crate::common::{client, post_json};

const PATH: &str = "/v1/embeddings";

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn float_vectors_are_deterministic_unit_vectors() {
    let sim = SimUpstream::start().await.unwrap();
    let body = json!({"model": "sim-embedding", "input": ["hello world", "bye"]});
    let (status, reply) = post_json(&sim, PATH, &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["object"], "list");
    assert_eq!(reply["model"], "sim-embedding");
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = reply["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let first = floats(&data[0]["embedding"]);
    assert_eq!(first.len(), 8);
    let norm: f32 = first.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);

    let (_, again) = post_json(
        &sim,
        PATH,
        &json!({"model": "sim-embedding", "input": "hello world"}),
    )
    .await;
    assert_eq!(floats(&again["data"][0]["embedding"]), first);
}

#[tokio::test]
async fn base64_is_little_endian_f32_and_dimensions_apply() {
    let sim = SimUpstream::start().await.unwrap();
    let body = json!({"model": "e", "input": "x y", "dimensions": 16});
    let (_, plain) = post_json(&sim, PATH, &body).await;
    let mut encoded = body.clone();
    encoded["encoding_format"] = json!("base64");
    let (_, b64) = post_json(&sim, PATH, &encoded).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, floats(&plain["data"][0]["embedding"]));
    assert_eq!(decoded.len(), 16);
}

#[tokio::test]
async fn token_inputs_and_invalid_inputs() {
    let sim = SimUpstream::start().await.unwrap();
    let (status, reply) = post_json(&sim, PATH, &json!({"model": "e", "input": [1, 2, 3]})).await;
    assert_eq!(status, 200);
    assert_eq!(reply["usage"]["prompt_tokens"], 3);
    let (_, reply) = post_json(&sim, PATH, &json!({"model": "e", "input": [[1, 2], [3]]})).await;
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    for bad in [json!(""), json!([]), json!([{"a": 1}]), json!(5)] {
        let (status, reply) = post_json(&sim, PATH, &json!({"model": "e", "input": bad})).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(reply["error"]["param"], "input");
    }
    let (status, _) = post_json(
        &sim,
        PATH,
        &json!({"model": "e", "input": "x", "encoding_format": "hex"}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn models_list_satisfies_both_sdks() {
    let sim = SimUpstream::start().await.unwrap();
    let response = client()
        .get(format!("{}/models", sim.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    assert!(data.len() >= 3);
    for model in data {
        assert_eq!(model["object"], "model");
        assert_eq!(model["type"], "model");
        assert!(model["display_name"].is_string() && model["created_at"].is_string());
        assert!(model["created"].is_i64() && model["owned_by"].is_string());
    }
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], data[0]["id"]);
    assert_eq!(list["last_id"], data[data.len() - 1]["id"]);

    let response = client()
        .get(format!(
            "{}/v1/models/claude-anything",
            sim.anthropic_base_url()
        ))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("request-id"));
    let model: Value = response.json().await.unwrap();
    assert_eq!(model["id"], "claude-anything");
}
