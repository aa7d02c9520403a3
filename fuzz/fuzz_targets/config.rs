//! Config parsing and validation over arbitrary text: never panics; a refusal lists at least one
//! error, each on a line of the file; no message leaves a URL's credentials or query unmasked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_config::{mask_url_secrets, parse, MapEnv};
use std::path::Path;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let env = MapEnv::new([
        ("MOAT_ADMIN_TOKEN", "3f9a7c21e8d4b6f05a1c9e7d2b8f4a60"),
        ("URL", "https://svc:pw@llm.test/v1?key=k"),
        ("EMPTY", ""),
    ]);
    let Err(errors) = parse(text, "fuzz.toml", Path::new("/nonexistent"), &env) else {
        return;
    };
    assert!(!errors.errors.is_empty(), "refused without a reason");
    let lines = text.lines().count() + 1;
    for e in &errors.errors {
        if let Some(line) = e.line {
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {e}");
        }
        assert_eq!(
            mask_url_secrets(&e.message),
            e.message.as_str(),
            "unmasked URL"
        );
    }
});
