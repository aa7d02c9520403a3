//! `audit.read_page_bytes`: its default, a value set, and its bounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use moat_config::{parse, AuditConfig, MapEnv};

const BASE: &str = "[store]\npath = \"moat.db\"\n\
    [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"https://x.example\"\n\
    [[models]]\nname = \"m\"\ntargets = [{ provider = \"p\", model = \"x\" }]\n";

fn read_page_bytes(audit: &str) -> Result<usize, Vec<String>> {
    let text = format!("{BASE}[audit]\n{audit}");
    parse(&text, "moat.toml", Path::new(""), &MapEnv::default())
        .map(|c| c.audit.read_page_bytes)
        .map_err(|e| e.errors.iter().map(ToString::to_string).collect())
}

#[test]
fn read_page_bytes_defaults_to_8_mib_and_is_bounded() {
    assert_eq!(read_page_bytes(""), Ok(8 << 20));
    assert_eq!(AuditConfig::default().read_page_bytes, 8 << 20);
    assert_eq!(read_page_bytes("read_page_bytes = 65536"), Ok(65_536));
    for bad in ["read_page_bytes = 100", "read_page_bytes = 2147483648"] {
        let errors = read_page_bytes(bad).unwrap_err();
        assert_eq!(
            errors,
            ["line 11: audit.read_page_bytes: must be between 4096 and 1073741824"],
            "{bad}"
        );
    }
}
