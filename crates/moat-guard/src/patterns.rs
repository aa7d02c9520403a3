//! Pattern files: the format, the reader, and errors that name the file and line.
//!
//! A pattern file is UTF-8 text with one entry per line:
//! - blank lines and lines starting with `#` are ignored; surrounding spaces are trimmed;
//! - `re:<regex>` is a regular expression (Rust `regex` syntax, case-insensitive);
//! - `@reason <code>` sets the reason code (`[a-z0-9_]+`) of the entries below it, reported
//!   with every match (the default is `pattern_match`);
//! - `lit:<text>` is a literal, for the rare literal that starts with `#`, `re:` or `@`;
//! - any other line is a literal, matched ASCII case-insensitively anywhere in a text.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The reason code of entries before any `@reason` line.
pub const DEFAULT_REASON: &str = "pattern_match";

/// One problem in a pattern file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading the filters, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.errors))]
pub struct GuardError {
    /// The problems, file by file in config order, each file's in line order.
    pub errors: Vec<PatternError>,
}

fn render(errors: &[PatternError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// One entry: its text (a literal or a regex) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The literal or the regex source.
    pub text: String,
    /// 1-based line in the file.
    pub line: usize,
    /// Index into [`PatternList::reasons`].
    pub reason: usize,
}

/// A pattern file, read but not compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternList {
    /// Literal entries, in file order.
    pub literals: Vec<Entry>,
    /// Regex entries, in file order.
    pub regexes: Vec<Entry>,
    /// Reason codes, the default first.
    pub reasons: Vec<Arc<str>>,
}

/// Reads the pattern file at `path`: what [`read`] returns, or why the file cannot be read.
pub fn load(path: &Path) -> Result<(PatternList, Vec<PatternError>), PatternError> {
    let bytes = std::fs::read(path).map_err(|e| PatternError {
        file: path.to_path_buf(),
        line: None,
        message: format!("cannot read the pattern file: {e}"),
    })?;
    Ok(read(&bytes, path))
}

/// Reads pattern file `bytes`; `file` names it in errors. Reports every bad line.
pub fn parse(bytes: &[u8], file: &Path) -> Result<PatternList, Vec<PatternError>> {
    let (list, errors) = read(bytes, file);
    if errors.is_empty() {
        Ok(list)
    } else {
        Err(errors)
    }
}

/// Reads what it can of pattern file `bytes`, and every problem found: the good lines are still
/// returned, so that compiling them can report its own errors in the same pass.
pub fn read(bytes: &[u8], file: &Path) -> (PatternList, Vec<PatternError>) {
    let mut errors = Vec::new();
    let error = |line: usize, message: String| PatternError {
        file: file.to_path_buf(),
        line: Some(line),
        message,
    };
    let mut out = PatternList {
        literals: Vec::new(),
        regexes: Vec::new(),
        reasons: vec![Arc::from(DEFAULT_REASON)],
    };
    let mut reason = 0;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            errors.push(error(n, "not valid UTF-8".into()));
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(code) = line.strip_prefix("@reason") {
            let code = code.trim();
            if is_code(code) {
                reason = reason_index(&mut out.reasons, code);
            } else {
                let message = format!("invalid reason code \"{code}\": use lowercase letters, digits and _, as in `@reason system_prompt_extraction`");
                errors.push(error(n, message));
            }
        } else if let Some(re) = line.strip_prefix("re:") {
            let re = re.trim();
            if re.is_empty() {
                errors.push(error(n, "empty regex after `re:`".into()));
            } else {
                out.regexes.push(Entry {
                    text: re.to_string(),
                    line: n,
                    reason,
                });
            }
        } else if line.starts_with('@') {
            let message = "unknown directive: the only one is `@reason <code>` (write `lit:@...` for a literal starting with @)";
            errors.push(error(n, message.into()));
        } else {
            let literal = line.strip_prefix("lit:").unwrap_or(line);
            if literal.is_empty() {
                errors.push(error(n, "empty literal after `lit:`".into()));
            } else {
                out.literals.push(Entry {
                    text: literal.to_string(),
                    line: n,
                    reason,
                });
            }
        }
    }
    if errors.is_empty() && out.literals.is_empty() && out.regexes.is_empty() {
        errors.push(PatternError {
            file: file.to_path_buf(),
            line: None,
            message: "has no patterns: a filter needs at least one literal or `re:` line".into(),
        });
    }
    (out, errors)
}

fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn reason_index(reasons: &mut Vec<Arc<str>>, code: &str) -> usize {
    match reasons.iter().position(|r| &**r == code) {
        Some(i) => i,
        None => {
            reasons.push(Arc::from(code));
            reasons.len() - 1
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<PatternList, Vec<PatternError>> {
        parse(text.as_bytes(), Path::new("rules/x.txt"))
    }

    #[test]
    fn reads_literals_regexes_comments_and_reasons() {
        let list = read(
            "# header\n\n  ignore previous instructions  \r\n@reason cot\nre:show\\s+your\\s+reasoning\nlit:#hashtag\nlit:re:literal\n",
        )
        .unwrap();
        let lits: Vec<_> = list
            .literals
            .iter()
            .map(|e| (e.text.as_str(), e.line, &*list.reasons[e.reason]))
            .collect();
        assert_eq!(
            lits,
            vec![
                ("ignore previous instructions", 3, "pattern_match"),
                ("#hashtag", 6, "cot"),
                ("re:literal", 7, "cot"),
            ]
        );
        assert_eq!(list.regexes.len(), 1);
        assert_eq!(list.regexes[0].text, "show\\s+your\\s+reasoning");
        assert_eq!(list.regexes[0].line, 5);
        assert_eq!(&*list.reasons[list.regexes[0].reason], "cot");
    }

    #[test]
    fn every_bad_line_is_reported_with_file_and_line() {
        let errors = read("ok\nre:\n@reason Bad-Code\n@include x\nlit:\n").unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown[0].starts_with("rules/x.txt:2: empty regex"));
        assert!(shown[1].starts_with("rules/x.txt:3: invalid reason code \"Bad-Code\""));
        assert!(shown[2].starts_with("rules/x.txt:4: unknown directive"));
        assert!(shown[3].starts_with("rules/x.txt:5: empty literal"));
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let errors = parse(b"fine\n\xff\xfe\n", Path::new("p.txt")).unwrap_err();
        assert_eq!(errors[0].line, Some(2));
        assert!(errors[0].message.contains("UTF-8"));
    }

    #[test]
    fn a_file_without_patterns_is_an_error() {
        let errors = read("# only comments\n\n").unwrap_err();
        assert_eq!(errors[0].line, None);
        assert!(errors[0].to_string().contains("has no patterns"));
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let error = load(Path::new("/nonexistent/moat/rules.txt")).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("/nonexistent/moat/rules.txt: cannot read the pattern file"));
    }
}
