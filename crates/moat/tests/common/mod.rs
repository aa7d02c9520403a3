//! Helpers shared by the tests that run the real `moat` binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// The `moat` binary under test, logging at `info` in text.
pub fn moat() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moat"));
    c.env("MOAT_LOG", "info").env_remove("MOAT_LOG_FORMAT");
    c
}

/// Runs `moat audit verify` on `config`: (success, stdout).
pub fn audit_verify(config: &Path) -> (bool, String) {
    let out = moat()
        .args(["audit", "verify", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
