//! Small accessors over `serde_json` values that report the path of what is wrong.

use serde_json::{Map, Value};

use super::TranslateError;

pub(super) type Object = Map<String, Value>;

/// `parent.key`, or `key` at the top level.
pub(super) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(super) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A field that is present and not `null` (OpenAI clients send `null` for "unset").
pub(super) fn field<'a>(object: &'a Object, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

/// A string field, if present and a string.
pub(super) fn str_field<'a>(object: &'a Object, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// `value` as an object, or an error naming `path`.
pub(super) fn expect_object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Object, TranslateError> {
    value.as_object().ok_or_else(|| {
        let what = if path.is_empty() {
            "the request body"
        } else {
            path
        };
        TranslateError::invalid(path, format!("{what} must be an object"))
    })
}

/// `value` as an array, or an error naming `path`.
pub(super) fn expect_array<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Vec<Value>, TranslateError> {
    value
        .as_array()
        .ok_or_else(|| TranslateError::invalid(path, format!("{path} must be an array")))
}

/// The required string field `key` of `object` at `path`.
pub(super) fn expect_str<'a>(
    object: &'a Object,
    key: &str,
    path: &str,
) -> Result<&'a str, TranslateError> {
    str_field(object, key).ok_or_else(|| {
        let param = child(path, key);
        TranslateError::invalid(&param, format!("{param} must be a string"))
    })
}

/// Copies `from[key]` into `to[key]` when present and not `null`.
pub(super) fn copy_field(from: &Object, to: &mut Object, key: &str) {
    copy_as(from, key, to, key);
}

/// Copies `from[from_key]` into `to[to_key]` when present and not `null`.
pub(super) fn copy_as(from: &Object, from_key: &str, to: &mut Object, to_key: &str) {
    if let Some(value) = field(from, from_key) {
        to.insert(to_key.to_owned(), value.clone());
    }
}

/// A positive integer field, `None` when absent, an error when present but not one.
pub(super) fn positive_int(object: &Object, key: &str) -> Result<Option<u64>, TranslateError> {
    match field(object, key) {
        None => Ok(None),
        Some(value) => value.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
            TranslateError::invalid(key, format!("{key} must be a positive integer"))
        }),
    }
}

/// An upstream body as an object, or an upstream error.
pub(super) fn upstream_object<'a>(
    value: &'a Value,
    what: &str,
) -> Result<&'a Object, TranslateError> {
    value
        .as_object()
        .ok_or_else(|| TranslateError::upstream(format!("upstream {what} is not a JSON object")))
}
