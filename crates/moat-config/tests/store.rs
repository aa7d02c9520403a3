//! `[store]`: a SQLite `path` or a PostgreSQL `url`, exactly one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_config::{parse, Config, MapEnv};
use std::path::Path;

const REST: &str =
    "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"https://x.example\"\n\
                    [[models]]\nname = \"m\"\ntargets = [{ provider = \"p\", model = \"x\" }]\n";

fn parsed(store: &str) -> Result<Config, Vec<String>> {
    let env = MapEnv::new([("PGPASS", "s3cret")]);
    parse(
        &format!("[store]\n{store}{REST}"),
        "moat.toml",
        Path::new("/etc/moat"),
        &env,
    )
    .map_err(|e| e.errors.iter().map(ToString::to_string).collect())
}

#[test]
fn a_postgres_url_selects_postgres_and_stays_secret() {
    for url in [
        "postgres://moat:${PGPASS}@db.internal:5432/moat",
        "postgresql://moat:${PGPASS}@db.internal/moat",
    ] {
        let config = parsed(&format!("url = \"{url}\"\n")).unwrap();
        let stored = config.store.url.as_ref().unwrap().expose();
        assert_eq!(stored, &url.replace("${PGPASS}", "s3cret"));
        assert_eq!(config.store.path, Path::new(""), "no SQLite file");
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "Debug masks the URL"
        );
    }
}

#[test]
fn a_path_alone_has_no_url() {
    let config = parsed("path = \"moat.db\"\n").unwrap();
    assert_eq!(config.store.path, Path::new("/etc/moat/moat.db"));
    assert!(config.store.url.is_none());
}

#[test]
fn path_and_url_together_are_refused() {
    assert_eq!(
        parsed("path = \"moat.db\"\nurl = \"postgres://db/moat\"\n").unwrap_err(),
        ["line 3: store.url: set `path` (SQLite) or `url` (PostgreSQL), not both"]
    );
}

#[test]
fn other_schemes_are_refused_without_echoing_the_url() {
    for url in [
        "mysql://root:s3cret@db/moat",
        "http://db/moat",
        "moat.db",
        "POSTGRES://db",
    ] {
        let errors = parsed(&format!("url = \"{url}\"\n")).unwrap_err();
        assert_eq!(
            errors,
            ["line 2: store.url: must start with postgres:// or postgresql://"],
            "{url}"
        );
    }
}

#[test]
fn an_empty_url_is_an_error() {
    assert_eq!(
        parsed("url = \"\"\n").unwrap_err(),
        ["line 2: store.url: must not be empty"]
    );
}
