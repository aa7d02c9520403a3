//! The conversion context: collected errors, the environment, and checks for single values.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use crate::document::Element;
use crate::env::{interpolate, Env};
use crate::error::Errors;
use crate::raw::Any;

/// Whether a duration of zero makes sense for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    /// Zero means "none" (no grace period, no caching).
    Allowed,
    /// Zero would make every request fail.
    Rejected,
}

/// What every conversion step needs.
pub(crate) struct Ctx<'t> {
    /// The errors found so far.
    pub errors: Errors<'t>,
    /// Where `${VAR}` is looked up.
    pub env: &'t dyn Env,
    /// The config file's directory, for relative paths.
    pub base_dir: &'t Path,
}

impl<'t> Ctx<'t> {
    /// A context for reading `text`.
    pub(crate) fn new(text: &'t str, env: &'t dyn Env, base_dir: &'t Path) -> Self {
        Self {
            errors: Errors::new(text),
            env,
            base_dir,
        }
    }

    /// `value` with `${VAR}` references replaced; `None` after reporting why not.
    pub(crate) fn string(&mut self, value: &Spanned<String>, field: &str) -> Option<String> {
        match interpolate(value.get_ref(), self.env) {
            Ok(s) => Some(s),
            Err(errors) => {
                for e in errors {
                    self.errors.push(Some(value.span()), field, e.message());
                }
                None
            }
        }
    }

    /// Like [`Ctx::string`], and also reports an empty (or all-blank) result.
    pub(crate) fn name(&mut self, value: &Spanned<String>, field: &str) -> Option<String> {
        let s = self.string(value, field)?;
        if s.trim().is_empty() {
            self.errors
                .push(Some(value.span()), field, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A required field's value; reports it missing unless its error was already reported.
    pub(crate) fn required<'v, T, R>(
        &mut self,
        element: &Element<R>,
        key: &str,
        value: Option<&'v T>,
    ) -> Option<&'v T> {
        if value.is_none() && !element.already_reported(key) {
            self.errors.push(
                element.span.clone(),
                element.field(key),
                "missing required field",
            );
        }
        value
    }

    /// A duration such as `"30s"` or `"1m 30s"`; `default` when absent or after reporting an error.
    pub(crate) fn duration(
        &mut self,
        value: Option<&Any>,
        field: &str,
        default: Duration,
        zero: Zero,
    ) -> Duration {
        let Some(value) = value else {
            return default;
        };
        let span = Some(value.span());
        let text = match value.get_ref() {
            toml::Value::String(s) => Spanned::new(value.span(), s.clone()),
            toml::Value::Integer(n) => {
                let message = format!(
                    "expected a duration string such as \"{n}s\" or \"{n}ms\", found the bare number {n}"
                );
                self.errors.push(span, field, message);
                return default;
            }
            other => {
                let message = format!(
                    "expected a duration string such as \"30s\", found a value of type {}",
                    other.type_str()
                );
                self.errors.push(span, field, message);
                return default;
            }
        };
        let Some(s) = self.string(&text, field) else {
            return default;
        };
        match humantime::parse_duration(s.trim()) {
            Ok(d) if d.is_zero() && zero == Zero::Rejected => {
                self.errors.push(span, field, "must be greater than 0");
                default
            }
            Ok(d) => d,
            Err(e) => {
                let message = format!(
                    "invalid duration \"{s}\": {e}; expected something like \"500ms\", \"30s\" or \"1m 30s\""
                );
                self.errors.push(span, field, message);
                default
            }
        }
    }
}

/// Checks an upstream base URL and strips trailing slashes; `Err` holds the reason.
pub(crate) fn base_url(url: &str) -> Result<String, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let lower = url.to_ascii_lowercase();
    let Some(scheme_len) = ["http://", "https://"]
        .iter()
        .find(|s| lower.starts_with(**s))
        .map(|s| s.len())
    else {
        return Err("must start with http:// or https://".into());
    };
    if url.contains(['?', '#']) {
        return Err("must not contain a query (?) or fragment (#)".into());
    }
    let rest = &url[scheme_len..];
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not contain credentials; use api_key or headers".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("must name a host, as in https://api.openai.com/v1".into());
    }
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => authority.split_once(':').map(|(_, p)| p),
    };
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err(format!("has an invalid port \"{port}\""));
        }
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Whether `name` is a valid HTTP header name (an RFC 9110 token).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be sent as an HTTP header value (no line breaks or other controls).
pub(crate) fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_lose_trailing_slashes() {
        assert_eq!(
            base_url("https://api.openai.com/v1/").unwrap(),
            "https://api.openai.com/v1"
        );
        assert_eq!(
            base_url("http://localhost:8000").unwrap(),
            "http://localhost:8000"
        );
        assert_eq!(
            base_url("http://[::1]:11434/v1").unwrap(),
            "http://[::1]:11434/v1"
        );
        assert_eq!(base_url("HTTPS://X.ORG//").unwrap(), "HTTPS://X.ORG");
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("api.openai.com/v1", "must start with http:// or https://"),
            ("ftp://x", "must start with http"),
            ("https://", "must name a host"),
            ("https:///v1", "must name a host"),
            ("https://:80", "must name a host"),
            ("https://a b", "spaces"),
            ("https://x?y=1", "query"),
            ("https://u:p@x", "credentials"),
            ("https://x:99999", "invalid port"),
            ("http://x:", "invalid port"),
            ("", "must start"),
        ] {
            let err = base_url(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn header_names_and_values() {
        assert!(is_header_name("x-extra"));
        assert!(!is_header_name("x extra"));
        assert!(!is_header_name(""));
        assert!(!is_header_name("x:y"));
        assert!(is_header_value("a b\tc"));
        assert!(!is_header_value("a\r\nb: c"));
    }
}
