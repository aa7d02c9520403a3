//! Lenient readers for the parts of a body whose shape varies: message content, content blocks,
//! settings objects, and the few typed scalars that have more than one accepted form.
//!
//! Content readers never fail on an unexpected shape: a value they do not understand is skipped
//! (serde_json still checks that it is well-formed JSON). A shape a provider would reject carries
//! no text the provider would read, so skipping it hides nothing from the filters. Parameter
//! readers are strict instead: a parameter that does not parse fails the whole view, so a value
//! moat cannot judge is refused rather than let through.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A string that borrows from the body unless it had escapes. (`Option<Cow<str>>` with
/// `#[serde(borrow)]` would always allocate: serde only borrows a bare `Cow` field.)
#[derive(Debug)]
pub(super) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(Str)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A string if the value is one; any other value is skipped and reads as `None`.
pub(super) struct LenientStr<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientStrVisitor).map(LenientStr)
    }
}

struct LenientStrVisitor;

impl<'de> Visitor<'de> for LenientStrVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Text pieces joined with `"\n"`, borrowing while there is only one.
#[derive(Debug, Default)]
pub(super) enum Joined<'a> {
    /// Nothing yet.
    #[default]
    Empty,
    /// One piece, still borrowed when it had no escapes.
    One(Cow<'a, str>),
    /// Several pieces, joined.
    Many(String),
}

impl<'a> Joined<'a> {
    /// Appends a piece; empty pieces add nothing.
    pub(super) fn push(&mut self, piece: Cow<'a, str>) {
        if piece.is_empty() {
            return;
        }
        *self = match std::mem::take(self) {
            Joined::Empty => Joined::One(piece),
            Joined::One(first) => {
                let mut s = String::with_capacity(first.len() + 1 + piece.len());
                s.push_str(&first);
                s.push('\n');
                s.push_str(&piece);
                Joined::Many(s)
            }
            Joined::Many(mut s) => {
                s.push('\n');
                s.push_str(&piece);
                Joined::Many(s)
            }
        };
    }

    /// The text, empty when nothing was pushed.
    pub(super) fn into_cow(self) -> Cow<'a, str> {
        match self {
            Joined::Empty => Cow::Borrowed(""),
            Joined::One(s) => s,
            Joined::Many(s) => Cow::Owned(s),
        }
    }
}

/// Message content: a string, an array of parts or blocks, a single block, or anything else
/// (which holds no text). Text comes from every part with a string `text` (`text`, `input_text`,
/// `output_text`, Anthropic `text`), nested `content` (Anthropic `tool_result`, search results)
/// and plain-text document sources.
#[derive(Debug, Default)]
pub(super) struct Text<'a> {
    /// The text found, joined with `"\n"`.
    pub joined: Joined<'a>,
    /// Blocks seen at the top level (0 for a plain string).
    pub blocks: usize,
    /// Of those, `tool_result` blocks.
    pub tool_results: usize,
}

impl<'a> Text<'a> {
    /// Whether this is an Anthropic user message made only of tool results.
    pub(super) fn only_tool_results(&self) -> bool {
        self.blocks > 0 && self.tool_results == self.blocks
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("message content")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(text_of(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(text_of(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(text_of(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Text::default();
        while let Some(block) = seq.next_element::<Block<'de>>()? {
            out.add(block);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut out = Text::default();
        out.add(BlockVisitor.visit_map(map)?);
        Ok(out)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Text::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Text::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Text::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Text::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text::default())
    }
}

fn text_of(s: Cow<'_, str>) -> Text<'_> {
    Text::from(s)
}

impl<'a> From<Cow<'a, str>> for Text<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        let mut out = Text::default();
        out.joined.push(s);
        out
    }
}

impl<'a> Text<'a> {
    fn add(&mut self, block: Block<'a>) {
        if block.is_block {
            self.blocks += 1;
            self.tool_results += usize::from(block.tool_result);
        }
        match block.text {
            Joined::Empty => {}
            Joined::One(s) => self.joined.push(s),
            Joined::Many(s) => self.joined.push(Cow::Owned(s)),
        }
    }
}

/// One element of a content array.
struct Block<'a> {
    text: Joined<'a>,
    /// An object (strings inside an array count as text but not as blocks).
    is_block: bool,
    tool_result: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for Block<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BlockVisitor)
    }
}

struct BlockVisitor;

impl BlockVisitor {
    fn none() -> Block<'static> {
        Block {
            text: Joined::Empty,
            is_block: false,
            tool_result: false,
        }
    }
}

impl<'de> Visitor<'de> for BlockVisitor {
    type Value = Block<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a content block")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kind: Option<Cow<'de, str>> = None;
        let mut text = Joined::Empty;
        let mut nested = Joined::Empty;
        let mut source: Option<Source<'de>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match &*key.0 {
                "type" => kind = map.next_value::<LenientStr<'de>>()?.0,
                "text" => {
                    if let Some(s) = map.next_value::<LenientStr<'de>>()?.0 {
                        text.push(s);
                    }
                }
                "content" => nested = map.next_value::<Text<'de>>()?.joined,
                "source" => source = Some(map.next_value::<Source<'de>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        text.push(nested.into_cow());
        if let Some(source) = source {
            if source.kind.as_deref() == Some("text") {
                if let Some(data) = source.data {
                    text.push(data);
                }
            }
            text.push(source.content.into_cow());
        }
        Ok(Block {
            text,
            is_block: true,
            tool_result: kind.as_deref() == Some("tool_result"),
        })
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        let mut text = Joined::Empty;
        text.push(Cow::Borrowed(v));
        Ok(Block {
            text,
            ..Self::none()
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.visit_string(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        let mut text = Joined::Empty;
        text.push(Cow::Owned(v));
        Ok(Block {
            text,
            ..Self::none()
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Self::none())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Self::none())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Self::none())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Self::none())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Self::none())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Self::none())
    }
}

/// An Anthropic document `source`: plain text (`type: "text"`, `data`) or content blocks
/// (`type: "content"`); base64 and URL sources hold no text moat reads.
#[derive(Default)]
struct Source<'a> {
    kind: Option<Cow<'a, str>>,
    data: Option<Cow<'a, str>>,
    content: Joined<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Source<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SourceVisitor)
    }
}

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = Source<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a document source")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Source::default();
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match &*key.0 {
                "type" => out.kind = map.next_value::<LenientStr<'de>>()?.0,
                "data" => out.data = map.next_value::<LenientStr<'de>>()?.0,
                "content" => out.content = map.next_value::<Text<'de>>()?.joined,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Source::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Source::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Source::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Source::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Source::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Source::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Source::default())
    }
}

/// The values of an object, read as content and joined: the `variables` of a Responses `prompt`
/// (a stored prompt template whose variables the client fills in, strings or input parts).
#[derive(Default)]
pub(super) struct Values<'a>(pub Joined<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Values<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValuesVisitor)
    }
}

struct ValuesVisitor;

impl<'de> Visitor<'de> for ValuesVisitor {
    type Value = Values<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Joined::Empty;
        while map.next_key::<IgnoredAny>()?.is_some() {
            out.push(map.next_value::<Text<'de>>()?.joined.into_cow());
        }
        Ok(Values(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Values::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Values::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Values::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Values::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Values::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Values::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Values::default())
    }
}

/// A switch-like setting: Anthropic `thinking` (`{"type": "enabled" | "disabled" | "adaptive"}`)
/// or OpenAI `reasoning` (`{"effort": ...}`). Reads whether it turns the feature on.
pub(super) struct Setting {
    /// False only for an explicit off: `type: "disabled"`, `effort: "none"` or `false`.
    pub on: bool,
}

impl<'de> Deserialize<'de> for Setting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SettingVisitor)
    }
}

struct SettingVisitor;

impl<'de> Visitor<'de> for SettingVisitor {
    type Value = Setting;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a setting object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut on = true;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match &*key.0 {
                "type" | "effort" => {
                    let value = map.next_value::<LenientStr<'de>>()?.0;
                    if matches!(value.as_deref(), Some("disabled" | "none")) {
                        on = false;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Setting { on })
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Setting { on: v })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Setting {
            on: !matches!(v, "disabled" | "none"),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Setting { on: true })
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Setting { on: true })
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Setting { on: true })
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Setting { on: true })
    }
}

/// The number of entries of an object or elements of an array (`logit_bias`, `tools`).
pub(super) struct Count(pub usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut n = 0;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Count(n))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Count(n))
    }
}

/// `logprobs`: `true` (chat) or an integer above 0 (legacy completions).
pub(super) struct Logprobs(pub bool);

impl<'de> Deserialize<'de> for Logprobs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LogprobsVisitor)
    }
}

struct LogprobsVisitor;

impl<'de> Visitor<'de> for LogprobsVisitor {
    type Value = Logprobs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean or an integer")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Logprobs(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Logprobs(v > 0))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Logprobs(v > 0))
    }
}
