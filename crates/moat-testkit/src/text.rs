//! Deterministic text: the reply words, a stable hash, ids and the word-count token rule.

use serde_json::Value;

/// Words in a reply when nothing limits it.
pub(crate) const DEFAULT_REPLY_WORDS: usize = 24;

/// Words in a simulated thought (Anthropic extended thinking).
const THOUGHT_WORDS: usize = 12;

/// The vocabulary replies are drawn from.
pub(crate) const WORDS: [&str; 48] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "amber", "basalt", "cobalt", "dune",
    "ember", "fjord", "glacier", "harbor", "island", "jade", "kelp", "lagoon", "meadow", "nebula",
    "orchid", "prairie", "quartz", "river", "summit", "tundra", "valley", "willow",
];

const ID_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// FNV-1a over the parts, with a separator so `("ab", "c")` and `("a", "bc")` differ. Stable across
/// platforms and releases, unlike `std`'s hasher.
pub(crate) fn stable_hash(parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// SplitMix64: a tiny, good-enough generator for picking words from a seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An index below `len` (which must be non-zero).
    pub(crate) fn below(&mut self, len: usize) -> usize {
        let len = u64::try_from(len).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next_u64() % len).unwrap_or(0)
    }
}

/// `len` alphanumeric characters derived from `seed`, for ids like `chatcmpl-...`.
pub(crate) fn id_suffix(seed: u64, len: usize) -> String {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| char::from(ID_ALPHABET[rng.below(ID_ALPHABET.len())]))
        .collect()
}

/// The token rule of the sim: one token per whitespace-separated word.
pub(crate) fn count_words(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

/// Text of a message `content`: a string, or the `text` of every part of an array, joined by
/// spaces. Parts without text (images, audio) contribute nothing.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(s) => Some(s.as_str()),
                other => other.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// A generated reply: the pieces a stream sends it in (one output token each) and whether a limit
/// cut it short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Generation {
    pieces: Vec<String>,
    pub(crate) truncated: bool,
}

impl Generation {
    /// `pieces`, cut to at most `max` of them.
    pub(crate) fn new(mut pieces: Vec<String>, max: Option<u64>) -> Generation {
        let max = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let truncated = max < pieces.len();
        pieces.truncate(max);
        Generation { pieces, truncated }
    }

    /// `words` as prose: one piece per word, each after the first with its leading space.
    pub(crate) fn words<S: AsRef<str>>(words: &[S], max: Option<u64>) -> Generation {
        let pieces = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let w = w.as_ref();
                if i == 0 {
                    w.to_owned()
                } else {
                    format!(" {w}")
                }
            })
            .collect();
        Generation::new(pieces, max)
    }

    /// The reply as one string.
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    /// The reply as stream deltas, one per piece.
    pub(crate) fn deltas(&self) -> &[String] {
        &self.pieces
    }

    /// Output tokens: the number of pieces.
    pub(crate) fn tokens(&self) -> u64 {
        u64::try_from(self.pieces.len()).unwrap_or(u64::MAX)
    }
}

/// The reply to `prompt` from `model`, at most `max` words. `variant` picks another reply for the
/// same request (the `n` choices of OpenAI chat); variant 0 is the reply of a request with `n = 1`.
pub(crate) fn reply(model: &str, prompt: &str, variant: u64, max: Option<u64>) -> Generation {
    let seed = stable_hash(&[model, prompt]) ^ variant.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng::new(seed);
    let mut words: Vec<String> = vec![
        "Simulated".to_owned(),
        "reply".to_owned(),
        "from".to_owned(),
        format!("{model}:"),
    ];
    while words.len() < DEFAULT_REPLY_WORDS {
        words.push(WORDS[rng.below(WORDS.len())].to_owned());
    }
    Generation::words(&words, max)
}

/// A short deterministic thought for extended thinking, at most `max` words.
pub(crate) fn thought(model: &str, prompt: &str, max: Option<u64>) -> Generation {
    let mut rng = Rng::new(stable_hash(&[model, prompt, "thinking"]));
    let mut words: Vec<String> = ["Considering", "how", "to", "answer:"]
        .iter()
        .map(|w| (*w).to_owned())
        .collect();
    while words.len() < THOUGHT_WORDS {
        words.push(WORDS[rng.below(WORDS.len())].to_owned());
    }
    Generation::words(&words, max)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_deterministic_and_depend_on_the_prompt() {
        let a = reply("m", "hello", 0, None);
        assert_eq!(a, reply("m", "hello", 0, None));
        assert_ne!(a, reply("m", "goodbye", 0, None));
        assert_ne!(a, reply("m", "hello", 1, None));
        assert_eq!(a.deltas().len(), DEFAULT_REPLY_WORDS);
        assert!(a.text().starts_with("Simulated reply from m: "));
        assert!(!a.truncated);
    }

    #[test]
    fn limits_cut_exactly() {
        let g = reply("m", "x", 0, Some(5));
        assert_eq!(g.tokens(), 5);
        assert!(g.truncated);
        let g = reply("m", "x", 0, Some(24));
        assert!(!g.truncated);
        assert_eq!(g.deltas().concat(), g.text());
    }

    #[test]
    fn hash_separates_parts() {
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
        assert_eq!(stable_hash(&["x"]), stable_hash(&["x"]));
    }

    #[test]
    fn words_and_content() {
        assert_eq!(count_words("  a b\tc\n"), 3);
        let parts =
            serde_json::json!([{"type": "text", "text": "a b"}, {"type": "image_url"}, "c"]);
        assert_eq!(content_text(&parts), "a b c");
        assert_eq!(id_suffix(7, 10).len(), 10);
    }
}
