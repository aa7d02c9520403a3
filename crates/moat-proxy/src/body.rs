//! The client's request body: a cheap look at the fields the gateway needs, and byte-level edits for
//! passthrough, so a same-protocol request goes upstream exactly as sent except for the edited
//! fields (numbers, key order and unknown fields untouched, and no JSON tree built).

use crate::error::GatewayError;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// What the gateway reads from a request body before routing it.
#[derive(Debug, Clone)]
pub struct BodyPeek {
    /// The `model` the client asked for.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// `encoding_format: "base64"` (embeddings).
    pub wants_base64: bool,
    /// The largest output cap the body sets (`max_tokens`, `max_completion_tokens`,
    /// `max_output_tokens`), when it sets one.
    pub max_output: Option<u64>,
    /// `n`, the number of choices asked for (1 when absent).
    pub choices: u64,
    model_span: (usize, usize),
    stream_options_span: Option<(usize, usize)>,
}

/// The fields read, as raw JSON text: `None` when absent, `Some("null")` when null (a plain
/// `Option` would fold the two together, and a `null` field must still be edited in place).
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    model: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    stream: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    stream_options: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    encoding_format: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    max_tokens: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    max_output_tokens: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    n: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Reads the routing fields of a body that must be a JSON object, checking their types.
pub fn peek(body: &[u8]) -> Result<BodyPeek, GatewayError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| body[i]) {
        None => {
            return Err(GatewayError::invalid(
                "request body is empty; expected a JSON object",
                None,
            ))
        }
        Some(b'{') => {}
        Some(_) => {
            return Err(GatewayError::invalid(
                "request body must be a JSON object",
                None,
            ))
        }
    }
    let fields: Fields<'_> =
        serde_json::from_slice(body).map_err(|e| GatewayError::invalid_json(&e))?;
    let model_raw = fields.model.filter(|m| m.get() != "null").ok_or_else(|| {
        GatewayError::invalid("you must provide a model parameter", Some("model"))
    })?;
    let model: String = serde_json::from_str(model_raw.get())
        .map_err(|_| GatewayError::invalid("'model' must be a string", Some("model")))?;
    if model.is_empty() {
        return Err(GatewayError::invalid(
            "you must provide a model parameter",
            Some("model"),
        ));
    }
    let stream = match fields.stream.map(RawValue::get) {
        None | Some("null") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(GatewayError::invalid(
                "'stream' must be a boolean",
                Some("stream"),
            ))
        }
    };
    let include_usage = fields
        .stream_options
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .is_some_and(|v| v.get("include_usage") == Some(&Value::Bool(true)));
    let wants_base64 = fields
        .encoding_format
        .is_some_and(|raw| raw.get() == "\"base64\"");
    // Limits and budgets reserve the most a request can produce; a cap that is not a whole
    // number is left for the provider to refuse.
    let count = |raw: Option<&RawValue>| raw.and_then(|r| r.get().parse::<u64>().ok());
    let max_output = [
        fields.max_tokens,
        fields.max_completion_tokens,
        fields.max_output_tokens,
    ]
    .into_iter()
    .filter_map(count)
    .max();
    Ok(BodyPeek {
        model,
        stream,
        include_usage,
        wants_base64,
        max_output,
        choices: count(fields.n).unwrap_or(1).max(1),
        model_span: span(body, model_raw),
        stream_options_span: fields.stream_options.map(|raw| span(body, raw)),
    })
}

/// Where a borrowed raw value sits in the body it was parsed from.
fn span(body: &[u8], raw: &RawValue) -> (usize, usize) {
    let start = (raw.get().as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    (start, start + raw.get().len())
}

/// The body to send upstream on a same-protocol route: `model` replaced by the target's model
/// name and, when `force_usage`, `stream_options.include_usage` set to true. Every other byte is
/// the client's.
pub fn passthrough(body: &Bytes, peek: &BodyPeek, target_model: &str, force_usage: bool) -> Bytes {
    let mut edits: Vec<(usize, usize, String)> = Vec::with_capacity(2);
    edits.push((
        peek.model_span.0,
        peek.model_span.1,
        Value::from(target_model).to_string(),
    ));
    if force_usage && !peek.include_usage {
        match peek.stream_options_span {
            Some((start, end)) => {
                let mut options = body
                    .get(start..end)
                    .and_then(|raw| serde_json::from_slice::<Value>(raw).ok())
                    .filter(Value::is_object)
                    .unwrap_or_else(|| Value::Object(Default::default()));
                options["include_usage"] = Value::Bool(true);
                edits.push((start, end, options.to_string()));
            }
            None => {
                // `peek` checked the body opens an object and has a model, so a member follows.
                let at = body.iter().position(|b| *b == b'{').map_or(0, |i| i + 1);
                edits.push((
                    at,
                    at,
                    r#""stream_options":{"include_usage":true},"#.to_string(),
                ));
            }
        }
    }
    splice(body, edits)
}

/// The output-cap fields of a body, as raw JSON text.
#[derive(Deserialize)]
struct Caps<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    max_tokens: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    max_output_tokens: Option<&'a RawValue>,
}

/// The body with its output cap lowered to `cap` (the detection gate's `degrade`): every cap
/// field present (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) above `cap` or
/// null is set to `cap`; with none present, `insert_as` is added. Every other byte is the
/// client's. `None` when nothing needs changing.
pub fn cap_output_tokens(
    body: &Bytes,
    insert_as: &str,
    cap: u64,
) -> Result<Option<Bytes>, GatewayError> {
    let caps: Caps<'_> =
        serde_json::from_slice(body).map_err(|e| GatewayError::invalid_json(&e))?;
    let present: Vec<&RawValue> = [
        caps.max_tokens,
        caps.max_completion_tokens,
        caps.max_output_tokens,
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if present.is_empty() {
        // `peek` checked the body opens an object and has a model, so a member follows.
        let at = body.iter().position(|b| *b == b'{').map_or(0, |i| i + 1);
        edits.push((at, at, format!("{}:{cap},", Value::from(insert_as))));
    }
    for raw in present {
        let within = raw.get().parse::<u64>().is_ok_and(|n| n <= cap);
        if !within {
            let (start, end) = span(body, raw);
            edits.push((start, end, cap.to_string()));
        }
    }
    if edits.is_empty() {
        return Ok(None);
    }
    Ok(Some(splice(body, edits)))
}

/// `body` with each `(start, end, text)` range replaced; ranges must not overlap.
fn splice(body: &[u8], mut edits: Vec<(usize, usize, String)>) -> Bytes {
    edits.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut at = 0;
    for (start, end, text) in edits {
        out.extend_from_slice(body.get(at..start).unwrap_or_default());
        out.extend_from_slice(text.as_bytes());
        at = end;
    }
    out.extend_from_slice(body.get(at..).unwrap_or_default());
    Bytes::from(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewrite(body: &str, force: bool) -> Value {
        let bytes = Bytes::from(body.to_string());
        let p = peek(&bytes).unwrap();
        serde_json::from_slice(&passthrough(&bytes, &p, "up-model", force)).unwrap()
    }

    #[test]
    fn routing_fields_are_read_and_typed() {
        let p = peek(br#" {"messages":[], "model":"gpt", "stream":true, "stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(
            (p.model.as_str(), p.stream, p.include_usage),
            ("gpt", true, true)
        );
        assert!(
            peek(br#"{"model":"m","encoding_format":"base64"}"#)
                .unwrap()
                .wants_base64
        );
        for (bad, param) in [
            (&br#"{"model":3}"#[..], Some("model")),
            (br#"{"model":null}"#, Some("model")),
            (br#"{"model":""}"#, Some("model")),
            (br#"{"messages":[]}"#, Some("model")),
            (br#"{"model":"m","stream":"yes"}"#, Some("stream")),
            (br#"{"model":"m","model":"n"}"#, None),
            (b"[1]", None),
            (b"", None),
            (b"{", None),
            (br#"{"model":"m"} trailing"#, None),
        ] {
            match peek(bad) {
                Err(GatewayError::InvalidRequest { param: p, .. }) => {
                    assert_eq!(p.as_deref(), param, "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn passthrough_edits_only_model_and_usage() {
        let body =
            r#"{"n":1.0000000000000000001,"model":"gpt\u0041","x":{"keep":[1,2]},"stream":true}"#;
        let out = rewrite(body, false);
        assert_eq!(out["model"], "up-model");
        let bytes = Bytes::from(body);
        let sent = passthrough(&bytes, &peek(&bytes).unwrap(), "up-model", false);
        assert_eq!(
            std::str::from_utf8(&sent).unwrap(),
            r#"{"n":1.0000000000000000001,"model":"up-model","x":{"keep":[1,2]},"stream":true}"#,
            "every other byte is the client's"
        );
        let forced = rewrite(body, true);
        assert_eq!(forced["stream_options"], json!({"include_usage": true}));
        assert_eq!(forced["x"], json!({"keep": [1, 2]}));
    }

    #[test]
    fn existing_stream_options_are_extended_not_replaced() {
        let out = rewrite(
            r#"{"stream_options":{"other":1},"model":"m","stream":true}"#,
            true,
        );
        assert_eq!(
            out["stream_options"],
            json!({"other": 1, "include_usage": true})
        );
        let out = rewrite(r#"{"model":"m","stream":true,"stream_options":null}"#, true);
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        let out = rewrite(
            r#"{"model":"m","stream_options":{"include_usage":true}}"#,
            true,
        );
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn output_caps_are_lowered_in_place_or_added() {
        let cap = |body: &str, insert_as: &str| {
            cap_output_tokens(&Bytes::from(body.to_string()), insert_as, 256)
                .unwrap()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
        };
        assert_eq!(
            cap(
                r#"{"model":"m", "max_tokens" : 4096 ,"n":1.0000000000000000001}"#,
                "max_tokens"
            )
            .as_deref(),
            Some(r#"{"model":"m", "max_tokens" : 256 ,"n":1.0000000000000000001}"#),
            "only the cap's bytes change"
        );
        assert_eq!(
            cap(
                r#"{"max_completion_tokens":null,"model":"m","max_tokens":9000}"#,
                "x"
            )
            .as_deref(),
            Some(r#"{"max_completion_tokens":256,"model":"m","max_tokens":256}"#)
        );
        assert_eq!(
            cap(
                r#" {"model":"m","messages":[{"max_tokens":1}]}"#,
                "max_completion_tokens"
            )
            .as_deref(),
            Some(r#" {"max_completion_tokens":256,"model":"m","messages":[{"max_tokens":1}]}"#),
            "absent: added at the top level, nested lookalikes untouched"
        );
        assert_eq!(
            cap(
                r#"{"model":"m","max_output_tokens":100}"#,
                "max_output_tokens"
            ),
            None
        );
        assert_eq!(cap(r#"{"model":"m","max_tokens":256}"#, "max_tokens"), None);
        assert!(cap_output_tokens(&Bytes::from_static(b"{"), "max_tokens", 1).is_err());
    }

    /// Mutated bodies never panic the reader, and whatever it accepts comes out of the splice as
    /// valid JSON with the target model and every other member of the client's body intact.
    #[test]
    fn mutated_bodies_never_break_the_splice() {
        let seeds = [
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi \"there\" \u00e9"}],"stream":true}"#,
            r#" { "stream_options" : {"include_usage":false} , "model" : "m\n1", "n": 2 } "#,
            r#"{"model":"m","stream":true,"stream_options":null,"x":[1,2,{"model":"inner"}]}"#,
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut bytes = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..(next() % 3) {
                let at = (next() as usize) % (bytes.len() + 1);
                match next() % 3 {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, b"{}[]\":,0an \\"[(next() % 12) as usize]),
                    _ if at < bytes.len() => bytes[at] = (next() % 128) as u8,
                    _ => {}
                }
            }
            let body = Bytes::from(bytes);
            let Ok(p) = peek(&body) else { continue };
            accepted += 1;
            let out = passthrough(&body, &p, "up", p.stream);
            let sent: Value = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("{e}: {:?} -> {:?}", body, out));
            assert_eq!(sent["model"], "up", "{body:?}");
            let original: Value = serde_json::from_slice(&body).unwrap();
            for (k, v) in original.as_object().unwrap() {
                if k != "model" && k != "stream_options" {
                    assert_eq!(&sent[k], v, "{body:?}");
                }
            }
            if p.stream {
                assert_eq!(sent["stream_options"]["include_usage"], true, "{body:?}");
            }
        }
        assert!(
            accepted > 1_000,
            "the mutations must leave many bodies valid: {accepted}"
        );
    }
}
