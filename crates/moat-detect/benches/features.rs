//! What the detector costs per request: reading a chat body into a view, extracting features from
//! it, reading a whole trace line (what `moat detect replay` does per event), and folding one event
//! into a detector that already tracks 10 k or 100 k accounts.
//!
//! Acceptance (issue 3): parse + extract of a 2 KB prompt in at most 20 µs (medians on the 2-core
//! dev machine: about 10 µs English, 9 µs non-ASCII, 12 µs escaped; extraction alone 6-8 µs).
//!
//! `cargo bench -p moat-detect --bench features`
//!
//! Prompts come in three encodings of the same size: plain English; mixed-script text (German,
//! French, Japanese, emoji) sent as raw UTF-8; and that text with every non-ASCII character
//! written as a `\uXXXX` escape, as clients that serialise with `ensure_ascii` send it (escapes
//! force the view to copy the string instead of borrowing it).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use moat_detect::features::{Extractor, RequestFeatures};
use moat_detect::trace::Record;
use moat_detect::{Detector, DetectorConfig, Event};
use moat_protocol::view::{RequestView, ViewApi};
use serde_json::json;

fn main() {
    divan::main();
}

const PROMPTS: &[&str] = &["english", "non_ascii", "non_ascii_escaped"];

const SYSTEM_EN: &str = "You are a patient maths tutor for a secondary school. Answer in plain \
English, keep every number exact, and justify every step before you give the final answer.";

/// About 1.8 KB of English: a word problem with names, quantities, a quoted note and a
/// chain-of-thought ask at the end.
const USER_EN: &str = "A community garden in the north of the town has 14 raised beds. Each \
spring the volunteers split the beds between vegetables and flowers. This year Margaret, who \
runs the garden, decided that twice as many beds should hold vegetables as flowers, and that two \
beds would stay empty to rest the soil. The vegetable beds are planted with tomatoes, beans and \
lettuce in the ratio 3 : 2 : 1, and each tomato bed yields about 18.5 kilograms over the \
season, each bean bed 7 kilograms and each lettuce bed 42 heads. The volunteers sell half of \
the tomatoes at the Saturday market for 2.40 per kilogram and give the rest to the food bank; \
beans sell for 3.10 per kilogram and lettuce for 0.90 a head, and all of those are sold. On \
the noticeboard someone pinned a note that reads \"water the beans before nine, the tomatoes \
after six\", and Daniel, the treasurer, keeps a ledger of every sale in a blue notebook. Seeds \
and compost for the season cost 186 in total, and the town council pays a grant of 120 towards \
the costs if at least 60 percent of the planted beds grow food. Last year the garden made a \
loss of 35 because a late frost killed most of the lettuce in April, so this year the \
volunteers covered the lettuce bed with fleece every cold night. Margaret wants to know \
whether the garden will make a profit this season, how large it will be, and whether the \
council grant applies under the new plan. She also asks what would change if one of the \
resting beds were planted with beans after all, and whether the grant would still be paid in \
that case. Please work out how many beds of each kind there are, the income from each crop, \
whether the grant is paid, and the profit or loss in both plans. Think it through step by \
step, show your reasoning for every calculation, and then state the final answers clearly.";

const SYSTEM_INTL: &str = "Du bist ein geduldiger Mathematiklehrer. Réponds en français ou en \
allemand, garde chaque nombre exact et justifie chaque étape. 丁寧に説明してください。";

/// About 1.8 KB of mixed-script text (German, French, Japanese, emoji), raw UTF-8.
const USER_INTL: &str = "Ein Gemeinschaftsgarten im Norden der Stadt hat 14 Hochbeete. Jedes \
Frühjahr teilen die Freiwilligen die Beete zwischen Gemüse und Blumen auf. Dieses Jahr hat \
Jürgen entschieden, dass doppelt so viele Beete Gemüse tragen sollen wie Blumen, und dass zwei \
Beete brachliegen, damit sich der Boden erholt. Les planches de légumes sont plantées de \
tomates, de haricots et de laitues dans le rapport 3 : 2 : 1 ; chaque planche de tomates \
donne environ 18,5 kilogrammes, chaque planche de haricots 7 kilogrammes et chaque planche de \
laitues 42 têtes. Die Hälfte der Tomaten wird am Samstagsmarkt für 2,40 € pro Kilogramm \
verkauft 🍅, der Rest geht an die Tafel. 豆は1キロあたり3.10ユーロ、レタスは1個0.90ユーロで\
すべて売れます。種と堆肥の費用は合計186ユーロで、植えた畑の60パーセント以上が食料を育てていれば、\
市から120ユーロの補助金が出ます。Sur le tableau d'affichage, quelqu'un a épinglé une note : \
« arroser les haricots avant neuf heures, les tomates après dix-huit heures » 🌱. Letztes \
Jahr machte der Garten 35 € Verlust, weil ein später Frost im April fast den ganzen Salat \
zerstört hat ❄️. Jürgen möchte wissen, ob der Garten in dieser Saison Gewinn macht, wie groß \
er ist und ob der Zuschuss nach dem neuen Plan gezahlt wird. Et si l'une des planches en repos \
était finalement plantée de haricots, la subvention serait-elle encore versée ? \
各作物の収入、補助金の有無、そして両方の計画での損益を計算してください。Denke Schritt für \
Schritt nach, explain your reasoning step by step, et donne ensuite les réponses finales. ✅";

fn chat_body(system: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user}
        ],
        "max_tokens": 1024,
        "temperature": 0.7,
        "user": "end-user-42"
    }))
    .unwrap()
}

/// Writes every non-ASCII character of a JSON document as `\uXXXX` (surrogate pairs above the
/// BMP). Outside strings a JSON document is ASCII, so a character-wise pass is exact.
fn ascii_escaped(json: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(json).unwrap();
    let mut out = String::with_capacity(text.len() * 2);
    let mut units = [0u16; 2];
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// The request body for one of [`PROMPTS`].
fn body(kind: &str) -> Vec<u8> {
    match kind {
        "english" => chat_body(SYSTEM_EN, USER_EN),
        "non_ascii" => chat_body(SYSTEM_INTL, USER_INTL),
        "non_ascii_escaped" => ascii_escaped(&chat_body(SYSTEM_INTL, USER_INTL)),
        other => panic!("unknown prompt {other}"),
    }
}

/// Prompt text bytes (system and user), the size the acceptance figure is about.
fn prompt_bytes(kind: &str) -> usize {
    match kind {
        "english" => SYSTEM_EN.len() + USER_EN.len(),
        _ => SYSTEM_INTL.len() + USER_INTL.len(),
    }
}

#[divan::bench(args = PROMPTS)]
fn parse_view(bencher: Bencher, kind: &str) {
    let body = body(kind);
    bencher
        .counter(BytesCount::new(body.len()))
        .bench(|| RequestView::parse(ViewApi::OpenAiChat, black_box(&body)).map(|v| v.turns.len()));
}

#[divan::bench(args = PROMPTS)]
fn extract(bencher: Bencher, kind: &str) {
    let body = body(kind);
    let extractor = Extractor::new();
    let view = RequestView::parse(ViewApi::OpenAiChat, &body).unwrap();
    bencher
        .counter(BytesCount::new(prompt_bytes(kind)))
        .bench(|| extractor.extract(black_box(&view)));
}

/// The acceptance figure: body bytes in, features out.
#[divan::bench(args = PROMPTS)]
fn parse_and_extract(bencher: Bencher, kind: &str) {
    let body = body(kind);
    let extractor = Extractor::new();
    bencher.counter(BytesCount::new(body.len())).bench(|| {
        RequestView::parse(ViewApi::OpenAiChat, black_box(&body)).map(|v| extractor.extract(&v))
    });
}

/// One trace line as `moat detect replay` reads it: the envelope, the body, the features.
#[divan::bench(args = PROMPTS)]
fn trace_line(bencher: Bencher, kind: &str) {
    let request: serde_json::Value = serde_json::from_slice(&body(kind)).unwrap();
    let line = serde_json::to_string(&json!({
        "ts": "2026-03-12T01:45:20.509Z", "request_id": "req_0000001234", "account": "acct_000123",
        "key_id": "key_000123", "end_user": "end-user-42",
        "account_created": "2026-03-11T10:41:10.570Z", "ip": "203.0.113.69",
        "user_agent": "python-httpx/0.27", "api": "openai.chat", "model": "gpt-4o",
        "request": request, "response": {"input_tokens": 512, "output_tokens": 640}
    }))
    .unwrap();
    let line = if kind == "non_ascii_escaped" {
        String::from_utf8(ascii_escaped(line.as_bytes())).unwrap()
    } else {
        line
    };
    let extractor = Extractor::new();
    bencher
        .counter(BytesCount::new(line.len()))
        .bench(|| Record::parse(black_box(&line), &extractor).map(|r| r.features.category));
}

/// SplitMix64: a fixed, dependency-free source of varied inputs.
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

/// A pool of distinct feature sets: chat turns, app requests under a few system prompts, and
/// single-turn asks with and without reasoning cues, so accounts hold varied state.
fn feature_pool(extractor: &Extractor) -> Vec<RequestFeatures> {
    const SYSTEMS: &[&str] = &[
        "You are a helpful assistant for an online bookshop. Answer questions about orders.",
        "You are a senior engineer reviewing pull requests. Be concise and point out bugs.",
        "Answer as a careful tutor and explain your reasoning in numbered steps every time.",
        "You translate customer e-mails into formal English without adding anything.",
    ];
    const ASKS: &[&str] = &[
        "Can you suggest a name for a small bakery that sells sourdough and cinnamon rolls?",
        "A train leaves at 9 and travels 240 km at 80 km/h. When does it arrive? Think step by step.",
        "Write a Python function that merges two sorted lists into one sorted list.",
        "What did the author mean by the last paragraph of the essay I pasted earlier?",
        "Summarise the attached meeting notes in five bullet points for the team.",
    ];
    let mut pool = Vec::new();
    for (i, ask) in ASKS.iter().enumerate() {
        for variant in 0..8 {
            let user = format!("{ask} (case {variant}, item {i})");
            let messages = match variant % 4 {
                0 => json!([{"role": "user", "content": user}]),
                1 => json!([
                    {"role": "system", "content": SYSTEMS[variant % SYSTEMS.len()]},
                    {"role": "user", "content": user}
                ]),
                2 => json!([
                    {"role": "user", "content": "Hi, I have a question about my order."},
                    {"role": "assistant", "content": "Of course, what is the order number?"},
                    {"role": "user", "content": user}
                ]),
                _ => json!([
                    {"role": "system", "content": SYSTEMS[(variant + i) % SYSTEMS.len()]},
                    {"role": "user", "content": format!("{user} Explain each step in detail.")}
                ]),
            };
            let body = serde_json::to_vec(&json!({"model": "m", "messages": messages})).unwrap();
            let view = RequestView::parse(ViewApi::OpenAiChat, &body).unwrap();
            pool.push(extractor.extract(&view));
        }
    }
    pool
}

/// Warm-up requests per account before measuring, so each account holds realistic state
/// (system prompts, networks, hourly ring, near-duplicate ring).
const WARM_REQUESTS: usize = 16;
const T0: i64 = 1_772_323_200_000;

/// `observe` on a detector tracking `accounts` accounts; each measured event goes to a random one.
#[divan::bench(args = [10_000, 100_000], sample_count = 200)]
fn observe(bencher: Bencher, accounts: usize) {
    let extractor = Extractor::new();
    let pool = feature_pool(&extractor);
    let names: Vec<String> = (0..accounts).map(|i| format!("acct_{i:07}")).collect();
    let mut mix = Mix(7);
    let mut detector = Detector::new(DetectorConfig::default());
    // Two weeks of traffic per account, spread so time only moves forward.
    let step = 14 * 86_400_000 / (accounts * WARM_REQUESTS) as i64;
    let mut ts = T0;
    for _ in 0..WARM_REQUESTS {
        for name in &names {
            ts += step;
            let net = mix.below(64) as u8;
            detector.observe(&Event {
                ts_ms: ts,
                request_id: "req_warm",
                account: name,
                end_user: None,
                account_created_ms: Some(T0 - 90 * 86_400_000),
                ip: Some([100, 64, net, 7].into()),
                input_tokens: 400,
                output_tokens: 300,
                features: &pool[mix.below(pool.len())],
            });
        }
    }
    assert_eq!(detector.accounts(), accounts);
    bencher
        .with_inputs(|| {
            ts += 50;
            (
                mix.below(accounts),
                mix.below(pool.len()),
                mix.below(64) as u8,
                ts,
            )
        })
        .bench_local_values(|(a, p, net, ts)| {
            detector.observe(black_box(&Event {
                ts_ms: ts,
                request_id: "req_x",
                account: &names[a],
                end_user: None,
                account_created_ms: Some(T0 - 90 * 86_400_000),
                ip: Some([100, 64, net, 7].into()),
                input_tokens: 400,
                output_tokens: 300,
                features: &pool[p],
            }))
        });
}

/// `observe` for end users behind one app key (the key passes end-user ids), 100 k end users.
#[divan::bench(sample_count = 200)]
fn observe_end_user(bencher: Bencher) {
    const USERS: usize = 100_000;
    let extractor = Extractor::new();
    let pool = feature_pool(&extractor);
    let users: Vec<String> = (0..USERS).map(|i| format!("user_{i:07}")).collect();
    let mut mix = Mix(11);
    let mut detector = Detector::new(DetectorConfig::default());
    let mut ts = T0;
    for _ in 0..4 {
        for user in &users {
            ts += 100;
            detector.observe(&Event {
                ts_ms: ts,
                request_id: "req_warm",
                account: "acct_app",
                end_user: Some(user),
                account_created_ms: Some(T0 - 400 * 86_400_000),
                ip: Some([198, 51, 100, 7].into()),
                input_tokens: 400,
                output_tokens: 300,
                features: &pool[mix.below(pool.len())],
            });
        }
    }
    assert_eq!(detector.end_users(), USERS);
    bencher
        .with_inputs(|| {
            ts += 50;
            (mix.below(USERS), mix.below(pool.len()), ts)
        })
        .bench_local_values(|(u, p, ts)| {
            detector.observe(black_box(&Event {
                ts_ms: ts,
                request_id: "req_x",
                account: "acct_app",
                end_user: Some(&users[u]),
                account_created_ms: Some(T0 - 400 * 86_400_000),
                ip: Some([198, 51, 100, 7].into()),
                input_tokens: 400,
                output_tokens: 300,
                features: &pool[p],
            }))
        });
}
