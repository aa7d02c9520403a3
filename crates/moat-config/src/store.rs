//! `[store]`: a SQLite file (`path`) or a PostgreSQL server (`url`), exactly one of the two.
//!
//! Both at once is refused rather than one silently winning: the two hold different data, and
//! a gateway that quietly ignored one would serve keys the operator did not mean.

use moat_core::Secret;
use std::path::PathBuf;

use crate::context::Ctx;
use crate::document::Element;
use crate::raw::RawStore;
use crate::sections::resolve;
use crate::types::StoreConfig;

/// The URL schemes that select PostgreSQL.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// `[store]`; a missing section was already reported by the document reader.
pub(crate) fn store(ctx: &mut Ctx<'_>, element: Option<&Element<RawStore>>) -> StoreConfig {
    let mut out = StoreConfig {
        path: PathBuf::new(),
        url: None,
    };
    let Some(e) = element else {
        return out;
    };
    match (e.value.path.as_ref(), e.value.url.as_ref()) {
        (Some(_), Some(url)) => {
            ctx.errors.push(
                Some(url.span()),
                e.field("url"),
                "set `path` (SQLite) or `url` (PostgreSQL), not both",
            );
        }
        (None, None) if !e.already_reported("path") && !e.already_reported("url") => {
            ctx.errors
                .push(e.span.clone(), e.field("path"), "missing required field");
        }
        (Some(v), None) => {
            if let Some(path) = ctx.name(v, &e.field("path")) {
                out.path = resolve(ctx, &path);
            }
        }
        (None, Some(v)) => {
            let field = e.field("url");
            if let Some(url) = ctx.name(v, &field) {
                if POSTGRES_SCHEMES.iter().any(|s| url.starts_with(s)) {
                    out.url = Some(Secret::new(url));
                } else {
                    // Not echoed: a mistyped URL may still hold a password.
                    ctx.errors.push(
                        Some(v.span()),
                        field,
                        "must start with postgres:// or postgresql://",
                    );
                }
            }
        }
        (None, None) => {}
    }
    out
}
