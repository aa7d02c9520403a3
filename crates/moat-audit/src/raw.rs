//! Reading a stored record without building a JSON tree of it: its top-level fields as raw JSON
//! text, and how deeply a raw value nests.
//!
//! A record's bodies are whatever a client or provider sent, nested as deeply as they like.
//! `serde_json` builds trees only up to [`MAX_TREE_DEPTH`] levels (its recursion limit, which
//! guards the stack), so a reader that parses a whole record into a `Value` fails on a record
//! whose body nests deeper. Raw values are checked iteratively and never hit that limit.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The deepest nesting `serde_json` parses into a tree (its recursion limit is 128 levels).
pub const MAX_TREE_DEPTH: usize = 127;

/// A JSON object's fields in order, each value kept as its raw text (borrowed from the input).
#[derive(Debug, Default)]
pub struct RawObject<'a> {
    /// The fields, in the order they were written.
    pub fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    /// Parses `json`, which must be a JSON object; its values are checked but not built.
    pub fn parse(json: &'a str) -> Result<RawObject<'a>, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The raw value of the field `name`.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .find_map(|(k, v)| (k.as_ref() == name).then_some(*v))
    }

    /// Removes every field called `name`.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(k, _)| k.as_ref() != name);
    }
}

impl Serialize for RawObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(RawObject { fields })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// How deeply `json` (valid JSON text) nests: 0 for a scalar, 1 for `[]` or `{"a":1}`, and so
/// on. Linear, no recursion, no allocation.
pub fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(nesting_depth("1"), 0);
        assert_eq!(nesting_depth(r#"{"a":"[[[{{\"]]"}"#), 1);
        assert_eq!(nesting_depth(r#"[{"a":[1]},[2]]"#), 3);
        assert_eq!(nesting_depth(&nested(10_000)), 10_000);
    }

    #[test]
    fn the_tree_limit_is_serde_json_s() {
        let at = nested(MAX_TREE_DEPTH);
        assert!(serde_json::from_str::<serde_json::Value>(&at).is_ok());
        let past = nested(MAX_TREE_DEPTH + 1);
        assert!(serde_json::from_str::<serde_json::Value>(&past).is_err());
    }

    #[test]
    fn a_record_with_a_deep_body_reads_field_by_field() {
        let body = nested(10_000);
        let json = format!(r#"{{"seq":3,"request_body":{{"full":{body}}},"end_user":"u"}}"#);
        let mut object = RawObject::parse(&json).unwrap();
        assert_eq!(object.get("seq").unwrap().get(), "3");
        assert_eq!(
            nesting_depth(object.get("request_body").unwrap().get()),
            10_001
        );
        object.remove("request_body");
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"seq":3,"end_user":"u"}"#
        );
        assert!(RawObject::parse("[1]").is_err());
    }
}
