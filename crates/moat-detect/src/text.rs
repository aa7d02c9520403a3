//! Text normalisation and fingerprints: masked tokens, affix template ids, SimHash.
//!
//! A prompt is reduced to a stream of masked tokens: ASCII letters lower-cased, digit runs become
//! `#`, capitalised words inside a sentence (names) become `@`, and anything between double quotes
//! or backticks (quoted data, code) becomes a single `"` token. Templates that differ only in the
//! data they carry then share their tokens.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// How many masked tokens a prompt needs before its first and last words count as a template.
pub const MIN_TEMPLATE_TOKENS: usize = 12;
const PREFIX_TOKENS: usize = 3;
const SUFFIX_TOKENS: usize = 4;
/// Tokens past this many are not shingled (SimHash of the head is enough to find re-sent prompts).
const MAX_SHINGLED_TOKENS: usize = 384;

/// A 64-bit hash of masked text, stable across runs and machines.
pub type Fingerprint = u64;

/// Hashes bytes with a seed that separates fingerprint families.
#[inline]
pub fn hash(bytes: &[u8], seed: u64) -> Fingerprint {
    xxh3_64_with_seed(bytes, seed)
}

/// The fingerprints of one text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextPrint {
    /// Hash of the whole masked token stream (exact template-and-data match after masking).
    pub whole: Fingerprint,
    /// Hash of the first tokens, when the text is long enough to have a template around data.
    pub prefix: Option<Fingerprint>,
    /// Hash of the last tokens, likewise.
    pub suffix: Option<Fingerprint>,
    /// SimHash over word trigrams of the masked tokens (near-duplicate detection).
    pub simhash: u64,
    /// Number of masked tokens.
    pub tokens: u32,
}

/// Byte classes of the tokeniser, one table lookup per byte.
const QUOTE: u8 = 1; // `"` or a backtick: opens quoted data
const DIGIT: u8 = 2; // starts a number
const WORD: u8 = 4; // starts a word: ASCII letter or any byte of a non-ASCII character
const IN_WORD: u8 = 8; // continues a word: ASCII letter or digit, non-ASCII, `'`
const IN_NUMBER: u8 = 16; // continues a number: digit, `.`, `,`
const UPPER: u8 = 32; // ASCII capital
const SENTENCE_END: u8 = 64; // `.`, `?`, `!`, newline, `:`
const TOKEN_START: u8 = QUOTE | DIGIT | WORD;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut k = 0;
        if c == b'"' || c == b'`' {
            k |= QUOTE;
        }
        if c.is_ascii_digit() {
            k |= DIGIT | IN_WORD | IN_NUMBER;
        }
        if c.is_ascii_alphabetic() || c >= 0x80 {
            k |= WORD | IN_WORD;
        }
        if c == b'\'' {
            k |= IN_WORD;
        }
        if c == b'.' || c == b',' {
            k |= IN_NUMBER;
        }
        if c.is_ascii_uppercase() {
            k |= UPPER;
        }
        if matches!(c, b'.' | b'?' | b'!' | b'\n' | b':') {
            k |= SENTENCE_END;
        }
        t[b] = k;
        b += 1;
    }
    t
};

/// ASCII lower-casing as a table (one load instead of a compare and a select per byte).
const LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).to_ascii_lowercase();
        b += 1;
    }
    t
};

/// Seed of the per-token hashes.
const TOKEN_SEED: u64 = 7;
/// Token hashes of the three mask tokens, fixed.
const HASH_QUOTED: u64 = xxhash_rust::const_xxh3::xxh3_64_with_seed(b"\"", TOKEN_SEED);
const HASH_NUMBER: u64 = xxhash_rust::const_xxh3::xxh3_64_with_seed(b"#", TOKEN_SEED);
const HASH_NAME: u64 = xxhash_rust::const_xxh3::xxh3_64_with_seed(b"@", TOKEN_SEED);

/// Masks `text` into a token stream in one pass: writes each token followed by a space into
/// `out` (which must hold at least `2 * text.len()` bytes: a token never takes more than twice
/// the text it replaces, its space included) and calls `token` with each token's hash. Returns
/// the stream's length.
fn tokenise(text: &str, out: &mut [u8], mut token: impl FnMut(u64)) -> usize {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    let mut o = 0;
    let mut sentence_start = true;
    loop {
        // Between tokens: note sentence ends, stop at the next token's first byte.
        let class = loop {
            let Some(&b) = bytes.get(i) else {
                return o;
            };
            let class = CLASS[usize::from(b)];
            if class & TOKEN_START != 0 {
                break class;
            }
            sentence_start |= class & SENTENCE_END != 0;
            i += 1;
        };
        let start = i;
        i += 1;
        let (bytes_out, h) = if class & WORD != 0 {
            let (len, capitals) = copy_word(bytes, start, &mut out[o..]);
            i = start + len;
            if !sentence_start && class & UPPER != 0 && len > 1 {
                out[o] = b'@';
                (1, HASH_NAME)
            } else {
                // A word without capitals is hashed where it is read: reading back the bytes
                // just stored, with wider loads, would stall on store forwarding.
                let word = if !capitals {
                    &bytes[start..i]
                } else {
                    &out[o..o + len]
                };
                (len, hash(word, TOKEN_SEED))
            }
        } else if class & DIGIT != 0 {
            while i < n && CLASS[usize::from(bytes[i])] & IN_NUMBER != 0 {
                i += 1;
            }
            out[o] = b'#';
            (1, HASH_NUMBER)
        } else {
            // Quoted data or code: one token up to the matching quote (or 400 bytes on).
            let quote = bytes[start];
            let limit = n.min(start + 401);
            i = bytes[i..limit]
                .iter()
                .position(|&c| c == quote)
                .map_or(limit, |p| i + p + 1);
            out[o] = b'"';
            (1, HASH_QUOTED)
        };
        out[o + bytes_out] = b' ';
        o += bytes_out + 1;
        token(h);
        sentence_start = false;
    }
}

/// Copies the word starting at `bytes[start]` (a word byte) lower-cased to the front of `out`
/// (which has room for all of the rest of the text) and returns its length and whether it holds
/// capitals.
#[inline(always)]
fn copy_word(bytes: &[u8], start: usize, out: &mut [u8]) -> (usize, bool) {
    let mut len = 0;
    let mut seen = 0;
    for (d, &c) in out.iter_mut().zip(&bytes[start..]) {
        let k = CLASS[usize::from(c)];
        if k & IN_WORD == 0 {
            break;
        }
        seen |= k;
        *d = LOWER[usize::from(c)];
        len += 1;
    }
    (len, seen & UPPER != 0)
}

/// What [`print`] folds its token hashes into: the affixes and the SimHash, no list of tokens.
#[derive(Default)]
struct Folder {
    /// Tokens seen.
    n: usize,
    /// The first [`PREFIX_TOKENS`] token hashes.
    head: [u64; PREFIX_TOKENS],
    /// The last [`SUFFIX_TOKENS`] token hashes, oldest first.
    last: [u64; SUFFIX_TOKENS],
    sim: SimHasher,
}

impl Folder {
    #[inline(always)]
    fn push(&mut self, h: u64) {
        let k = self.n;
        if k < PREFIX_TOKENS {
            self.head[k] = h;
        }
        let [_, b, c, d] = self.last;
        if (2..MAX_SHINGLED_TOKENS).contains(&k) {
            self.sim.add(combine(&[c, d, h], SHINGLE_SEED));
        }
        self.last = [b, c, d, h];
        self.n = k + 1;
    }

    fn finish(mut self, whole: Fingerprint) -> TextPrint {
        let n = self.n;
        let (prefix, suffix) = if n >= MIN_TEMPLATE_TOKENS {
            (Some(combine(&self.head, 11)), Some(combine(&self.last, 13)))
        } else {
            (None, None)
        };
        // Fewer than three tokens make one shingle of all of them.
        if n > 0 && n < 3 {
            self.sim.add(combine(&self.head[..n], SHINGLE_SEED));
        }
        TextPrint {
            whole,
            prefix,
            suffix,
            simhash: self.sim.finish(),
            tokens: u32::try_from(n).unwrap_or(u32::MAX),
        }
    }
}

thread_local! {
    /// The masked stream of the text being printed, reused across calls on a thread.
    static STREAM: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Streams longer than this are not kept for the next call.
const KEEP_STREAM: usize = 1 << 18;

/// Computes the fingerprints of `text`.
///
/// One pass over the text masks it, writes the masked stream (hashed once at the end: the same
/// digest as feeding a streaming XXH3 token by token, without its per-call buffering) and folds
/// each token's hash into the affixes and the SimHash.
pub fn print(text: &str) -> TextPrint {
    // This thread's buffer, taken out for the call and put back unless it grew large.
    let mut stream = STREAM
        .try_with(|cell| cell.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let need = 2 * text.len();
    if stream.len() < need {
        stream.resize(need, 0);
    }
    let mut folder = Folder::default();
    let len = tokenise(text, &mut stream, |h| folder.push(h));
    let p = folder.finish(hash(&stream[..len], 1));
    if stream.len() <= KEEP_STREAM {
        let _ = STREAM.try_with(|cell| {
            if let Ok(mut v) = cell.try_borrow_mut() {
                *v = stream;
            }
        });
    }
    p
}

fn combine(hashes: &[u64], seed: u64) -> Fingerprint {
    hashes.iter().fold(seed, |acc, h| {
        (acc ^ h)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
    })
}

/// `SPREAD[b]` holds bit `j` of `b` in byte `j`: adding it counts eight bit positions at once.
const SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            if (b >> j) & 1 == 1 {
                table[b] |= 1 << (8 * j);
            }
            j += 1;
        }
        b += 1;
    }
    table
};

/// Seed of the shingle hashes.
const SHINGLE_SEED: u64 = 17;

/// Counts, for each of the 64 bit positions, in how many added hashes it is set.
///
/// Hashes are added eight at a time with a carry-save adder tree (Harley & Seal): the bit-sliced
/// counters `ones`, `twos` and `fours` hold each position's count modulo 8, and every eighth of a
/// position's count carries out into `eights`, eight byte-wide counters per `u64` (spread with
/// [`SPREAD`]) that are flushed into `counts` before they can overflow.
struct SimHasher {
    group: [u64; 8],
    grouped: usize,
    ones: u64,
    twos: u64,
    fours: u64,
    eights: [u64; 8],
    pending: u32,
    counts: [u32; 64],
    added: u64,
}

impl Default for SimHasher {
    fn default() -> Self {
        SimHasher {
            group: [0; 8],
            grouped: 0,
            ones: 0,
            twos: 0,
            fours: 0,
            eights: [0; 8],
            pending: 0,
            counts: [0; 64],
            added: 0,
        }
    }
}

/// A carry-save adder: the bitwise sum of `a`, `b`, `c` as (carry, sum) bits.
#[inline(always)]
fn csa(a: u64, b: u64, c: u64) -> (u64, u64) {
    let u = a ^ b;
    ((a & b) | (u & c), u ^ c)
}

impl SimHasher {
    #[inline(always)]
    fn add(&mut self, h: u64) {
        self.group[self.grouped & 7] = h;
        self.grouped += 1;
        self.added += 1;
        if self.grouped == 8 {
            self.reduce();
        }
    }

    /// Adds the eight grouped hashes (unused slots hold zeros, which add nothing).
    fn reduce(&mut self) {
        let d = self.group;
        let (twos_a, ones) = csa(self.ones, d[0], d[1]);
        let (twos_b, ones) = csa(ones, d[2], d[3]);
        let (fours_a, twos) = csa(self.twos, twos_a, twos_b);
        let (twos_a, ones) = csa(ones, d[4], d[5]);
        let (twos_b, ones) = csa(ones, d[6], d[7]);
        let (fours_b, twos) = csa(twos, twos_a, twos_b);
        let (eights, fours) = csa(self.fours, fours_a, fours_b);
        (self.ones, self.twos, self.fours) = (ones, twos, fours);
        for (k, p) in self.eights.iter_mut().enumerate() {
            *p += SPREAD[((eights >> (8 * k)) & 0xff) as usize];
        }
        self.group = [0; 8];
        self.grouped = 0;
        self.pending += 1;
        if self.pending == 255 {
            self.flush();
        }
    }

    /// Moves the byte-wide counters of `eights` into `counts`.
    fn flush(&mut self) {
        for (k, p) in self.eights.iter_mut().enumerate() {
            for j in 0..8 {
                let c = &mut self.counts[8 * k + j];
                *c = c.saturating_add(8 * ((*p >> (8 * j)) & 0xff) as u32);
            }
            *p = 0;
        }
        self.pending = 0;
    }

    /// A bit of the result is set when it is set in more than half the hashes (the sign of the
    /// classic +1/-1 sum).
    fn finish(mut self) -> u64 {
        if self.grouped > 0 {
            self.reduce();
        }
        // One pass over the 64 positions: flushed counts, the byte-wide eights, the bit-sliced
        // remainders.
        let mut simhash = 0u64;
        for (k, &eights) in self.eights.iter().enumerate() {
            let (ones, twos, fours) = (
                self.ones >> (8 * k),
                self.twos >> (8 * k),
                self.fours >> (8 * k),
            );
            for j in 0..8 {
                let count = u64::from(self.counts[8 * k + j])
                    + 8 * ((eights >> (8 * j)) & 0xff)
                    + 4 * ((fours >> j) & 1)
                    + 2 * ((twos >> j) & 1)
                    + ((ones >> j) & 1);
                simhash |= u64::from(2 * count > self.added) << (8 * k + j);
            }
        }
        simhash
    }
}

/// SimHash (Charikar 2002) over word trigrams given as per-token hashes (fewer than three
/// tokens make one shingle).
pub fn simhash(token_hashes: &[u64]) -> u64 {
    if token_hashes.is_empty() {
        return 0;
    }
    let mut sim = SimHasher::default();
    if token_hashes.len() < 3 {
        sim.add(combine(token_hashes, SHINGLE_SEED));
    } else {
        for w in token_hashes.windows(3) {
            sim.add(combine(w, SHINGLE_SEED));
        }
    }
    sim.finish()
}

/// Whether two SimHashes are within `max_bits` Hamming distance.
pub fn near(a: u64, b: u64, max_bits: u32) -> bool {
    (a ^ b).count_ones() <= max_bits
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn numbers_names_and_quotes_are_masked() {
        let a = print("Then Sarah bought 12 apples for $3.50 and said \"hello there\" to Tom.");
        let b = print("Then Kevin bought 7 apples for $9.99 and said \"good bye\" to Ann.");
        assert_eq!(a.whole, b.whole);
        let c = print("Then Kevin bought 7 pears for $9.99 and said \"good bye\" to Ann.");
        assert_ne!(a.whole, c.whole);
    }

    #[test]
    fn affixes_identify_a_template_around_varying_data() {
        let t = |q: &str| {
            print(&format!(
                "Solve the following problem: {q} Think it through carefully, step by step."
            ))
        };
        let a = t("a train leaves the station at noon and travels for a while before it stops");
        let b = t("how many marbles remain when half of them are given away to friends at school");
        assert_eq!(a.prefix, b.prefix);
        assert_eq!(a.suffix, b.suffix);
        assert_ne!(a.whole, b.whole);
        assert!(print("too short to template").prefix.is_none());
    }

    #[test]
    fn simhash_finds_near_duplicates_and_separates_others() {
        let base = "Write a short story about a lighthouse keeper who discovers a message in a bottle that changes the course of her life forever and ever";
        let a = print(base);
        let b = print(&base.replace("short", "brief"));
        let c = print("Explain how photosynthesis works in plants and why chlorophyll makes leaves look green to the human eye in daylight");
        assert!(
            near(a.simhash, b.simhash, 16),
            "{}",
            (a.simhash ^ b.simhash).count_ones()
        );
        assert!(!near(a.simhash, c.simhash, 16));
    }

    /// The tokeniser and fingerprints as first written (a lower-cased copy per word, a list of
    /// token hashes, one pass per fingerprint): what the one-pass version must reproduce.
    mod reference {
        use super::super::{combine, hash, Fingerprint, TextPrint, SPREAD};
        use super::super::{
            MAX_SHINGLED_TOKENS, MIN_TEMPLATE_TOKENS, PREFIX_TOKENS, SUFFIX_TOKENS,
        };

        pub fn for_each_token(text: &str, mut emit: impl FnMut(&[u8])) {
            let bytes = text.as_bytes();
            let mut i = 0;
            let mut sentence_start = true;
            let mut buf: Vec<u8> = Vec::with_capacity(32);
            while i < bytes.len() {
                let b = bytes[i];
                if b == b'"' || b == b'`' {
                    let end = bytes[i + 1..]
                        .iter()
                        .take(400)
                        .position(|&c| c == b)
                        .map_or(bytes.len().min(i + 401), |p| i + 1 + p + 1);
                    emit(b"\"");
                    sentence_start = false;
                    i = end;
                    continue;
                }
                if b.is_ascii_digit() {
                    while i < bytes.len()
                        && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b',')
                    {
                        i += 1;
                    }
                    emit(b"#");
                    sentence_start = false;
                    continue;
                }
                if b.is_ascii_alphabetic() || b >= 0x80 {
                    let start = i;
                    while i < bytes.len()
                        && (bytes[i].is_ascii_alphanumeric()
                            || bytes[i] >= 0x80
                            || bytes[i] == b'\'')
                    {
                        i += 1;
                    }
                    let word = &bytes[start..i];
                    if !sentence_start && word[0].is_ascii_uppercase() && word.len() > 1 {
                        emit(b"@");
                    } else {
                        buf.clear();
                        buf.extend(word.iter().map(u8::to_ascii_lowercase));
                        emit(&buf);
                    }
                    sentence_start = false;
                    continue;
                }
                if matches!(b, b'.' | b'?' | b'!' | b'\n' | b':') {
                    sentence_start = true;
                }
                i += 1;
            }
        }

        pub fn print(text: &str) -> TextPrint {
            let mut token_hashes: Vec<u64> = Vec::new();
            let mut stream: Vec<u8> = Vec::new();
            for_each_token(text, |t| {
                stream.extend_from_slice(t);
                stream.push(b' ');
                token_hashes.push(hash(t, 7));
            });
            let n = token_hashes.len();
            let (prefix, suffix) = if n >= MIN_TEMPLATE_TOKENS {
                (
                    Some(combine(&token_hashes[..PREFIX_TOKENS], 11)),
                    Some(combine(&token_hashes[n - SUFFIX_TOKENS..], 13)),
                )
            } else {
                (None, None)
            };
            TextPrint {
                whole: hash(&stream, 1) as Fingerprint,
                prefix,
                suffix,
                simhash: simhash(&token_hashes[..n.min(MAX_SHINGLED_TOKENS)]),
                tokens: u32::try_from(n).unwrap_or(u32::MAX),
            }
        }

        /// The classic SimHash: one counter per bit position, incremented per set bit.
        pub fn simhash(token_hashes: &[u64]) -> u64 {
            if token_hashes.is_empty() {
                return 0;
            }
            let shingles: Vec<u64> = if token_hashes.len() < 3 {
                vec![combine(token_hashes, 17)]
            } else {
                token_hashes.windows(3).map(|w| combine(w, 17)).collect()
            };
            let mut ones = [0u64; 64];
            for h in &shingles {
                for (bit, c) in ones.iter_mut().enumerate() {
                    *c += (h >> bit) & 1;
                }
            }
            // SPREAD is the table the packed counters add; check it against its definition.
            for (b, spread) in SPREAD.iter().enumerate() {
                for j in 0..8 {
                    assert_eq!((spread >> (8 * j)) & 0xff, ((b >> j) & 1) as u64);
                }
            }
            let n = shingles.len() as u64;
            (0..64).fold(0, |acc, bit| {
                if 2 * ones[bit] > n {
                    acc | (1 << bit)
                } else {
                    acc
                }
            })
        }
    }

    /// SplitMix64, for reproducible pseudo-random inputs.
    struct Mix(u64);

    impl Mix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Texts made of fragments that exercise every branch of the tokeniser.
    fn tricky_text(mix: &mut Mix, pieces: usize) -> String {
        const FRAGMENTS: &[&str] = &[
            "the",
            "The",
            "THE",
            "McDonald",
            "iPhone",
            "I",
            "a",
            "A",
            "don't",
            "O'Neil",
            "'tis",
            "x1",
            "A1",
            "12",
            "3.50",
            "1,234.5",
            "7.",
            "2024-01-02",
            "\"",
            "`",
            "```",
            "\"q\"",
            "`code`",
            " ",
            "  ",
            "\n",
            ".",
            "?",
            "!",
            ":",
            ";",
            ",",
            "-",
            "(",
            ")",
            "$",
            "\\",
            "\\u00e9",
            "\\n",
            "é",
            "École",
            "über",
            "Über",
            "日本語",
            "東京",
            "🍅",
            "❄️",
            "ſ",
            "K",
            "\u{0}",
            "\t",
            "step by step",
            "Explain why.",
            "Jürgen",
            "naïve",
            "ÀB",
            "supercalifragilisticexpialidocious",
            "Antidisestablishmentarianism",
        ];
        let mut s = String::new();
        for _ in 0..pieces {
            s.push_str(FRAGMENTS[mix.below(FRAGMENTS.len())]);
            if mix.below(3) > 0 {
                s.push(' ');
            }
        }
        s
    }

    fn assert_same_as_reference(text: &str) {
        assert_eq!(print(text), reference::print(text), "text {text:?}");
        // The token stream and the token hashes themselves, not only what is folded from them.
        let mut want_stream = Vec::new();
        let mut want_hashes = Vec::new();
        reference::for_each_token(text, |t| {
            want_stream.extend_from_slice(t);
            want_stream.push(b' ');
            want_hashes.push(hash(t, 7));
        });
        let mut out = vec![0u8; 2 * text.len()];
        let mut hashes = Vec::new();
        let len = tokenise(text, &mut out, |h| hashes.push(h));
        assert_eq!(&out[..len], &want_stream[..], "text {text:?}");
        assert_eq!(hashes, want_hashes, "text {text:?}");
    }

    #[test]
    fn mask_token_hashes_are_the_runtime_hashes() {
        assert_eq!(HASH_QUOTED, hash(b"\"", 7));
        assert_eq!(HASH_NUMBER, hash(b"#", 7));
        assert_eq!(HASH_NAME, hash(b"@", 7));
    }

    #[test]
    fn one_pass_print_matches_the_reference_on_tricky_texts() {
        let long_quote = format!("before \"{}\" after", "x".repeat(1000));
        let long_word = "Ab".repeat(5000);
        let many_tokens = "Word number 7, said Ann. ".repeat(200);
        let huge = "lorem ipsum dolor sit amet ".repeat(20_000);
        let fixed: Vec<&str> = vec![
            "",
            " ",
            "\"",
            "`",
            "\"unterminated",
            "`unterminated code",
            "\"\"",
            "1",
            "1.",
            "é",
            "É",
            "Éa",
            "\u{0}\u{ffff}",
            "A",
            "AB",
            "x AB",
            "x. AB",
            "...",
            "a b",
            "a b c",
            "one two three four five six seven eight nine ten eleven",
            "one two three four five six seven eight nine ten eleven twelve",
            "Caf\\u00e9 \\\"quoted\\\" text",
            "Du bist ein geduldiger Mathematiklehrer. Réponds en français. 丁寧に説明してください。",
            "wait: Then Sarah said \"hi\" to Tom! Why? Because.",
            "ends with a word",
            "ends with a Name",
            "ends with 42",
            &long_quote,
            &long_word,
            &many_tokens,
            &huge,
        ];
        for text in fixed {
            assert_same_as_reference(text);
        }
        let mut mix = Mix(1);
        for round in 0..3000 {
            let text = tricky_text(&mut mix, round % 400);
            assert_same_as_reference(&text);
        }
    }

    #[test]
    fn simhash_counts_match_the_classic_counting() {
        let mut mix = Mix(2);
        // Past 255 groups of eight the byte-wide counters flush mid-way.
        for len in [
            0, 1, 2, 3, 4, 7, 8, 9, 10, 16, 17, 100, 383, 384, 385, 2042, 2043, 5000,
        ] {
            let hashes: Vec<u64> = (0..len).map(|_| mix.next()).collect();
            assert_eq!(simhash(&hashes), reference::simhash(&hashes), "len {len}");
            // All-ones and all-zeros hashes push every counter to its extremes.
            let ones = vec![u64::MAX; len];
            assert_eq!(simhash(&ones), reference::simhash(&ones), "len {len}");
        }
    }

    #[test]
    fn odd_input_never_panics() {
        for s in [
            "",
            "\"",
            "`",
            "\"unterminated",
            "1",
            "é",
            "\u{0}\u{ffff}",
            "A",
            "...",
        ] {
            let _ = print(s);
        }
    }
}
