//! Per-request feature extraction (parse of the body into a view, then features) and the
//! detector's per-event update, for a 2 KB chat prompt.
//!
//! `cargo bench -p moat-detect --bench features`

use divan::{black_box, Bencher};
use moat_detect::features::Extractor;
use moat_detect::{Detector, DetectorConfig, Event};
use moat_protocol::view::{RequestView, ViewApi};

fn main() {
    divan::main();
}

/// A 2 KB OpenAI chat body: a system prompt and a long user turn with numbers and a CoT suffix.
fn body_2kb() -> Vec<u8> {
    let mut user = String::new();
    let mut i = 0;
    while user.len() < 1700 {
        user.push_str(&format!(
            "Sentence {i} of the problem: Maria buys {} apples at ${}.50 each and gives \"some\" to Tom. ",
            i * 3 + 1,
            i + 2
        ));
        i += 1;
    }
    user.push_str("How many apples are left? Think it through step by step.");
    let body = serde_json::json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are a careful tutor. Justify every step before answering."},
            {"role": "user", "content": user}
        ],
        "max_tokens": 1024,
        "temperature": 0.7
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[divan::bench]
fn parse_view(bencher: Bencher) {
    let body = body_2kb();
    bencher
        .bench(|| RequestView::parse(ViewApi::OpenAiChat, black_box(&body)).map(|v| v.turns.len()));
}

#[divan::bench]
fn parse_and_extract(bencher: Bencher) {
    let body = body_2kb();
    let extractor = Extractor::new();
    bencher.bench(|| {
        RequestView::parse(ViewApi::OpenAiChat, black_box(&body)).map(|v| extractor.extract(&v))
    });
}

#[divan::bench]
fn observe(bencher: Bencher) {
    let body = body_2kb();
    let extractor = Extractor::new();
    let features = RequestView::parse(ViewApi::OpenAiChat, &body)
        .map(|v| extractor.extract(&v))
        .unwrap_or_default();
    let mut detector = Detector::new(DetectorConfig::default());
    let accounts: Vec<String> = (0..10_000).map(|i| format!("acct_{i}")).collect();
    let mut n = 0usize;
    bencher.bench_local(|| {
        n += 1;
        let ev = Event {
            ts_ms: 1_700_000_000_000 + n as i64 * 10,
            request_id: "req_x",
            account: &accounts[n % accounts.len()],
            end_user: None,
            account_created_ms: Some(1_600_000_000_000),
            ip: Some(std::net::IpAddr::from([10, 0, (n % 200) as u8, 1])),
            input_tokens: 500,
            output_tokens: 300,
            features: &features,
        };
        detector.observe(black_box(&ev))
    });
}
