//! Example values for a JSON schema: what the sim puts in tool arguments and structured answers.
//!
//! One generator serves both. It follows the schema forms models are given in practice: `const`,
//! `enum`, `type` (a list of types picks its first non-null one), `$ref` into the same document
//! (`#/$defs/...` and `#/definitions/...`, as pydantic emits), `anyOf`/`oneOf` (first non-null
//! branch), `allOf` (objects merged), string `format`s and lengths, number bounds and array sizes.
//! Depth and total size are bounded, so a hostile schema can neither hang it nor blow the stack.

use serde_json::{Map, Number, Value};

use crate::text::{Rng, WORDS};

/// Deepest nesting followed; deeper values are the smallest of their type.
const MAX_DEPTH: usize = 16;

/// From this depth on, objects get only their required properties, arrays only `minItems` items
/// and nullable values null, so recursive schemas (a tree of nodes) end in valid leaves.
const SHALLOW_DEPTH: usize = 4;

/// Values generated at most; past it objects and arrays come out empty.
const MAX_NODES: usize = 2_000;

/// Items of an array when `minItems` does not ask for more.
const DEFAULT_ITEMS: usize = 1;

/// Most items generated for one array, whatever `minItems` says.
const MAX_ITEMS: usize = 64;

/// Characters of padding all strings of one example get at most, whatever `minLength` says.
const MAX_PADDING: usize = 16_384;

/// Which object properties an example sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Only the `required` ones (tool arguments).
    Required,
    /// Every listed property (structured answers).
    All,
}

/// How an example's strings are worded.
#[derive(Clone, Debug)]
pub(crate) enum Words {
    /// Always `sim` (tool arguments).
    Fixed,
    /// Words from the sim's vocabulary, drawn from this seed (structured answers).
    Seeded(u64),
}

/// A value `schema` accepts (for the forms listed in the module doc).
pub(crate) fn example(schema: &Value, fill: Fill, words: Words) -> Value {
    let rng = match words {
        Words::Fixed => None,
        Words::Seeded(seed) => Some(Rng::new(seed)),
    };
    let mut generator = Generator {
        root: schema,
        fill,
        rng,
        nodes: 0,
        padding: MAX_PADDING,
    };
    generator.value(schema, 0)
}

struct Generator<'a> {
    root: &'a Value,
    fill: Fill,
    rng: Option<Rng>,
    nodes: usize,
    /// Padding characters left for `minLength`.
    padding: usize,
}

impl<'a> Generator<'a> {
    fn value(&mut self, schema: &'a Value, depth: usize) -> Value {
        self.nodes = self.nodes.saturating_add(1);
        if let Some(value) = schema.get("const") {
            return value.clone();
        }
        if let Some(first) = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return first.clone();
        }
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            return match self.resolve(target) {
                Some(target) if depth < MAX_DEPTH => self.value(target, depth + 1),
                _ => self.word(),
            };
        }
        // Deep down, a nullable value is null, so recursive schemas (`Optional[Node]`) end.
        let shallow = depth >= SHALLOW_DEPTH;
        if shallow && allows_null(schema) {
            return Value::Null;
        }
        match schema_type(schema) {
            Some("string") => self.string(schema),
            Some("integer") => integer(schema),
            Some("number") => number(schema),
            Some("boolean") => Value::Bool(true),
            Some("null") => Value::Null,
            Some("array") => self.array(schema, depth),
            Some("object") => self.object(schema, depth),
            _ => self.untyped(schema, depth),
        }
    }

    /// A schema without `type`: a combinator, or an object or array by its keywords.
    fn untyped(&mut self, schema: &'a Value, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            return self.word();
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                let deep = depth >= SHALLOW_DEPTH;
                let branch = branches
                    .iter()
                    .find(|b| (schema_type(b) == Some("null")) == deep)
                    .or(branches.first());
                if let Some(branch) = branch {
                    return self.value(branch, depth + 1);
                }
            }
        }
        if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
            return self.all_of(branches, depth);
        }
        if schema.get("properties").is_some() || schema.get("required").is_some() {
            self.object(schema, depth)
        } else if schema.get("items").is_some() {
            self.array(schema, depth)
        } else {
            self.word()
        }
    }

    /// Every branch's example, objects merged into one; otherwise the first branch's.
    fn all_of(&mut self, branches: &'a [Value], depth: usize) -> Value {
        let mut merged: Option<Value> = None;
        for branch in branches {
            let value = self.value(branch, depth + 1);
            merged = match (merged, value) {
                (None, value) => Some(value),
                (Some(Value::Object(mut all)), Value::Object(more)) => {
                    all.extend(more);
                    Some(Value::Object(all))
                }
                (Some(first), _) => Some(first),
            };
        }
        merged.unwrap_or_else(|| self.word())
    }

    fn object(&mut self, schema: &'a Value, depth: usize) -> Value {
        let mut object = Map::new();
        if depth >= MAX_DEPTH || self.nodes >= MAX_NODES {
            return Value::Object(object);
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let all = self.fill == Fill::All && depth < SHALLOW_DEPTH;
        if all {
            for (name, property) in properties.into_iter().flatten() {
                let value = self.value(property, depth + 1);
                object.insert(name.clone(), value);
            }
        }
        for name in required {
            if object.contains_key(name) {
                continue;
            }
            let value = match properties.and_then(|p| p.get(name)) {
                Some(property) => self.value(property, depth + 1),
                None => self.word(),
            };
            object.insert(name.to_owned(), value);
        }
        Value::Object(object)
    }

    fn array(&mut self, schema: &'a Value, depth: usize) -> Value {
        let min = bound(schema, "minItems").unwrap_or(0);
        let max = bound(schema, "maxItems").unwrap_or(usize::MAX);
        let wanted = if depth < SHALLOW_DEPTH {
            min.max(DEFAULT_ITEMS)
        } else {
            min
        };
        let count = wanted.min(max).min(MAX_ITEMS);
        if depth >= MAX_DEPTH || self.nodes >= MAX_NODES {
            return Value::Array(Vec::new());
        }
        let items = schema.get("items").unwrap_or(&Value::Null);
        // Tuple forms: `prefixItems` (2020-12) or an array `items` (draft 7).
        let prefix = schema
            .get("prefixItems")
            .or_else(|| items.as_array().map(|_| items))
            .and_then(Value::as_array);
        let mut out = Vec::new();
        if let Some(prefix) = prefix {
            for item in prefix.iter().take(MAX_ITEMS) {
                out.push(self.value(item, depth + 1));
            }
            return Value::Array(out);
        }
        for _ in 0..count {
            out.push(self.value(items, depth + 1));
        }
        Value::Array(out)
    }

    fn string(&mut self, schema: &Value) -> Value {
        let formatted = schema
            .get("format")
            .and_then(Value::as_str)
            .and_then(format_example);
        let mut text = match formatted {
            Some(text) => text.to_owned(),
            None => self.word_text(),
        };
        let min = bound(schema, "minLength").unwrap_or(0);
        let short = min.saturating_sub(text.chars().count()).min(self.padding);
        self.padding -= short;
        text.extend(std::iter::repeat_n('x', short));
        let max = bound(schema, "maxLength").unwrap_or(usize::MAX);
        if text.chars().count() > max {
            text = text.chars().take(max).collect();
        }
        Value::String(text)
    }

    fn word(&mut self) -> Value {
        Value::String(self.word_text())
    }

    fn word_text(&mut self) -> String {
        match &mut self.rng {
            None => "sim".to_owned(),
            Some(rng) => WORDS[rng.below(WORDS.len())].to_owned(),
        }
    }

    /// The schema a local reference (`#`, `#/$defs/Name`, any JSON pointer) points to.
    fn resolve(&self, target: &str) -> Option<&'a Value> {
        let pointer = target.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        // `serde_json` undoes the `~0`/`~1` escapes of JSON pointers.
        self.root.pointer(pointer)
    }
}

/// The schema's `type`: a string, or the first non-null one of a list (`null` if only that).
fn schema_type(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or_else(|| types.iter().filter_map(Value::as_str).next()),
        _ => None,
    }
}

/// Whether `type` lists `null` among other types.
fn allows_null(schema: &Value) -> bool {
    schema
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t == "null"))
}

/// A fixed valid value for the common string formats.
fn format_example(format: &str) -> Option<&'static str> {
    Some(match format {
        "date-time" => "2024-01-01T00:00:00Z",
        "date" => "2024-01-01",
        "time" => "00:00:00Z",
        "duration" => "P1D",
        "email" | "idn-email" => "sim@example.com",
        "hostname" | "idn-hostname" => "example.com",
        "ipv4" => "127.0.0.1",
        "ipv6" => "::1",
        "uri" | "iri" | "url" => "https://example.com/sim",
        "uri-reference" | "iri-reference" => "/sim",
        "uuid" => "00000000-0000-4000-8000-000000000000",
        _ => return None,
    })
}

/// A non-negative integer keyword such as `minItems`, saturated to `usize`.
fn bound(schema: &Value, key: &str) -> Option<usize> {
    let n = schema.get(key)?.as_u64()?;
    Some(usize::try_from(n).unwrap_or(usize::MAX))
}

/// 1 when the bounds allow it, otherwise the closest integer inside them.
fn integer(schema: &Value) -> Value {
    let low = [
        schema.get("minimum").and_then(Value::as_f64).map(f64::ceil),
        schema
            .get("exclusiveMinimum")
            .and_then(Value::as_f64)
            .map(|m| m.floor() + 1.0),
    ]
    .into_iter()
    .flatten()
    .fold(f64::NEG_INFINITY, f64::max);
    let high = [
        schema
            .get("maximum")
            .and_then(Value::as_f64)
            .map(f64::floor),
        schema
            .get("exclusiveMaximum")
            .and_then(Value::as_f64)
            .map(|m| m.ceil() - 1.0),
    ]
    .into_iter()
    .flatten()
    .fold(f64::INFINITY, f64::min);
    let mut n = 1.0_f64.max(low).min(high);
    if let Some(step) = schema.get("multipleOf").and_then(Value::as_f64) {
        if step >= 1.0 && step.fract() == 0.0 {
            let up = (n / step).ceil() * step;
            n = if up <= high {
                up
            } else {
                (n / step).floor() * step
            };
        }
    }
    if !n.is_finite() {
        return Value::from(1);
    }
    // `as` saturates: absurd bounds give the nearest i64.
    Value::from(n as i64)
}

/// 1 when the bounds allow it, otherwise a number inside them.
fn number(schema: &Value) -> Value {
    let min = schema.get("minimum").and_then(Value::as_f64);
    let max = schema.get("maximum").and_then(Value::as_f64);
    let xmin = schema.get("exclusiveMinimum").and_then(Value::as_f64);
    let xmax = schema.get("exclusiveMaximum").and_then(Value::as_f64);
    let low = min.or(xmin);
    let high = max.or(xmax);
    let fits = |n: f64| {
        min.is_none_or(|m| n >= m)
            && max.is_none_or(|m| n <= m)
            && xmin.is_none_or(|m| n > m)
            && xmax.is_none_or(|m| n < m)
    };
    let candidates = [
        Some(1.0),
        min,
        max,
        low.zip(high).map(|(l, h)| l / 2.0 + h / 2.0),
        xmin.map(|m| m + 1.0),
        xmax.map(|m| m - 1.0),
    ];
    let n = candidates
        .into_iter()
        .flatten()
        .find(|n| n.is_finite() && fits(*n))
        .unwrap_or(1.0);
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Value::from(n as i64);
    }
    Number::from_f64(n).map_or_else(|| Value::from(1), Value::Number)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(schema: &Value) -> Value {
        example(schema, Fill::All, Words::Fixed)
    }

    #[test]
    fn required_only_or_every_property() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "required": ["a"]
        });
        assert_eq!(
            example(&schema, Fill::Required, Words::Fixed),
            json!({"a": "sim"})
        );
        assert_eq!(all(&schema), json!({"a": "sim", "b": 1}));
    }

    #[test]
    fn refs_as_pydantic_emits_them() {
        let schema = json!({
            "$defs": {
                "Unit": {"enum": ["c", "f"], "type": "string"},
                "Place": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}
            },
            "properties": {
                "unit": {"$ref": "#/$defs/Unit"},
                "place": {"$ref": "#/$defs/Place"},
                "old": {"$ref": "#/definitions/Old"},
                "maybe": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Place"}], "default": null}
            },
            "definitions": {"Old": {"type": "boolean"}},
            "required": ["unit", "place", "old"],
            "type": "object"
        });
        assert_eq!(
            all(&schema),
            json!({"unit": "c", "place": {"city": "sim"}, "old": true,
                   "maybe": {"city": "sim"}})
        );
    }

    #[test]
    fn bounds_formats_and_sizes_are_honoured() {
        let schema = json!({
            "type": "object",
            "properties": {
                "age": {"type": "integer", "minimum": 18, "maximum": 99},
                "neg": {"type": "integer", "exclusiveMaximum": 0},
                "step": {"type": "integer", "minimum": 3, "multipleOf": 5},
                "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "when": {"type": "string", "format": "date-time"},
                "code": {"type": "string", "minLength": 5, "maxLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
                "either": {"type": ["null", "number"]},
                "both": {"allOf": [
                    {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                    {"type": "object", "properties": {"y": {"type": "boolean"}}, "required": ["y"]}
                ]}
            }
        });
        assert_eq!(
            all(&schema),
            json!({
                "age": 18, "neg": -1, "step": 5, "ratio": 0.5,
                "when": "2024-01-01T00:00:00Z", "code": "simxx",
                "tags": ["sim", "sim"], "pair": [1, "sim"], "either": 1,
                "both": {"x": 1, "y": true}
            })
        );
    }

    #[test]
    fn seeded_words_are_deterministic() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let one = example(&schema, Fill::All, Words::Seeded(7));
        assert_eq!(one, example(&schema, Fill::All, Words::Seeded(7)));
        let word = one["a"].as_str().unwrap();
        assert!(WORDS.contains(&word), "{word}");
    }

    #[test]
    fn recursive_schemas_end_in_valid_leaves() {
        let schema = json!({
            "$defs": {"Node": {"type": "object", "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
            }, "required": ["name", "children"]}},
            "$ref": "#/$defs/Node"
        });
        let value = all(&schema);
        fn check(node: &Value) -> usize {
            assert!(node["name"].is_string(), "{node}");
            node["children"]
                .as_array()
                .unwrap()
                .iter()
                .map(check)
                .max()
                .unwrap_or(0)
                + 1
        }
        assert!(check(&value) <= SHALLOW_DEPTH + 1);

        let linked = json!({
            "$defs": {"Link": {"type": "object", "properties": {
                "next": {"anyOf": [{"$ref": "#/$defs/Link"}, {"type": "null"}]},
                "prev": {"type": ["object", "null"], "properties": {}}
            }, "required": ["next", "prev"]}},
            "$ref": "#/$defs/Link"
        });
        let mut node = all(&linked);
        let mut length = 0;
        while node.is_object() {
            assert!(node["prev"].is_object() || node["prev"].is_null(), "{node}");
            node = node["next"].clone();
            length += 1;
        }
        assert!(node.is_null() && length >= 2, "{length}");
    }

    #[test]
    fn hostile_schemas_stay_small_and_finite() {
        let mut deep = json!({"type": "string"});
        for _ in 0..500 {
            deep = json!({"anyOf": [deep]});
        }
        let _ = all(&deep);
        let looping = json!({"$ref": "#"});
        assert_eq!(all(&looping), json!("sim"));
        // 20 required properties of the same object, nested: exponential without a budget.
        let names: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let props: Map<String, Value> = names
            .iter()
            .map(|n| (n.clone(), json!({"$ref": "#", "minItems": 64})))
            .collect();
        let wide = json!({"type": "object", "properties": props, "required": names});
        let text = all(&wide).to_string();
        assert!(text.len() < 1_000_000, "{}", text.len());
        let huge = json!({"type": "array", "items": {"type": "array", "minItems": 1_000_000_000u64,
                          "items": {"type": "string", "minLength": 1_000_000_000u64}},
                          "minItems": 1_000_000_000u64});
        assert!(all(&huge).to_string().len() < 100_000);
    }
}
