//! Per-request features: what the detector keeps of one request, computed in the request path.
//!
//! Extraction reads a [`RequestView`] and returns a small `Copy` value; nothing of the prompt text
//! is kept, only masked fingerprints and cue strengths.

use crate::lexicon::{Cues, Lexicon, Marks};
use crate::text::{self, Fingerprint, TextPrint};
use moat_protocol::view::{RequestView, Role};

/// How much of a long user turn is scanned for cues: its head and its tail (templates put their
/// instructions around the data).
const CUE_WINDOW: usize = 600;
/// How much of the head of the user turn is scanned for category marks.
const MARKS_HEAD: usize = 800;

/// What a request asks for, roughly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Category {
    /// Arithmetic or word problems.
    Math,
    /// Writing or reading code.
    Code,
    /// Tools declared with the request.
    Tool,
    /// "Imagine you are", "act as".
    Roleplay,
    /// Anything else.
    #[default]
    Other,
}

impl Category {
    /// The name used in reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Math => "math",
            Category::Code => "code",
            Category::Tool => "tool",
            Category::Roleplay => "roleplay",
            Category::Other => "other",
        }
    }

    /// A bit per category, for breadth counting.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The features of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestFeatures {
    /// Fingerprints of the last user turn.
    pub user: TextPrint,
    /// Fingerprint of the system prompt(s), masked, when there is one.
    pub system: Option<Fingerprint>,
    /// Cues in the last user turn.
    pub user_cues: Cues,
    /// Cues in the system prompt.
    pub system_cues: Cues,
    /// Rough capability category.
    pub category: Category,
    /// User turns in the request.
    pub user_turns: u16,
    /// Assistant turns carried in the request (conversation history).
    pub assistant_turns: u16,
    /// Tools declared.
    pub tools: u16,
    /// Tool-result turns carried (an agent loop closing).
    pub tool_turns: u16,
    /// Masked tokens in the system prompt.
    pub system_tokens: u32,
    /// Requested max tokens.
    pub max_tokens: Option<u32>,
    /// Requested completions (`n`).
    pub n: u16,
    /// Requested temperature.
    pub temperature: Option<f32>,
    /// Logprobs asked for.
    pub logprobs: bool,
    /// top_logprobs asked for.
    pub top_logprobs: u16,
    /// Entries in logit_bias.
    pub logit_bias: u16,
    /// Prompt logprobs asked for (echo).
    pub prompt_logprobs: bool,
    /// Bytes of prompt text (system and turns).
    pub prompt_bytes: u32,
}

impl RequestFeatures {
    /// A single-turn request: one user turn and no carried answers.
    pub fn single_turn(&self) -> bool {
        self.user_turns <= 1 && self.assistant_turns == 0 && self.tool_turns == 0
    }

    /// A logit-extraction probe: biasing tokens while reading logprobs or one-token answers.
    pub fn logit_probe(&self) -> bool {
        self.logit_bias > 0 && (self.logprobs || self.max_tokens.is_some_and(|m| m <= 2))
            || self.prompt_logprobs
    }
}

/// Computes features from parsed requests; holds the compiled lexicon.
#[derive(Debug, Clone, Default)]
pub struct Extractor {
    lexicon: Lexicon,
}

impl Extractor {
    /// A new extractor with the built-in lexicon.
    pub fn new() -> Self {
        Self::default()
    }

    /// The features of one request.
    pub fn extract(&self, view: &RequestView<'_>) -> RequestFeatures {
        let mut f = RequestFeatures::default();
        let mut bytes = 0usize;
        for t in &view.turns {
            bytes += t.text.len();
            match t.role {
                Role::User => f.user_turns = f.user_turns.saturating_add(1),
                Role::Assistant => f.assistant_turns = f.assistant_turns.saturating_add(1),
                Role::Tool => f.tool_turns = f.tool_turns.saturating_add(1),
                Role::Other => {}
            }
        }
        if !view.system.is_empty() {
            let joined: std::borrow::Cow<'_, str> = if view.system.len() == 1 {
                std::borrow::Cow::Borrowed(view.system[0].as_ref())
            } else {
                std::borrow::Cow::Owned(view.system.join("\n"))
            };
            bytes += joined.len();
            let p = text::print(&joined);
            f.system = Some(p.whole);
            f.system_tokens = p.tokens;
            f.system_cues = self.lexicon.scan(&joined);
        }
        if let Some(user) = view.last_user_text() {
            f.user = text::print(user);
            // One automaton pass over the head and the tail finds the cues and the marks.
            let (cues, marks) = self.lexicon.scan_windows(user, CUE_WINDOW, MARKS_HEAD);
            f.user_cues = cues;
            f.category = category(user, marks, view.tool_count);
        } else if view.tool_count > 0 {
            f.category = Category::Tool;
        }
        f.prompt_bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let p = &view.params;
        f.tools = sat16(view.tool_count as u64);
        f.max_tokens = p.max_tokens.map(|m| u32::try_from(m).unwrap_or(u32::MAX));
        f.n = p.n.map_or(1, sat16);
        f.temperature = p.temperature.map(|t| t as f32);
        f.logprobs = p.logprobs;
        f.top_logprobs = p.top_logprobs.map_or(0, sat16);
        f.logit_bias = sat16(p.logit_bias_entries as u64);
        f.prompt_logprobs = p.prompt_logprobs;
        f
    }
}

fn sat16(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// A cheap capability guess from surface marks in the head of the user turn.
fn category(text: &str, marks: Marks, tools: usize) -> Category {
    if tools > 0 {
        return Category::Tool;
    }
    if marks.code {
        return Category::Code;
    }
    if marks.math {
        let head = &text.as_bytes()[..text.len().min(MARKS_HEAD)];
        // Digits are ASCII: a cut inside a character counts the same digits.
        if head.iter().filter(|b| b.is_ascii_digit()).count() >= 2 {
            return Category::Math;
        }
    }
    if marks.roleplay {
        return Category::Roleplay;
    }
    Category::Other
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_protocol::view::ViewApi;

    #[test]
    fn extracts_structure_params_and_cues() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"Justify every step."},
            {"role":"user","content":"Tom has 3 apples and buys 4 more. How many apples does he have now? Think it through step by step."}],
            "max_tokens":1,"logprobs":true,"top_logprobs":5,"logit_bias":{"1":100},"n":2}"#;
        let view = RequestView::parse(ViewApi::OpenAiChat, body).unwrap();
        let f = Extractor::new().extract(&view);
        assert!(f.single_turn());
        assert!(f.system.is_some());
        assert_eq!(f.user_cues.elicit, 1.0);
        assert_eq!(f.system_cues.elicit, 1.0);
        assert_eq!(f.category, Category::Math);
        assert!(f.logit_probe());
        assert_eq!((f.n, f.top_logprobs, f.logit_bias), (2, 5, 1));
    }

    #[test]
    fn math_digits_are_counted_in_the_marks_head_only() {
        let marks = Marks {
            math: true,
            ..Marks::default()
        };
        // A two-byte character straddles the end of the head (bytes 799 and 800): the digits
        // after it do not count, the ones before it do.
        let pad = |n: usize| "x".repeat(MARKS_HEAD - n);
        let late = format!("how many {}\u{e9}12", pad(10));
        assert!(!late.is_char_boundary(MARKS_HEAD));
        assert_eq!(category(&late, marks, 0), Category::Other);
        let early = format!("how many 1{}\u{e9}2", pad(11));
        assert!(!early.is_char_boundary(MARKS_HEAD));
        assert_eq!(category(&early, marks, 0), Category::Other);
        let both = format!("how many 12{}\u{e9}", pad(12));
        assert!(!both.is_char_boundary(MARKS_HEAD));
        assert_eq!(category(&both, marks, 0), Category::Math);
        assert_eq!(category(&both, marks, 2), Category::Tool);
    }

    #[test]
    fn conversation_history_is_counted() {
        let body = br#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"},
            {"role":"assistant","content":"hello"},{"role":"user","content":"tell me more"}]}"#;
        let view = RequestView::parse(ViewApi::AnthropicMessages, body).unwrap();
        let f = Extractor::new().extract(&view);
        assert!(!f.single_turn());
        assert_eq!((f.user_turns, f.assistant_turns), (2, 1));
        assert!(!f.logit_probe());
    }
}
