//! Arbitrary text never panics, and every reported line lies inside the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use moat_config::{parse, MapEnv};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    "\"\"\"",
    "{",
    "}",
    ",",
    "\n",
    ".",
    " ",
    "#",
    "${",
    "$$",
    "$",
    ":-",
    "server",
    "store",
    "keys",
    "providers",
    "models",
    "targets",
    "fallbacks",
    "name",
    "kind",
    "base_url",
    "api_key",
    "headers",
    "listen",
    "path",
    "weight",
    "cache_ttl",
    "max_body_bytes",
    "shutdown_grace",
    "\"openai\"",
    "\"anthropic\"",
    "\"a\"",
    "\"b\"",
    "\"${KEY}\"",
    "\"${NOPE}\"",
    "\"5s\"",
    "\"0s\"",
    "0",
    "1",
    "-1",
    "99999999999999999999",
    "1.5",
    "true",
    "1979-05-27T07:32:00Z",
    "é",
    "\u{0}",
    "\r\n",
    "\t",
    "\u{feff}",
    "\\",
    "\"https://x\"",
    "\"127.0.0.1:4000\"",
    "= [",
    "= {",
    "\"m\"",
    "\"p\"",
];

fn check(text: &str) {
    let env = MapEnv::new([
        ("KEY", "k"),
        ("OPENAI_API_KEY", "a"),
        ("ANTHROPIC_API_KEY", "b"),
    ]);
    let result = std::panic::catch_unwind(|| parse(text, "fuzz.toml", Path::new("/x"), &env));
    let Ok(result) = result else {
        panic!("parse panicked on {text:?}");
    };
    if let Err(e) = result {
        assert!(!e.errors.is_empty(), "no errors listed for {text:?}");
        let lines = text.lines().count().max(1) + 1;
        for err in &e.errors {
            if let Some(line) = err.line {
                assert!(
                    (1..=lines).contains(&line),
                    "line {line} of {lines} for {text:?}"
                );
            }
        }
        let _ = e.to_string();
    }
}

#[test]
fn random_token_soup_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let len = rng.below(40);
        let text: String = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        check(&text);
    }
}

#[test]
fn mutations_of_the_example_never_panic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/moat.toml");
    let example = std::fs::read_to_string(path).unwrap();
    let chars: Vec<char> = example.chars().collect();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..2000 {
        let mut text = chars.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(text.len());
            match rng.below(3) {
                0 => {
                    let end = (at + rng.below(20)).min(text.len());
                    text.drain(at..end);
                }
                1 => {
                    let token = TOKENS[rng.below(TOKENS.len())];
                    for (i, c) in token.chars().enumerate() {
                        text.insert(at + i, c);
                    }
                }
                _ => {
                    let end = (at + rng.below(30)).min(text.len());
                    let copy: Vec<char> = text[at..end].to_vec();
                    let to = rng.below(text.len());
                    for (i, c) in copy.into_iter().enumerate() {
                        text.insert(to + i, c);
                    }
                }
            }
        }
        check(&text.into_iter().collect::<String>());
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    check(&text);
    let text = format!("a = {}{}", "{ b = ".repeat(50_000), "}".repeat(50_000));
    check(&text);
}

#[test]
fn a_long_fallback_cycle_is_found_without_recursion() {
    let n = 2000;
    let mut text = String::from(
        "[store]\npath = \"x\"\n[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"https://x\"\n",
    );
    for i in 0..n {
        let next = (i + 1) % n;
        text.push_str(&format!(
            "[[models]]\nname = \"m{i}\"\ntargets = [{{ provider = \"p\", model = \"x\" }}]\nfallbacks = [\"m{next}\"]\n"
        ));
    }
    let err = parse(&text, "moat.toml", Path::new(""), &MapEnv::default()).unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!(err.errors[0].line, Some(10));
    assert!(err.errors[0]
        .message
        .starts_with("fallback cycle: m0 -> m1 -> m2"));
    assert!(err.errors[0].message.ends_with("m1999 -> m0"));
}
