//! A read-only view of a chat request body: the texts, the sampling parameters and who the end
//! user is, borrowed from the body wherever possible. Filters and the detector read it; nothing
//! writes it back, so a passthrough request still goes upstream byte for byte.
//!
//! Parsing skips every field it does not need without building a JSON tree, and reads content
//! leniently (see `content.rs`) but parameters strictly: a parameter of the wrong type fails the
//! view, so a value moat cannot judge is refused instead of passed on unjudged.

mod content;

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use content::{Count, LenientStr, Logprobs, Setting, Str, Text, Values};

/// The request shapes a view can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewApi {
    /// OpenAI `POST /v1/chat/completions`.
    OpenAiChat,
    /// OpenAI `POST /v1/responses`.
    OpenAiResponses,
    /// Anthropic `POST /v1/messages`.
    AnthropicMessages,
}

/// What a chat request asks, borrowed from its body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestView<'a> {
    /// The `model` asked for.
    pub model: Option<Cow<'a, str>>,
    /// System texts in order: OpenAI system and developer messages, Responses `instructions`,
    /// Anthropic `system` (a string or each text block). Empty texts are left out.
    pub system: Vec<Cow<'a, str>>,
    /// Every other message in order, its text parts joined with `"\n"`.
    pub turns: Vec<Turn<'a>>,
    /// The sampling and output parameters.
    pub params: Params,
    /// Who the end user is: OpenAI `user` (else `safety_identifier`), Anthropic
    /// `metadata.user_id`.
    pub end_user: Option<Cow<'a, str>>,
    /// How many tools the request declares.
    pub tool_count: usize,
}

/// Who wrote a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user.
    User,
    /// The model (as the client reports it).
    Assistant,
    /// A tool's result: OpenAI `tool` / `function` messages, Responses `*_call_output` items,
    /// Anthropic user messages made only of `tool_result` blocks. Client-controlled text.
    Tool,
    /// Any other role an OpenAI-compatible server may accept.
    Other,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn<'a> {
    /// Who wrote it.
    pub role: Role,
    /// Its text parts (tool results included) joined with `"\n"`; empty when it has none.
    pub text: Cow<'a, str>,
}

/// The request's sampling and output parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// The output cap: `max_tokens`, `max_completion_tokens` or `max_output_tokens` (the largest
    /// when several are given).
    pub max_tokens: Option<u64>,
    /// Choices asked for (`n`).
    pub n: Option<u64>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `top_p`.
    pub top_p: Option<f64>,
    /// Token log probabilities asked for: `logprobs: true` (or an integer above 0, the legacy
    /// form), or Responses `include: ["message.output_text.logprobs"]`.
    pub logprobs: bool,
    /// `top_logprobs`.
    pub top_logprobs: Option<u64>,
    /// Entries in `logit_bias`.
    pub logit_bias_entries: usize,
    /// Log probabilities of the prompt: `echo` together with `logprobs`, or a `prompt_logprobs`
    /// field (vLLM).
    pub prompt_logprobs: bool,
    /// Reasoning asked for: Anthropic `thinking` not disabled, OpenAI `reasoning` or
    /// `reasoning_effort` other than `"none"`, Responses `include: ["reasoning.encrypted_content"]`.
    pub reasoning_requested: bool,
    /// `stream: true`.
    pub stream: bool,
}

/// A body the view cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The body is not a JSON object.
    #[error("request body must be a JSON object")]
    NotAnObject,
    /// The body is not valid JSON, or a parameter has the wrong type.
    #[error("request body cannot be read: {}", crate::json_error::describe(.0))]
    Json(#[from] serde_json::Error),
}

impl<'a> RequestView<'a> {
    /// Reads `body` as a request of `api`. Never panics; malformed JSON or a parameter of the
    /// wrong type is an error.
    pub fn parse(api: ViewApi, body: &'a [u8]) -> Result<RequestView<'a>, ViewError> {
        // serde's derived structs also read JSON arrays positionally: refuse those up front.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ViewError::NotAnObject);
        }
        Ok(match api {
            ViewApi::OpenAiChat => serde_json::from_slice::<ChatBody<'a>>(body)?.into_view(),
            ViewApi::OpenAiResponses => {
                serde_json::from_slice::<ResponsesBody<'a>>(body)?.into_view()
            }
            ViewApi::AnthropicMessages => {
                serde_json::from_slice::<MessagesBody<'a>>(body)?.into_view()
            }
        })
    }

    /// The text of the last user turn.
    pub fn last_user_text(&self) -> Option<&str> {
        self.turns
            .iter()
            .rev()
            .find(|t| t.role == Role::User)
            .map(|t| t.text.as_ref())
    }
}

/// `POST /v1/chat/completions`, only the fields the view reads.
#[derive(Deserialize)]
struct ChatBody<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    logprobs: Option<Logprobs>,
    top_logprobs: Option<u64>,
    logit_bias: Option<Count>,
    echo: Option<bool>,
    prompt_logprobs: Option<IgnoredAny>,
    reasoning: Option<Setting>,
    reasoning_effort: Option<Setting>,
    stream: Option<bool>,
    #[serde(borrow)]
    user: Option<Str<'a>>,
    #[serde(borrow)]
    safety_identifier: Option<Str<'a>>,
    tools: Option<Count>,
    functions: Option<Count>,
}

/// `POST /v1/responses`, only the fields the view reads. The variables of a stored `prompt` become
/// one user turn ahead of `input`, since the client writes them.
#[derive(Deserialize)]
struct ResponsesBody<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    #[serde(borrow)]
    instructions: Option<Text<'a>>,
    #[serde(borrow)]
    input: Option<Input<'a>>,
    #[serde(borrow)]
    prompt: Option<PromptRef<'a>>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_logprobs: Option<u64>,
    #[serde(borrow)]
    include: Option<Vec<Str<'a>>>,
    reasoning: Option<Setting>,
    stream: Option<bool>,
    #[serde(borrow)]
    user: Option<Str<'a>>,
    #[serde(borrow)]
    safety_identifier: Option<Str<'a>>,
    tools: Option<Count>,
}

/// `POST /v1/messages`, only the fields the view reads.
#[derive(Deserialize)]
struct MessagesBody<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    #[serde(borrow)]
    system: Option<SystemBlocks<'a>>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    thinking: Option<Setting>,
    #[serde(borrow)]
    metadata: Option<Metadata<'a>>,
    stream: Option<bool>,
    tools: Option<Count>,
}

/// Responses `prompt`: a stored template; its `variables` are text the client supplies.
#[derive(Deserialize)]
struct PromptRef<'a> {
    #[serde(borrow)]
    variables: Option<Values<'a>>,
}

/// A chat or Anthropic message.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    #[serde(borrow)]
    content: Option<Text<'a>>,
}

/// Anthropic `metadata`.
#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    user_id: Option<LenientStr<'a>>,
}

/// Anthropic `system`: a string, or text blocks each kept as one system text.
enum SystemBlocks<'a> {
    One(Text<'a>),
    Blocks(Vec<Text<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for SystemBlocks<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SystemBlocks<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of text blocks")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(block) = seq.next_element::<Text<'de>>()? {
                    out.push(block);
                }
                Ok(SystemBlocks::Blocks(out))
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(SystemBlocks::One(Text::from(Cow::Borrowed(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SystemBlocks::One(Text::from(Cow::Owned(v.to_owned()))))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                Text::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(SystemBlocks::One)
            }
        }
        d.deserialize_any(V)
    }
}

/// Responses `input`: a string (one user message) or a list of items.
enum Input<'a> {
    Text(Cow<'a, str>),
    Items(Vec<Item<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Input<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of input items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Item<'de>>()? {
                    out.push(item);
                }
                Ok(Input::Items(out))
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Input::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Input::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V)
    }
}

/// One Responses input item: a message (with or without `type: "message"`), a tool output, or
/// an item the view skips (function calls, reasoning).
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<LenientStr<'a>>,
    #[serde(borrow)]
    role: Option<LenientStr<'a>>,
    #[serde(borrow)]
    content: Option<Text<'a>>,
    #[serde(borrow)]
    output: Option<Text<'a>>,
}

fn role_of(role: Option<&str>) -> Role {
    match role {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool" | "function") => Role::Tool,
        _ => Role::Other,
    }
}

fn is_system(role: Option<&str>) -> bool {
    matches!(role, Some("system" | "developer"))
}

fn cow(s: Option<Str<'_>>) -> Option<Cow<'_, str>> {
    s.map(|s| s.0)
}

fn largest(values: &[Option<u64>]) -> Option<u64> {
    values.iter().flatten().copied().max()
}

/// Adds a system text unless it is empty.
fn push_system<'a>(system: &mut Vec<Cow<'a, str>>, text: Cow<'a, str>) {
    if !text.is_empty() {
        system.push(text);
    }
}

impl<'a> ChatBody<'a> {
    fn into_view(self) -> RequestView<'a> {
        let mut view = RequestView {
            model: cow(self.model),
            end_user: cow(self.user).or(cow(self.safety_identifier)),
            tool_count: self.tools.map_or(0, |c| c.0) + self.functions.map_or(0, |c| c.0),
            ..RequestView::default()
        };
        for m in self.messages.into_iter().flatten() {
            let role = m.role.as_ref().map(|r| r.0.as_ref());
            let text = m.content.unwrap_or_default().joined.into_cow();
            if is_system(role) {
                push_system(&mut view.system, text);
            } else {
                view.turns.push(Turn {
                    role: role_of(role),
                    text,
                });
            }
        }
        let logprobs = self.logprobs.is_some_and(|l| l.0);
        view.params = Params {
            max_tokens: largest(&[self.max_tokens, self.max_completion_tokens]),
            n: self.n,
            temperature: self.temperature,
            top_p: self.top_p,
            logprobs,
            top_logprobs: self.top_logprobs,
            logit_bias_entries: self.logit_bias.map_or(0, |c| c.0),
            prompt_logprobs: (self.echo == Some(true) && logprobs)
                || self.prompt_logprobs.is_some(),
            reasoning_requested: self.reasoning.is_some_and(|s| s.on)
                || self.reasoning_effort.is_some_and(|s| s.on),
            stream: self.stream.unwrap_or(false),
        };
        view
    }
}

impl<'a> ResponsesBody<'a> {
    fn into_view(self) -> RequestView<'a> {
        let mut view = RequestView {
            model: cow(self.model),
            end_user: cow(self.user).or(cow(self.safety_identifier)),
            tool_count: self.tools.map_or(0, |c| c.0),
            ..RequestView::default()
        };
        if let Some(instructions) = self.instructions {
            push_system(&mut view.system, instructions.joined.into_cow());
        }
        // A stored prompt's variables are filled in by the client, ahead of the input.
        if let Some(variables) = self.prompt.and_then(|p| p.variables) {
            let text = variables.0.into_cow();
            if !text.is_empty() {
                view.turns.push(Turn {
                    role: Role::User,
                    text,
                });
            }
        }
        match self.input {
            None => {}
            Some(Input::Text(text)) => view.turns.push(Turn {
                role: Role::User,
                text,
            }),
            Some(Input::Items(items)) => {
                for item in items {
                    add_item(&mut view, item);
                }
            }
        }
        let include = |what: &str| {
            self.include
                .as_ref()
                .is_some_and(|list| list.iter().any(|s| s.0 == what))
        };
        view.params = Params {
            max_tokens: self.max_output_tokens,
            n: None,
            temperature: self.temperature,
            top_p: self.top_p,
            logprobs: include("message.output_text.logprobs"),
            top_logprobs: self.top_logprobs,
            logit_bias_entries: 0,
            prompt_logprobs: false,
            reasoning_requested: self.reasoning.is_some_and(|s| s.on)
                || include("reasoning.encrypted_content"),
            stream: self.stream.unwrap_or(false),
        };
        view
    }
}

fn add_item<'a>(view: &mut RequestView<'a>, item: Item<'a>) {
    let kind = item.kind.and_then(|k| k.0);
    let role = item.role.and_then(|r| r.0);
    match kind.as_deref() {
        None | Some("message") => {
            let text = item.content.unwrap_or_default().joined.into_cow();
            if is_system(role.as_deref()) {
                push_system(&mut view.system, text);
            } else {
                view.turns.push(Turn {
                    role: role_of(role.as_deref()),
                    text,
                });
            }
        }
        Some(k) if k.ends_with("_call_output") => view.turns.push(Turn {
            role: Role::Tool,
            text: item.output.unwrap_or_default().joined.into_cow(),
        }),
        Some(_) => {}
    }
}

impl<'a> MessagesBody<'a> {
    fn into_view(self) -> RequestView<'a> {
        let mut view = RequestView {
            model: cow(self.model),
            end_user: self.metadata.and_then(|m| m.user_id).and_then(|u| u.0),
            tool_count: self.tools.map_or(0, |c| c.0),
            ..RequestView::default()
        };
        match self.system {
            None => {}
            Some(SystemBlocks::One(text)) => push_system(&mut view.system, text.joined.into_cow()),
            Some(SystemBlocks::Blocks(blocks)) => {
                for b in blocks {
                    push_system(&mut view.system, b.joined.into_cow());
                }
            }
        }
        for m in self.messages.into_iter().flatten() {
            let content = m.content.unwrap_or_default();
            let role = match m.role.as_ref().map(|r| r.0.as_ref()) {
                Some("user") if content.only_tool_results() => Role::Tool,
                role => role_of(role),
            };
            view.turns.push(Turn {
                role,
                text: content.joined.into_cow(),
            });
        }
        view.params = Params {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            reasoning_requested: self.thinking.is_some_and(|s| s.on),
            stream: self.stream.unwrap_or(false),
            ..Params::default()
        };
        view
    }
}

#[cfg(test)]
mod tests;
