//! What went wrong parsing a JSON body, in words that never repeat the body's content.
//!
//! `serde_json`'s messages quote the offending value (`invalid type: string "Patient Jane Roe
//! DOB …", expected a sequence`), and such messages become client error messages, log lines and
//! the audit record's decision reasons, which roles that may not see bodies (viewers) can read.
//! [`describe`] keeps what is wrong (the kind of mistake, the JSON type found, what the schema
//! expected, the line and column) and drops the value: a quoted string, a number, an unknown
//! variant's or field's name.

/// A description of `e` that names the mistake, the type found and the position, never the value.
pub fn describe(e: &serde_json::Error) -> String {
    let at = format!("at line {} column {}", e.line(), e.column());
    let what = match e.classify() {
        // Syntax and end-of-input messages are serde_json's own words ("expected value", "EOF
        // while parsing a string", "trailing characters"); they carry no input. The I/O kind
        // does not occur on slices.
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => syntax_message(e),
        serde_json::error::Category::Data => data_message(e),
    };
    format!("{what} {at}")
}

/// serde_json's message without its position suffix.
fn syntax_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let text = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    // Syntax messages are fixed words; anything quoted is dropped all the same.
    cut_at_quote(text).to_string()
}

/// A data error (the JSON is well formed, a value does not fit the schema), rebuilt from its
/// parts: the kind of mistake, the type found (a word) and what was expected.
fn data_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let text = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    let expected = text
        .find(", expected ")
        .map(|i| &text[i..])
        .filter(|rest| !rest.contains('"'))
        .unwrap_or("");
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(kind) {
            // "string \"…\"", "integer `5`", "floating point `1.5`", "boolean `true`", "map", …
            let found: String = rest
                .split(['"', '`', ','])
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            return format!("{kind}{found}{expected}");
        }
    }
    for kind in ["unknown variant", "unknown field"] {
        if text.starts_with(kind) {
            return format!("{kind}{expected}");
        }
    }
    // "missing field `model`", "duplicate field `model`", "invalid length 3, expected …":
    // schema names and counts, unless a custom message quotes something.
    cut_at_quote(text).to_string()
}

fn cut_at_quote(text: &str) -> &str {
    match text.find('"') {
        Some(i) => text[..i].trim_end(),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        n: Option<u32>,
        list: Option<Vec<u32>>,
        role: Option<Role>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Role {
        User,
    }

    fn err(json: &str) -> String {
        describe(&serde_json::from_str::<Shape>(json).unwrap_err())
    }

    #[test]
    fn values_are_never_repeated() {
        let secret = "Patient Jane Roe DOB 1970-01-01 sk-live-0123456789";
        let cases = [
            format!(r#"{{"n": "{secret}"}}"#),
            format!(r#"{{"list": "{secret}"}}"#),
            format!(r#"{{"role": "{secret}"}}"#),
            format!(r#"{{"{secret}": 1}}"#),
            r#"{"n": 4111111111111111111111}"#.to_string(),
            r#"{"n": -4111111111}"#.to_string(),
            format!(r#"{{"n": "{secret}"#),
            format!(r#"{{"n": 1}} "{secret}""#),
        ];
        for json in &cases {
            let m = err(json);
            assert!(!m.contains("Patient") && !m.contains("sk-live"), "{m}");
            assert!(!m.contains("4111111111"), "{m}");
            assert!(m.contains(" at line 1 column "), "{m}");
        }
        assert_eq!(
            err(&cases[0]),
            "invalid type: string, expected u32 at line 1 column 58"
        );
        assert_eq!(
            err(&cases[2]),
            "unknown variant, expected `user` at line 1 column 61"
        );
        assert!(err(&cases[3]).starts_with("unknown field, expected one of `n`, `list`, `role`"));
        assert!(err(&cases[6]).starts_with("EOF while parsing a string"));
        assert!(err(&cases[7]).starts_with("trailing characters"));
    }
}
