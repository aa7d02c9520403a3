//! Compiled filters: one Aho-Corasick automaton for a filter's literals and one `RegexSet` for
//! its regexes, run over the system texts and the user-side turns of a request.

use std::path::Path;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use moat_config::{AppliesTo, FilterAction, FilterConfig};
use moat_protocol::view::{RequestView, Role};
use regex::{RegexBuilder, RegexSet, RegexSetBuilder};

use crate::patterns::{self, GuardError, PatternError, PatternList};

/// The most memory one compiled regex (and one filter's set of regexes) may take, per the
/// `regex` crate's `size_limit` and `dfa_size_limit`. A pattern file is configuration, but a
/// runaway pattern should fail at startup, not make every request slow.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Which texts of a request matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A system text.
    System,
    /// A user message, tool result or other client turn.
    User,
}

impl Part {
    /// `system` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::System => "system",
            Part::User => "user",
        }
    }
}

/// One filter's match on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The filter's name.
    pub filter: Arc<str>,
    /// What the filter does.
    pub action: FilterAction,
    /// The reason code of the entry that matched (see the pattern file format).
    pub reason: Arc<str>,
    /// Where it matched.
    pub part: Part,
    /// The line of the matching entry in the pattern file, for operators (not shown to clients).
    pub line: usize,
}

/// What the filters found in a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterOutcome {
    /// The first block filter that matched, in config order.
    pub blocked: Option<Hit>,
    /// Every flag filter that matched.
    pub flags: Vec<Hit>,
}

/// The filters of a config, compiled.
#[derive(Debug, Default)]
pub struct FilterSet {
    filters: Vec<Filter>,
}

#[derive(Debug)]
struct Filter {
    name: Arc<str>,
    action: FilterAction,
    applies_to: AppliesTo,
    tiers: Vec<String>,
    workflows: Vec<String>,
    matcher: Matcher,
}

#[derive(Debug)]
struct Matcher {
    literals: Option<AhoCorasick>,
    literal_meta: Vec<Meta>,
    regexes: Option<RegexSet>,
    regex_meta: Vec<Meta>,
    reasons: Vec<Arc<str>>,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    reason: usize,
    line: usize,
}

impl FilterSet {
    /// Loads and compiles each filter's pattern file, reporting every problem in every file.
    pub fn compile(configs: &[FilterConfig]) -> Result<FilterSet, GuardError> {
        let mut errors = Vec::new();
        let mut filters = Vec::with_capacity(configs.len());
        for config in configs {
            let read = patterns::load(&config.file).map_err(|e| vec![e]);
            match read.and_then(|(list, problems)| Filter::new(config, list, problems)) {
                Ok(filter) => filters.push(filter),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(FilterSet { filters })
        } else {
            Err(GuardError { errors })
        }
    }

    /// Compiles one filter from pattern file text already in memory (tests, tools); `config.file`
    /// only names it in errors.
    pub fn from_text(config: &FilterConfig, text: &str) -> Result<FilterSet, GuardError> {
        let (list, problems) = patterns::read(text.as_bytes(), &config.file);
        let filter = Filter::new(config, list, problems).map_err(|errors| GuardError { errors })?;
        Ok(FilterSet {
            filters: vec![filter],
        })
    }

    /// Whether there are no filters at all.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Runs every filter in scope for an account in `tier` using a key of `workflow` over the
    /// request's system texts and user-side turns (user messages, tool results, other roles:
    /// everything but the assistant's turns).
    pub fn check(
        &self,
        view: &RequestView<'_>,
        tier: &str,
        workflow: Option<&str>,
    ) -> FilterOutcome {
        let mut out = FilterOutcome::default();
        for f in &self.filters {
            let blocking = f.action == FilterAction::Block;
            if (blocking && out.blocked.is_some()) || !f.in_scope(tier, workflow) {
                continue;
            }
            if let Some(hit) = f.find(view) {
                if blocking {
                    out.blocked = Some(hit);
                } else {
                    out.flags.push(hit);
                }
            }
        }
        out
    }
}

impl Filter {
    /// Compiles `list`; `problems` are the errors already found reading it, reported together
    /// with the compile errors, in line order.
    fn new(
        config: &FilterConfig,
        list: PatternList,
        mut problems: Vec<PatternError>,
    ) -> Result<Filter, Vec<PatternError>> {
        let matcher = match Matcher::new(&list, &config.file) {
            Ok(m) if problems.is_empty() => m,
            Ok(_) => return Err(problems),
            Err(more) => {
                problems.extend(more);
                problems.sort_by_key(|e| e.line);
                return Err(problems);
            }
        };
        Ok(Filter {
            name: Arc::from(config.name.as_str()),
            action: config.action,
            applies_to: config.applies_to,
            tiers: config.tiers.clone(),
            workflows: config.workflows.clone(),
            matcher,
        })
    }

    /// Global without tiers and workflows; otherwise for the listed tiers and workflows.
    fn in_scope(&self, tier: &str, workflow: Option<&str>) -> bool {
        if self.tiers.is_empty() && self.workflows.is_empty() {
            return true;
        }
        self.tiers.iter().any(|t| t == tier)
            || workflow.is_some_and(|w| self.workflows.iter().any(|x| x == w))
    }

    fn find(&self, view: &RequestView<'_>) -> Option<Hit> {
        let system = view
            .system
            .iter()
            .filter(|_| self.applies_to.system)
            .map(|t| (Part::System, t.as_ref()));
        let user = view
            .turns
            .iter()
            .filter(|t| self.applies_to.user && t.role != Role::Assistant)
            .map(|t| (Part::User, t.text.as_ref()));
        system.chain(user).find_map(|(part, text)| {
            let meta = self.matcher.find(text)?;
            Some(Hit {
                filter: Arc::clone(&self.name),
                action: self.action,
                reason: Arc::clone(self.matcher.reasons.get(meta.reason)?),
                part,
                line: meta.line,
            })
        })
    }
}

impl Matcher {
    fn new(list: &PatternList, file: &Path) -> Result<Matcher, Vec<PatternError>> {
        let error = |line: Option<usize>, message: String| PatternError {
            file: file.to_path_buf(),
            line,
            message,
        };
        let mut errors = Vec::new();
        let literals = if list.literals.is_empty() {
            None
        } else {
            let built = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(list.literals.iter().map(|e| e.text.as_str()));
            match built {
                Ok(ac) => Some(ac),
                Err(e) => {
                    errors.push(error(None, format!("cannot compile the literals: {e}")));
                    None
                }
            }
        };
        for e in &list.regexes {
            let built = RegexBuilder::new(&e.text)
                .case_insensitive(true)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build();
            match built {
                Ok(re) if re.is_match("") => errors.push(error(
                    Some(e.line),
                    "regex matches empty text, so it would match every request".into(),
                )),
                Ok(_) => {}
                Err(err) => errors.push(error(
                    Some(e.line),
                    format!("invalid regex: {}", regex_problem(&err)),
                )),
            }
        }
        let regexes = if list.regexes.is_empty() || !errors.is_empty() {
            None
        } else {
            let built = RegexSetBuilder::new(list.regexes.iter().map(|e| e.text.as_str()))
                .case_insensitive(true)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build();
            match built {
                Ok(set) => Some(set),
                Err(err) => {
                    let message = format!(
                        "the file's regexes together are too large: {}",
                        regex_problem(&err)
                    );
                    errors.push(error(None, message));
                    None
                }
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let meta = |entries: &[patterns::Entry]| {
            entries
                .iter()
                .map(|e| Meta {
                    reason: e.reason,
                    line: e.line,
                })
                .collect()
        };
        Ok(Matcher {
            literals,
            literal_meta: meta(&list.literals),
            regexes,
            regex_meta: meta(&list.regexes),
            reasons: list.reasons.clone(),
        })
    }

    /// The entry that matches `text`: the leftmost literal, else the first regex in file order.
    fn find(&self, text: &str) -> Option<Meta> {
        if text.is_empty() {
            return None;
        }
        if let Some(m) = self.literals.as_ref().and_then(|ac| ac.find(text)) {
            return self.literal_meta.get(m.pattern().as_usize()).copied();
        }
        let set = self.regexes.as_ref()?;
        if !set.is_match(text) {
            return None;
        }
        let first = set.matches(text).iter().next()?;
        self.regex_meta.get(first).copied()
    }
}

/// A regex error on one line: the `regex` crate prints syntax errors over several lines (the
/// pattern, a caret, then the problem); the last line says what is wrong.
fn regex_problem(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text.lines().map(str::trim).rfind(|l| !l.is_empty());
    let problem = last.unwrap_or(&text);
    problem
        .strip_prefix("error: ")
        .unwrap_or(problem)
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
