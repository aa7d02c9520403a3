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

/// Masks `text` into tokens, calling `emit` with each token's bytes.
fn for_each_token(text: &str, mut emit: impl FnMut(&[u8])) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut sentence_start = true;
    let mut buf: Vec<u8> = Vec::with_capacity(32);
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'`' {
            // Quoted data or code: one token up to the matching quote (or 400 bytes on).
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
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] >= 0x80 || bytes[i] == b'\'')
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

/// Computes the fingerprints of `text`.
pub fn print(text: &str) -> TextPrint {
    let mut token_hashes: Vec<u64> = Vec::with_capacity(64);
    // The masked stream, hashed once at the end: the same digest as feeding a streaming XXH3
    // token by token, without its per-call buffering.
    let mut stream: Vec<u8> = Vec::with_capacity(text.len() + 16);
    for_each_token(text, |t| {
        stream.extend_from_slice(t);
        stream.push(b' ');
        token_hashes.push(hash(t, 7));
    });
    let total = u32::try_from(token_hashes.len()).unwrap_or(u32::MAX);
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
        whole: hash(&stream, 1),
        prefix,
        suffix,
        simhash: simhash(&token_hashes[..n.min(MAX_SHINGLED_TOKENS)]),
        tokens: total,
    }
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

/// SimHash (Charikar 2002) over word trigrams given as per-token hashes.
///
/// Counts the set bits of each position over all shingles (eight byte-wide counters per `u64`,
/// flushed before they can overflow); a bit of the result is set when it is set in more than
/// half the shingles (the sign of the classic +1/-1 sum).
pub fn simhash(token_hashes: &[u64]) -> u64 {
    if token_hashes.is_empty() {
        return 0;
    }
    let mut ones = [0u32; 64];
    let mut packed = [0u64; 8];
    let mut pending = 0u32;
    let mut shingles = 0u32;
    let add = |h: u64, packed: &mut [u64; 8], pending: &mut u32| {
        for (k, p) in packed.iter_mut().enumerate() {
            *p += SPREAD[((h >> (8 * k)) & 0xff) as usize];
        }
        *pending += 1;
    };
    let flush = |packed: &mut [u64; 8], ones: &mut [u32; 64]| {
        for (k, p) in packed.iter_mut().enumerate() {
            for j in 0..8 {
                ones[8 * k + j] += ((*p >> (8 * j)) & 0xff) as u32;
            }
            *p = 0;
        }
    };
    if token_hashes.len() < 3 {
        add(combine(token_hashes, 17), &mut packed, &mut pending);
        shingles = 1;
    } else {
        for w in token_hashes.windows(3) {
            add(combine(w, 17), &mut packed, &mut pending);
            shingles += 1;
            if pending == 255 {
                flush(&mut packed, &mut ones);
                pending = 0;
            }
        }
    }
    flush(&mut packed, &mut ones);
    ones.iter().enumerate().fold(0u64, |acc, (bit, &c)| {
        if 2 * c > shingles {
            acc | (1 << bit)
        } else {
            acc
        }
    })
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
