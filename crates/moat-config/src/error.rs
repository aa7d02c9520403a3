//! Config errors: each one names a line and a field, and they are reported all together.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line in the config file, when the problem has a place (an unreadable file has none).
    pub line: Option<usize>,
    /// The field's path, such as `models[1].fallbacks[0]`; empty for file-level problems.
    pub field: String,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

/// Every problem found in one config file, in line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.origin, .errors))]
pub struct ConfigErrors {
    /// The file name used in messages.
    pub origin: String,
    /// The problems, sorted by line (problems without a line first).
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps a list of errors, sorting them by line so the output reads top to bottom.
    pub fn new(origin: impl Into<String>, mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| e.line);
        Self {
            origin: origin.into(),
            errors,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// One line per error, `origin:line: field: message`, then the count.
fn render(origin: &str, errors: &[ConfigError]) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(origin);
        out.push(':');
        if let Some(line) = e.line {
            out.push_str(&line.to_string());
            out.push(':');
        }
        out.push(' ');
        if !e.field.is_empty() {
            out.push_str(&e.field);
            out.push_str(": ");
        }
        out.push_str(&e.message);
        out.push('\n');
    }
    let n = errors.len();
    let plural = if n == 1 { "" } else { "s" };
    out.push_str(&format!("{n} error{plural} in {origin}"));
    out
}

/// Collects errors while a config is read, turning byte spans into line numbers.
pub(crate) struct Errors<'t> {
    text: &'t str,
    list: Vec<ConfigError>,
}

impl<'t> Errors<'t> {
    /// A collector for errors in `text`.
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
            list: Vec::new(),
        }
    }

    /// Records one error at `span` (a byte range into the text).
    pub(crate) fn push(
        &mut self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = span.map(|s| self.line_of(s.start));
        // Messages quote values (and parser errors quote whole lines): a URL among them may
        // carry a password or a key, which must not reach a terminal or a CI log.
        let message: String = message.into();
        self.list.push(ConfigError {
            line,
            field: field.into(),
            message: mask_url_secrets(&message).into_owned(),
        });
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let bytes = self.text.as_bytes();
        let end = offset.min(bytes.len());
        bytes[..end].iter().filter(|b| **b == b'\n').count() + 1
    }

    /// Whether nothing has been recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The errors recorded so far.
    pub(crate) fn into_vec(self) -> Vec<ConfigError> {
        self.list
    }
}

/// `text` with the secrets of every URL in it masked: the user info (`https://***@host`), query
/// values (`?key=***`) and the fragment (`#***`). Borrowed when there is no such URL.
pub fn mask_url_secrets(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(text.len(), |n| start + n);
        let url = &text[start..end];
        let masked = mask_url_rest(url);
        if masked != url {
            out.push_str(&text[copied..start]);
            out.push_str(&masked);
            copied = end;
        }
        from = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The part of a URL after `://`, its user info, query values and fragment masked.
fn mask_url_rest(rest: &str) -> String {
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let mut out = match before_query[..authority_end].rfind('@') {
        Some(at) => format!("***{}", &before_query[at..]),
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if !v.is_empty() => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str("***");
        }
    }
    out
}

/// Makes a parser or serde message fit on one line.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let e = Errors::new("a\nbb\n\nc");
        assert_eq!(e.line_of(0), 1);
        assert_eq!(e.line_of(1), 1);
        assert_eq!(e.line_of(2), 2);
        assert_eq!(e.line_of(6), 4);
        assert_eq!(e.line_of(999), 4);
    }

    #[test]
    fn display_lists_every_error_then_the_count() {
        let errs = ConfigErrors::new(
            "moat.toml",
            vec![
                ConfigError {
                    line: Some(12),
                    field: "models[1].fallbacks[0]".into(),
                    message: "unknown model \"x\"".into(),
                },
                ConfigError {
                    line: None,
                    field: String::new(),
                    message: "cannot read".into(),
                },
            ],
        );
        assert_eq!(
            errs.to_string(),
            "moat.toml: cannot read\nmoat.toml:12: models[1].fallbacks[0]: unknown model \"x\"\n2 errors in moat.toml"
        );
        assert_eq!(
            errs.errors[1].to_string(),
            "line 12: models[1].fallbacks[0]: unknown model \"x\""
        );
    }

    #[test]
    fn url_secrets_are_masked_and_other_text_is_left_alone() {
        assert_eq!(
            mask_url_secrets("\"https://bob:hunter2@api.x.test/v1\" must not contain credentials"),
            "\"https://***@api.x.test/v1\" must not contain credentials"
        );
        assert_eq!(
            mask_url_secrets("at http://h.test/v1?key=AIza123&mode=x&flag#tok=abc."),
            "at http://h.test/v1?key=***&mode=***&flag#***"
        );
        let plain = "expected something like \"https://api.openai.com/v1\"";
        assert!(matches!(mask_url_secrets(plain), Cow::Borrowed(_)));
        assert!(matches!(mask_url_secrets("no url"), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_joins_parser_lines() {
        assert_eq!(
            one_line("invalid table header\nexpected `.`, `]`"),
            "invalid table header; expected `.`, `]`"
        );
    }
}
