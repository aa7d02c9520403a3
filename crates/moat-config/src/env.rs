//! Environment variables behind a trait, and `${VAR}` interpolation of config string values.

use std::collections::HashMap;

/// Where `${VAR}` references are looked up. Tests use [`MapEnv`] so they never touch the process.
pub trait Env {
    /// The value of `name`, or `None` when it is unset (or not valid Unicode).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables, for tests and embedding.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    /// An environment holding exactly these pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Why a string could not be interpolated. Messages never include a variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpolationError {
    /// `${NAME}` with `NAME` unset and no default.
    Unset(String),
    /// A `${` that is not a well-formed reference.
    Malformed(String),
}

impl InterpolationError {
    /// The message shown to the user.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Unset(name) => format!(
                "environment variable \"{name}\" is not set (write ${{{name}:-default}} to give a default)"
            ),
            Self::Malformed(why) => why.clone(),
        }
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` with values from `env`, and `$$` with `$`.
///
/// A `$` followed by anything else stays as it is, so secrets containing `$` need no escaping.
/// `${VAR:-default}` takes the default when `VAR` is unset or empty (as in the shell); the default
/// is literal text and ends at the first `}`. Substituted values are never interpolated again.
pub(crate) fn interpolate(text: &str, env: &dyn Env) -> Result<String, Vec<InterpolationError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                errors.push(InterpolationError::Malformed(
                    "unterminated \"${\": expected ${VAR} or ${VAR:-default} (write $$ for a literal $)"
                        .to_string(),
                ));
                rest = "";
                break;
            };
            let inner = &body[..close];
            match reference(inner, env) {
                Ok(value) => out.push_str(&value),
                Err(e) => errors.push(e),
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Resolves the inside of one `${...}`.
fn reference(inner: &str, env: &dyn Env) -> Result<String, InterpolationError> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if !is_var_name(name) {
        return Err(InterpolationError::Malformed(format!(
            "invalid variable reference \"${{{inner}}}\": expected ${{VAR}} or ${{VAR:-default}} with VAR made of letters, digits and _"
        )));
    }
    match (env.var(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_string()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_string()),
        (None, None) => Err(InterpolationError::Unset(name.to_string())),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the names a shell can export.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn env() -> MapEnv {
        MapEnv::new([("KEY", "sk-1"), ("EMPTY", ""), ("DOLLAR", "${KEY}")])
    }

    fn run(s: &str) -> Result<String, Vec<InterpolationError>> {
        interpolate(s, &env())
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(run("https://x/v1").unwrap(), "https://x/v1");
        assert_eq!(run("").unwrap(), "");
    }

    #[test]
    fn set_variables_are_substituted() {
        assert_eq!(run("${KEY}").unwrap(), "sk-1");
        assert_eq!(run("a-${KEY}-b-${KEY}").unwrap(), "a-sk-1-b-sk-1");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(run("${NOPE:-x}").unwrap(), "x");
        assert_eq!(run("${EMPTY:-x}").unwrap(), "x");
        assert_eq!(run("${KEY:-x}").unwrap(), "sk-1");
        assert_eq!(run("${NOPE:-}").unwrap(), "");
        assert_eq!(run("${NOPE:-a:-b}").unwrap(), "a:-b");
        assert_eq!(run("${EMPTY}").unwrap(), "");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(run("$$").unwrap(), "$");
        assert_eq!(run("$${KEY}").unwrap(), "${KEY}");
        assert_eq!(run("a$$$${KEY}").unwrap(), "a$${KEY}");
    }

    #[test]
    fn lone_dollar_stays() {
        assert_eq!(run("pa$word$").unwrap(), "pa$word$");
    }

    #[test]
    fn values_are_not_interpolated_twice() {
        assert_eq!(run("${DOLLAR}").unwrap(), "${KEY}");
    }

    #[test]
    fn unset_variables_are_all_reported() {
        assert_eq!(
            run("${A}/${KEY}/${B}").unwrap_err(),
            vec![
                InterpolationError::Unset("A".into()),
                InterpolationError::Unset("B".into())
            ]
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in ["${", "x${KEY", "${}", "${1A}", "${A B}", "${A-b}", "${:-x}"] {
            let errs = run(bad).unwrap_err();
            assert!(
                matches!(errs.as_slice(), [InterpolationError::Malformed(_)]),
                "{bad}: {errs:?}"
            );
        }
    }

    #[test]
    fn unset_message_names_the_variable() {
        let msg = InterpolationError::Unset("OPENAI_API_KEY".into()).message();
        assert!(msg.contains("\"OPENAI_API_KEY\" is not set"), "{msg}");
    }
}
