//! How long the starter list takes over a ~2 KB chat request, from the body to the outcome.
//! Run with `cargo bench -p moat-guard --bench check`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use moat_config::{FilterAction, FilterConfig};
use moat_guard::FilterSet;
use moat_protocol::view::{RequestView, ViewApi};
use serde_json::json;

fn main() {
    divan::main();
}

fn starter_list() -> FilterSet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/extraction.txt");
    FilterSet::compile(&[FilterConfig::new("extraction", path, FilterAction::Block)]).unwrap()
}

fn body(paragraph: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": format!("You are a careful analyst. {paragraph}")},
            {"role": "user", "content": paragraph.repeat(4)},
            {"role": "assistant", "content": paragraph.repeat(2)},
            {"role": "user", "content": paragraph.repeat(3)},
        ],
        "max_tokens": 512
    }))
    .unwrap()
}

fn run(bencher: divan::Bencher, body: Vec<u8>) {
    let set = starter_list();
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .bench(|| {
            let view = RequestView::parse(ViewApi::OpenAiChat, divan::black_box(&body)).unwrap();
            set.check(&view, "default", None).blocked.is_some()
        });
}

#[divan::bench]
fn ascii_2kb(bencher: divan::Bencher) {
    run(
        bencher,
        body("The quarterly report covers revenue, churn and the hiring plan for the platform team; summarise the risks and keep numbers exact. "),
    );
}

#[divan::bench]
fn non_ascii_2kb(bencher: divan::Bencher) {
    run(
        bencher,
        body("Le rapport trimestriel couvre le chiffre d'affaires, l'attrition et le plan d'embauche — résumez les risques, gardez les nombres exacts. "),
    );
}
