//! Reads the TOML document section by section, so one broken table never hides errors in another.
//!
//! serde stops at the first error of a deserialize call. We therefore deserialize `[server]`,
//! `[store]`, `[keys]`, `[params]`, `[detection]` (and its `actions` and `model` tables),
//! `[admin]` and every `[[providers]]` / `[[models]]` / `[[filters]]` / `[[tiers]]` element on
//! its own, and when one fails we report the error, drop the offending key
//! from that table and try again, until it reads.

use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{ImDocument, Item, Key, Value};

use crate::error::{one_line, Errors};
use crate::governance::raw::{
    RawAccount, RawFailover, RawGovernance, RawPrice, RawRule, RawWorkflow,
};
use crate::raw::{
    RawActions, RawAdmin, RawDetection, RawFilter, RawKeys, RawModel, RawParams, RawProvider,
    RawServer, RawStore, RawTier,
};

/// The top-level sections, each read as far as it could be.
#[derive(Default)]
pub(crate) struct Document {
    /// `[server]`, or `None` when absent or unreadable (already reported).
    pub server: Option<Element<RawServer>>,
    /// `[store]`, or `None` when absent or unreadable (both already reported).
    pub store: Option<Element<RawStore>>,
    /// `[keys]`, or `None` when absent or unreadable (already reported).
    pub keys: Option<Element<RawKeys>>,
    /// The readable `[[providers]]` elements.
    pub providers: Vec<Element<RawProvider>>,
    /// Whether every `[[providers]]` element could be read.
    pub all_providers_read: bool,
    /// The readable `[[models]]` elements.
    pub models: Vec<Element<RawModel>>,
    /// Whether every `[[models]]` element could be read.
    pub all_models_read: bool,
    /// The readable `[[filters]]` elements.
    pub filters: Vec<Element<RawFilter>>,
    /// `[params]`, or `None` when absent or unreadable (already reported).
    pub params: Option<Element<RawParams>>,
    /// The readable `[[tiers]]` elements.
    pub tiers: Vec<Element<RawTier>>,
    /// Whether every `[[tiers]]` element could be read.
    pub all_tiers_read: bool,
    /// `[detection]` without its sub-tables, or `None` when absent or unreadable.
    pub detection: Option<Element<RawDetection>>,
    /// `[detection.actions]`, or `None` when absent or unreadable.
    pub detection_actions: Option<Element<RawActions>>,
    /// `[detection.model]` as a plain table, or `None` when absent or unreadable.
    pub detection_model: Option<Element<toml::Table>>,
    /// `[admin]`, or `None` when absent or unreadable.
    pub admin: Option<Element<RawAdmin>>,
    /// `[governance]`, or `None` when absent or unreadable.
    pub governance: Option<Element<RawGovernance>>,
    /// The readable `[[workflows]]` elements.
    pub workflows: Vec<Element<RawWorkflow>>,
    /// Whether every `[[workflows]]` element could be read.
    pub all_workflows_read: bool,
    /// The readable `[[accounts]]` elements.
    pub accounts: Vec<Element<RawAccount>>,
    /// The readable `[[prices]]` elements.
    pub prices: Vec<Element<RawPrice>>,
    /// The readable `[[routing_rules]]` elements.
    pub routing_rules: Vec<Element<RawRule>>,
    /// `[failover]`, or `None` when absent or unreadable.
    pub failover: Option<Element<RawFailover>>,
    /// `[audit]`, or `None` when absent or unreadable.
    pub audit: Option<Element<crate::audit::RawAudit>>,
}

/// One table read into its raw type, with what the conversion needs to place errors.
pub(crate) struct Element<T> {
    /// The raw values.
    pub value: T,
    /// The table's path, such as `providers[2]`.
    pub path: String,
    /// Where the table starts (its header, or its first key).
    pub span: Option<Range<usize>>,
    /// Each key of the table and where it is written.
    keys: Vec<(String, Option<Range<usize>>)>,
    /// Keys dropped because an error about them was already reported.
    removed: Vec<String>,
}

impl<T> Element<T> {
    /// The path of one of this table's fields.
    pub fn field(&self, key: &str) -> String {
        format!("{}.{}", self.path, key_name(key))
    }

    /// Where `key` is written, or else where the table starts.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, span)| span.clone())
            .or_else(|| self.span.clone())
    }

    /// Whether `key` was present but dropped after its error was reported.
    pub fn already_reported(&self, key: &str) -> bool {
        self.removed.iter().any(|k| k == key)
    }
}

/// Parses `text` and reads each section; `None` after a TOML syntax error (reported).
pub(crate) fn read(text: &str, errors: &mut Errors<'_>) -> Option<Document> {
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            errors.push(
                e.span(),
                "",
                format!("invalid TOML: {}", one_line(e.message())),
            );
            return None;
        }
    };
    let root = doc.as_table();
    let mut out = Document {
        all_providers_read: true,
        all_models_read: true,
        all_tiers_read: true,
        all_workflows_read: true,
        ..Document::default()
    };
    for (name, item) in root.iter() {
        let key_span = root.key(name).and_then(Key::span);
        match name {
            "server" => out.server = element(item, key_span, name.to_string(), errors),
            "store" => out.store = element(item, key_span, name.to_string(), errors),
            "keys" => out.keys = element(item, key_span, name.to_string(), errors),
            "providers" => {
                (out.providers, out.all_providers_read) = array(item, key_span, name, errors);
            }
            "models" => (out.models, out.all_models_read) = array(item, key_span, name, errors),
            "filters" => out.filters = array(item, key_span, name, errors).0,
            "params" => out.params = element(item, key_span, name.to_string(), errors),
            "tiers" => (out.tiers, out.all_tiers_read) = array(item, key_span, name, errors),
            "detection" => {
                out.detection = element(item, key_span.clone(), name.to_string(), errors);
                let sub = |key: &str| item.get(key).filter(|i| !i.is_none());
                if let Some(actions) = sub("actions") {
                    let path = "detection.actions".to_string();
                    out.detection_actions = element(actions, key_span.clone(), path, errors);
                }
                if let Some(model) = sub("model") {
                    let path = "detection.model".to_string();
                    out.detection_model = element(model, key_span, path, errors);
                }
            }
            "admin" => out.admin = element(item, key_span, name.to_string(), errors),
            "governance" => out.governance = element(item, key_span, name.to_string(), errors),
            "workflows" => {
                (out.workflows, out.all_workflows_read) = array(item, key_span, name, errors);
            }
            "accounts" => out.accounts = array(item, key_span, name, errors).0,
            "prices" => out.prices = array(item, key_span, name, errors).0,
            "routing_rules" => out.routing_rules = array(item, key_span, name, errors).0,
            "failover" => out.failover = element(item, key_span, name.to_string(), errors),
            "audit" => out.audit = element(item, key_span, name.to_string(), errors),
            other => errors.push(
                key_span,
                key_name(other),
                "unknown section; expected [server], [store], [keys], [[providers]], [[models]], \
                 [[filters]], [params], [[tiers]], [detection], [admin], [governance], \
                 [[workflows]], [[accounts]], [[prices]], [[routing_rules]], [failover] or [audit]",
            ),
        }
    }
    if root.get("store").is_none() {
        errors.push(
            None,
            "store",
            "missing required section [store] (for example `[store]` then `path = \"moat.db\"`)",
        );
    }
    Some(out)
}

/// Reads an array of tables element by element.
fn array<T: DeserializeOwned>(
    item: &Item,
    key_span: Option<Range<usize>>,
    name: &str,
    errors: &mut Errors<'_>,
) -> (Vec<Element<T>>, bool) {
    let items: Vec<Item> = match item {
        Item::ArrayOfTables(a) => a.iter().map(|t| Item::Table(t.clone())).collect(),
        Item::Value(Value::Array(a)) => a.iter().map(|v| Item::Value(v.clone())).collect(),
        _ => {
            errors.push(
                key_span,
                name,
                format!("expected an array of tables: write [[{name}]] above each entry"),
            );
            return (Vec::new(), false);
        }
    };
    let mut all_read = true;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match element(item, key_span.clone(), format!("{name}[{i}]"), errors) {
            Some(e) => out.push(e),
            None => all_read = false,
        }
    }
    (out, all_read)
}

/// Reads one table into `T`, reporting every key that does not fit and reading the rest.
fn element<T: DeserializeOwned>(
    item: &Item,
    fallback_span: Option<Range<usize>>,
    path: String,
    errors: &mut Errors<'_>,
) -> Option<Element<T>> {
    let (mut working, keys) = match item {
        Item::Table(t) => (
            t.clone().into_inline_table(),
            key_spans(t.iter().map(|(k, _)| t.key(k))),
        ),
        Item::Value(Value::InlineTable(t)) => {
            (t.clone(), key_spans(t.iter().map(|(k, _)| t.key(k))))
        }
        _ => {
            errors.push(item.span().or(fallback_span), path, "expected a table");
            return None;
        }
    };
    let span = item
        .span()
        .or_else(|| keys.first().and_then(|(_, s)| s.clone()))
        .or(fallback_span);
    let mut removed: Vec<String> = Vec::new();
    loop {
        let error = match T::deserialize(Value::InlineTable(working.clone()).into_deserializer()) {
            Ok(value) => {
                return Some(Element {
                    value,
                    path,
                    span,
                    keys,
                    removed,
                })
            }
            Err(e) => e,
        };
        let message = one_line(error.message());
        let located = error.span().and_then(|s| locate_item(item, s.start));
        match located.as_deref() {
            Some([Segment::Key(top), ..]) if working.remove(top).is_some() => {
                let field = format!("{path}{}", render(located.as_deref().unwrap_or_default()));
                errors.push(error.span(), field, message);
                removed.push(top.clone());
            }
            _ => {
                // Not attributable to one key: report it on the table and give up on the table.
                errors.push(error.span().or(span), path, message);
                return None;
            }
        }
    }
}

fn key_spans<'a>(
    keys: impl Iterator<Item = Option<&'a Key>>,
) -> Vec<(String, Option<Range<usize>>)> {
    keys.flatten()
        .map(|k| (k.get().to_string(), k.span()))
        .collect()
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// The path to the innermost key, value or element containing byte `pos`.
fn locate_item(item: &Item, pos: usize) -> Option<Vec<Segment>> {
    match item {
        Item::None => None,
        Item::Value(v) => locate_value(v, pos),
        Item::Table(t) => locate_pairs(t.iter().filter_map(|(k, _)| t.get_key_value(k)), pos),
        Item::ArrayOfTables(a) => a.iter().enumerate().find_map(|(i, t)| {
            let inner = locate_pairs(t.iter().filter_map(|(k, _)| t.get_key_value(k)), pos);
            indexed(i, inner, t.span(), pos)
        }),
    }
}

fn locate_value(value: &Value, pos: usize) -> Option<Vec<Segment>> {
    match value {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| indexed(i, locate_value(v, pos), v.span(), pos)),
        Value::InlineTable(t) => {
            locate_pairs(t.iter().filter_map(|(k, _)| t.get_key_value(k)), pos)
        }
        _ => None,
    }
}

fn locate_pairs<'a>(
    pairs: impl Iterator<Item = (&'a Key, &'a Item)>,
    pos: usize,
) -> Option<Vec<Segment>> {
    for (key, item) in pairs {
        let here = Segment::Key(key.get().to_string());
        if contains(key.span(), pos) {
            return Some(vec![here]);
        }
        if let Some(mut inner) = locate_item(item, pos) {
            inner.insert(0, here);
            return Some(inner);
        }
        if contains(item.span(), pos) {
            return Some(vec![here]);
        }
    }
    None
}

fn indexed(
    i: usize,
    inner: Option<Vec<Segment>>,
    span: Option<Range<usize>>,
    pos: usize,
) -> Option<Vec<Segment>> {
    match inner {
        Some(mut inner) => {
            inner.insert(0, Segment::Index(i));
            Some(inner)
        }
        None if contains(span, pos) => Some(vec![Segment::Index(i)]),
        None => None,
    }
}

fn contains(span: Option<Range<usize>>, pos: usize) -> bool {
    span.is_some_and(|s| s.start <= pos && pos < s.end.max(s.start + 1))
}

/// `.key[0].other`, quoting keys that are not bare TOML keys.
fn render(path: &[Segment]) -> String {
    path.iter()
        .map(|s| match s {
            Segment::Key(k) => format!(".{}", key_name(k)),
            Segment::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// A key as written in a path: bare when TOML allows it, quoted otherwise.
pub(crate) fn key_name(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn locate(text: &str, needle: &str) -> String {
        let doc = ImDocument::parse(text).unwrap();
        let pos = text.find(needle).unwrap();
        render(&locate_item(doc.as_item(), pos).unwrap())
    }

    #[test]
    fn locates_keys_values_and_elements() {
        let text = "[[models]]\nname = \"a\"\ntargets = [{ provider = \"p\", model = \"m\" }, { bad = 1 }]\n[[models]]\nfallbacks = [\"x\", \"y\"]\n";
        assert_eq!(locate(text, "\"a\""), ".models[0].name");
        assert_eq!(locate(text, "bad"), ".models[0].targets[1].bad");
        assert_eq!(locate(text, "\"y\""), ".models[1].fallbacks[1]");
        assert_eq!(locate(text, "\"m\""), ".models[0].targets[0].model");
    }

    #[test]
    fn quotes_keys_that_are_not_bare() {
        assert_eq!(key_name("x-extra"), "x-extra");
        assert_eq!(key_name("a.b"), "\"a.b\"");
        assert_eq!(key_name(""), "\"\"");
    }
}
