//! A strict checker for the JSON-schema subset the structured-output tests use, so that "valid for
//! the schema" is asserted precisely (no validator crate is in the lock file).

use serde_json::Value;

/// A schema in the shape pydantic emits: `$defs`, `$ref`, enums, nullable fields, bounds, formats,
/// arrays with `minItems`, `additionalProperties: false`.
pub fn pydantic_schema() -> Value {
    serde_json::json!({
        "$defs": {
            "Unit": {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string"},
            "Reading": {
                "additionalProperties": false,
                "properties": {
                    "at": {"format": "date-time", "title": "At", "type": "string"},
                    "value": {"maximum": 60, "minimum": -60, "title": "Value", "type": "number"},
                    "unit": {"$ref": "#/$defs/Unit"}
                },
                "required": ["at", "value", "unit"],
                "title": "Reading",
                "type": "object"
            }
        },
        "additionalProperties": false,
        "properties": {
            "city": {"title": "City", "type": "string"},
            "days": {"maximum": 14, "minimum": 3, "title": "Days", "type": "integer"},
            "sunny": {"title": "Sunny", "type": "boolean"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Note"},
            "readings": {"items": {"$ref": "#/$defs/Reading"}, "minItems": 2, "title": "Readings",
                         "type": "array"},
            "kind": {"const": "forecast", "type": "string"}
        },
        "required": ["city", "days", "sunny", "note", "readings", "kind"],
        "title": "Forecast",
        "type": "object"
    })
}

/// Panics with the path of the first place `value` breaks `schema`.
pub fn assert_valid(value: &Value, schema: &Value) {
    check(value, schema, schema, "$");
}

fn check(value: &Value, schema: &Value, root: &Value, path: &str) {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = target.strip_prefix('#').unwrap();
        let resolved = root
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{path}: bad $ref {target}"));
        return check(value, resolved, root, path);
    }
    if let Some(expected) = schema.get("const") {
        assert_eq!(value, expected, "{path}: const");
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        assert!(
            options.contains(value),
            "{path}: {value} not in {options:?}"
        );
    }
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
        let ok = branches
            .iter()
            .any(|b| std::panic::catch_unwind(|| check(value, b, root, path)).is_ok());
        assert!(ok, "{path}: {value} matches no anyOf branch");
    }
    match schema.get("type").and_then(Value::as_str) {
        None => {}
        Some("string") => {
            let s = value
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {value} is not a string"));
            if schema.get("format").and_then(Value::as_str) == Some("date-time") {
                assert!(
                    s.len() >= 20 && s.as_bytes()[10] == b'T',
                    "{path}: {s} is not a date-time"
                );
            }
        }
        Some("integer") => {
            let n = value
                .as_i64()
                .unwrap_or_else(|| panic!("{path}: {value} is not an integer"));
            check_bounds(n as f64, schema, path);
        }
        Some("number") => {
            let n = value
                .as_f64()
                .unwrap_or_else(|| panic!("{path}: {value} is not a number"));
            check_bounds(n, schema, path);
        }
        Some("boolean") => assert!(value.is_boolean(), "{path}: {value} is not a boolean"),
        Some("null") => assert!(value.is_null(), "{path}: {value} is not null"),
        Some("array") => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{path}: {value} is not an array"));
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            assert!(items.len() as u64 >= min, "{path}: fewer than {min} items");
            for (i, item) in items.iter().enumerate() {
                check(item, &schema["items"], root, &format!("{path}[{i}]"));
            }
        }
        Some("object") => {
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("{path}: {value} is not an object"));
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = name.as_str().unwrap();
                assert!(object.contains_key(name), "{path}: missing required {name}");
            }
            for (name, field) in object {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => check(field, property, root, &format!("{path}.{name}")),
                    None => assert!(
                        schema.get("additionalProperties") != Some(&Value::Bool(false)),
                        "{path}: unexpected property {name}"
                    ),
                }
            }
        }
        Some(other) => panic!("{path}: the checker does not know type {other}"),
    }
}

fn check_bounds(n: f64, schema: &Value, path: &str) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        assert!(n >= min, "{path}: {n} < {min}");
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        assert!(n <= max, "{path}: {n} > {max}");
    }
}

#[test]
fn the_checker_catches_what_it_should() {
    let schema = pydantic_schema();
    let good = serde_json::json!({
        "city": "x", "days": 3, "sunny": true, "note": null, "kind": "forecast",
        "readings": [{"at": "2024-01-01T00:00:00Z", "value": 1, "unit": "celsius"},
                     {"at": "2024-01-01T00:00:00Z", "value": 1.5, "unit": "fahrenheit"}]
    });
    assert_valid(&good, &schema);
    let breaks = [
        ("/days", serde_json::json!(2)),
        ("/readings/0/unit", serde_json::json!("kelvin")),
        ("/kind", serde_json::json!("other")),
        ("/note", serde_json::json!(1)),
        ("/readings/1/at", serde_json::json!("today")),
    ];
    for (pointer, bad_value) in breaks {
        let mut bad = good.clone();
        *bad.pointer_mut(pointer).unwrap() = bad_value;
        let caught = std::panic::catch_unwind(|| assert_valid(&bad, &schema));
        assert!(caught.is_err(), "{pointer} not caught");
    }
    let mut short = good.clone();
    short["readings"].as_array_mut().unwrap().pop();
    assert!(std::panic::catch_unwind(|| assert_valid(&short, &schema)).is_err());
    let mut extra = good;
    extra["extra"] = serde_json::json!(1);
    assert!(std::panic::catch_unwind(|| assert_valid(&extra, &schema)).is_err());
}
