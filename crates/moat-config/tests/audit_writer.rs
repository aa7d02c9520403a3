//! `[audit]` settings of the writer's backlog and sync commit timeout (issue 11).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_config::{parse, MapEnv};
use std::path::Path;
use std::time::Duration;

const BASE: &str = r#"
[store]
path = "moat.db"
[[providers]]
name = "p"
kind = "openai"
base_url = "http://127.0.0.1:1"
[[models]]
name = "m"
targets = [{ provider = "p", model = "x" }]
"#;

fn load(extra: &str) -> Result<moat_config::Config, String> {
    parse(
        &format!("{BASE}{extra}"),
        "moat.toml",
        Path::new(""),
        &MapEnv::default(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn backlog_and_commit_timeout_have_defaults_and_are_read() {
    let c = load("").unwrap();
    assert_eq!(c.audit.max_backlog, 16_384);
    assert_eq!(c.audit.max_backlog_bytes, 256 * 1024 * 1024);
    assert_eq!(c.audit.commit_timeout, Duration::from_secs(5));
    let c = load(
        "[audit]\nmax_backlog = 100\nmax_backlog_bytes = 1048576\ncommit_timeout = \"250ms\"\n",
    )
    .unwrap();
    assert_eq!(c.audit.max_backlog, 100);
    assert_eq!(c.audit.max_backlog_bytes, 1_048_576);
    assert_eq!(c.audit.commit_timeout, Duration::from_millis(250));
    // The former name still sets it.
    let c = load("[audit]\nqueue = 7\n").unwrap();
    assert_eq!(c.audit.max_backlog, 7);
}

#[test]
fn a_zero_backlog_or_timeout_is_refused() {
    let err = load("[audit]\nmax_backlog = 0\nmax_backlog_bytes = 0\ncommit_timeout = \"0s\"\n")
        .unwrap_err();
    assert!(err.contains("audit.max_backlog:"), "{err}");
    assert!(err.contains("audit.max_backlog_bytes:"), "{err}");
    assert!(err.contains("audit.commit_timeout"), "{err}");
}
