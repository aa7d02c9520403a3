//! Request bodies: what each kind of client sends, written as OpenAI chat JSON.
//!
//! Every body is a pure function of its [`Content`] (seeds and counters), so a worker thread can
//! build it without any shared state and the stream is the same whatever thread builds it.

use std::fmt::Write;

use super::rng::Rng;
use super::vocab::*;

/// What one request carries; enough to rebuild its body.
#[derive(Debug, Clone, Copy)]
pub enum Content {
    /// A farm account's harvesting ask: one turn, a word problem or instruction wrapped in a
    /// chain-of-thought ask, under one of the farm's rotating system prompts.
    Attack {
        /// The farm's seed (its system prompts).
        farm: u64,
        /// The request's own seed (the problem, the wrapper, the rotation).
        seed: u64,
    },
    /// A turn of a chat session: the earlier turns are replayed as history.
    Chat {
        /// The session's seed (topic, follow-ups, answers).
        session: u64,
        /// Turns before this one.
        turn: u8,
        /// Written in another language than English.
        intl: bool,
        /// The consumer chat app the user talks through (its fixed system prompt), if any.
        app: Option<u64>,
    },
    /// An app's request: its one fixed system prompt and a user input.
    App {
        /// The app's seed (its kind and system prompt).
        app: u64,
        /// The request's seed (the input).
        seed: u64,
    },
    /// An evaluation harness item: a fixed template around the suite's item `item`.
    Eval {
        /// The suite's seed (its template and items).
        suite: u64,
        /// Which item.
        item: u32,
    },
}

/// Token counts the simulated provider reports for a request.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

/// Appends the OpenAI chat body for `content` (naming `end_user` in `user`, if any) to `out`;
/// returns the usage the provider would report.
pub fn write_body(content: &Content, end_user: Option<&str>, out: &mut String) -> Usage {
    out.push_str(r#"{"model":"gpt-4o","messages":["#);
    let start = out.len();
    let (max_tokens, output) = match *content {
        Content::Attack { farm, seed } => attack(farm, seed, out),
        Content::Chat {
            session,
            turn,
            intl,
            app,
        } => chat(session, turn, intl, app, out),
        Content::App { app, seed } => app_request(app, seed, out),
        Content::Eval { suite, item } => eval(suite, item, out),
    };
    let input = ((out.len() - start) / 4).max(1) as u64;
    out.push(']');
    let _ = write!(out, r#","max_tokens":{max_tokens},"temperature":0.7"#);
    if let Some(user) = end_user {
        out.push_str(r#","user":"#);
        json_str(out, user);
    }
    out.push('}');
    Usage { input, output }
}

/// Appends one message object (with a leading comma unless it is the first).
fn message(out: &mut String, role: &str, text: &str) {
    if !out.ends_with('[') {
        out.push(',');
    }
    let _ = write!(out, r#"{{"role":"{role}","content":"#);
    json_str(out, text);
    out.push('}');
}

/// Appends `s` as a JSON string: runs of plain characters are copied whole.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `i` is a character boundary.
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// The farm.

const ROLES: &[&str] = &[
    "You are an expert problem solver",
    "You are a meticulous teacher",
    "You are a world-class reasoning assistant",
    "You are a senior analyst who never skips a step",
    "You are a careful mathematician and logician",
    "You are a patient tutor for advanced students",
];
const METHODS: &[&str] = &[
    "Always think step by step and show your complete reasoning before the final answer.",
    "Lay out your thought process in numbered steps and justify every step.",
    "Reason through the problem carefully, checking each intermediate result.",
    "Explain the logic behind each step so a student could follow it.",
    "Break every problem into small steps and explain why each one follows.",
    "Work through the problem slowly, writing down every intermediate calculation.",
];
const FORMATS: &[&str] = &[
    "End with the final answer on its own line.",
    "Finish with a one-sentence summary of the answer.",
    "Put the final answer after the words 'Final answer:'.",
    "Keep the explanation complete even when the answer seems obvious.",
];
/// System prompts in a farm's rotation.
const FARM_SYSTEMS: usize = 12;

const WRAP_PREFIX: &[&str] = &[
    "Solve the following problem.",
    "Here is a question for you:",
    "Consider this problem carefully.",
    "Problem:",
    "Answer the question below.",
    "I need a complete solution to this:",
    "Task:",
    "Please work on the following.",
    "Question:",
    "",
];
const WRAP_SUFFIX: &[&str] = &[
    "Think step by step and explain your reasoning.",
    "Show your work and explain each step before giving the final answer.",
    "Walk me through your reasoning, then state the answer.",
    "Reason carefully through every step and put the final answer on its own line.",
    "Explain the logic behind each step.",
    "Break it down into numbered steps and justify each one.",
    "Show all your work, including intermediate results.",
    "Explain your reasoning in detail before answering.",
    "Let's think it through one step at a time.",
    "Give a worked solution with a short justification for every step.",
];

/// The farm's `i`-th system prompt: role, method and format drawn from the farm's seed.
fn farm_system(farm: u64, i: usize, out: &mut String) {
    let mut r = Rng::derive(farm, i as u64);
    let _ = write!(
        out,
        "{}. {} {}",
        r.pick(ROLES),
        r.pick(METHODS),
        r.pick(FORMATS)
    );
}

fn attack(farm: u64, seed: u64, out: &mut String) -> (u32, u64) {
    let mut r = Rng::new(seed);
    let mut text = String::with_capacity(512);
    // Most asks carry one of the farm's system prompts, in rotation.
    if !r.chance(0.12) {
        farm_system(farm, r.below(FARM_SYSTEMS), &mut text);
        message(out, "system", &text);
        text.clear();
    }
    let prefix = r.pick(WRAP_PREFIX);
    if !prefix.is_empty() {
        text.push_str(prefix);
        text.push(if r.chance(0.5) { '\n' } else { ' ' });
    }
    if r.chance(0.7) {
        problem(&mut r, &mut text);
    } else {
        instruction(&mut r, &mut text);
    }
    text.push(if r.chance(0.5) { '\n' } else { ' ' });
    text.push_str(r.pick::<&str>(WRAP_SUFFIX));
    message(out, "user", &text);
    (r.range(1024, 4096) as u32, r.range(350, 1400))
}

/// A generated word problem.
fn problem(r: &mut Rng, t: &mut String) {
    let (n1, n2) = (*r.pick(NAMES), *r.pick(NAMES));
    let item = *r.pick(ITEMS);
    let _ = match r.below(12) {
        0 => write!(t, "{n1} has {} {item}. {n2} gives {n1} {} more, and then {n1} gives away {} to friends at the {}. How many {item} does {n1} have now, and what fraction of the original amount is that?",
            r.range(20, 400), r.range(5, 90), r.range(3, 60), r.pick(PLACES)),
        1 => write!(t, "A {} travels {} km at {} km/h, stops for {} minutes, and then covers another {} km at {} km/h. What is its average speed for the whole journey, including the stop?",
            r.pick(VEHICLES), r.range(20, 300), r.range(30, 120), r.range(5, 45), r.range(10, 200), r.range(20, 110)),
        2 => write!(t, "A pack of {item} at the {} costs ${}.{:02}. It is discounted by {}% and then a {}% sales tax is added. {n1} buys {} packs. How much does {n1} pay in total?",
            r.pick(PLACES), r.range(2, 80), r.range(0, 99), r.range(5, 40), r.range(3, 12), r.range(2, 9)),
        3 => write!(t, "{n1} can paint a fence in {} hours and {n2} can paint the same fence in {} hours. If they work together for {} hours and then {n2} leaves, how long does {n1} need to finish the job alone?",
            r.range(3, 12), r.range(4, 15), r.range(1, 2)),
        4 => write!(t, "{n1} is {} years older than {n2}. In {} years the sum of their ages will be {}. How old is each of them now, and how old was {n2} when {n1} was twice {n2}'s age?",
            r.range(2, 20), r.range(2, 10), r.range(40, 120)),
        5 => write!(t, "A rectangular {} is {} m long and {} m wide. A path {} m wide runs all the way around it on the outside. What is the area of the path, and how many tiles of 0.5 m by 0.5 m are needed to cover it?",
            r.pick(FIELDS), r.range(8, 90), r.range(5, 60), r.range(1, 4)),
        6 => write!(t, "A {} holds {} litres of a solution that is {}% salt. How many litres of pure water must be added to bring the concentration down to {}%? What if {} litres are drained first?",
            r.pick(CONTAINERS), r.range(10, 500), r.range(12, 40), r.range(3, 10), r.range(2, 9)),
        7 => write!(t, "A bag holds {} red, {} blue and {} green marbles. {n1} draws two marbles without replacement. What is the probability that both are the same colour? What is it with replacement?",
            r.range(2, 12), r.range(2, 12), r.range(2, 12)),
        8 => write!(t, "{n1} invests ${} at {}.{}% interest compounded {} for {} years, while {n2} invests the same amount at simple interest of {}%. Who has more at the end, and by how much?",
            r.range(500, 20000), r.range(1, 9), r.range(0, 9), r.pick(&["monthly", "quarterly", "yearly"]), r.range(2, 25), r.range(2, 10)),
        9 => write!(t, "The first term of an arithmetic sequence is {} and its {}th term is {}. What is the common difference, and what is the sum of the first {} terms?",
            r.range(1, 50), r.range(5, 30), r.range(60, 900), r.range(10, 60)),
        10 => write!(t, "Five friends, {n1}, {n2}, {}, {} and {}, sit in a row. {n1} is not at either end, {n2} sits directly to the right of {n1}, and the person in the middle is older than everyone to the left. Who can sit in the middle, and how many seatings are possible?",
            r.pick(NAMES), r.pick(NAMES), r.pick(NAMES)),
        _ => write!(t, "The {} receives {} boxes of {item}, each holding {}. It sells {}% of them on Monday and {} on Tuesday, and {} are returned as damaged. How many {item} are left for Wednesday?",
            r.pick(PLACES), r.range(5, 80), r.range(6, 48), r.range(10, 60), r.range(10, 200), r.range(1, 20)),
    };
}

/// A generated instruction (explain, write code, prove, compare).
fn instruction(r: &mut Rng, t: &mut String) {
    let _ = match r.below(6) {
        0 => write!(t, "Explain how {} works to someone who has never studied it, and describe one common misconception about it.", r.pick(CONCEPTS)),
        1 => write!(t, "Write a {} function that {}. Describe its time and space complexity.", r.pick(LANGS), r.pick(CODE_TASKS)),
        2 => write!(t, "Prove that {}.", r.pick(CLAIMS)),
        3 => write!(t, "Why does {}? Give the physical or economic reason, not just a description.", r.pick(PHENOMENA)),
        4 => write!(t, "Compare {} and {}: where are they alike, where do they differ, and when would you use each?", r.pick(CONCEPTS), r.pick(CONCEPTS)),
        _ => write!(t, "A student claims that {} is the same thing as {}. Is the student right? Analyse the claim.", r.pick(CONCEPTS), r.pick(CONCEPTS)),
    };
}

// ---------------------------------------------------------------------------------------------
// Chat users.

fn opener(r: &mut Rng, t: &mut String) {
    let _ = match r.below(10) {
        0 => write!(t, "Can you help me plan a {}-day trip to {}? I like {} and {}.", r.range(2, 7), r.pick(CITIES), r.pick(INTERESTS), r.pick(INTERESTS)),
        1 => write!(t, "What's a good recipe for {} that doesn't need {}?", r.pick(DISHES), r.pick(INGREDIENTS)),
        2 => write!(t, "My {} keeps {}. Any tips?", r.pick(PETS), r.pick(BEHAVIOURS)),
        3 => write!(t, "I'm writing an email to my landlord about {}. Can you make this sound more polite: \"fix it this week or I'm calling someone\"", r.pick(ISSUES)),
        4 => write!(t, "How do I fix this error in {}: {}", r.pick(LANGS), r.pick(ERRORS)),
        5 => write!(t, "Give me some ideas for a {} gift for my {}, budget around {} euros.", r.pick(OCCASIONS), r.pick(RELATIVES), r.range(20, 150)),
        6 => write!(t, "what is {} in simple words", r.pick(CONCEPTS)),
        7 => write!(t, "I have a job interview at a company that makes {} on {}. What questions should I prepare for?", r.pick(PRODUCTS), r.pick(&["Monday", "Thursday", "Friday"])),
        8 => write!(t, "Can you summarise the main causes of {} in a few sentences?", r.pick(&["the French Revolution", "the 2008 financial crisis", "the fall of Rome", "climate change"])),
        _ => write!(t, "I want to start running. I can do about {} minutes now. Can you make me a {}-week plan?", r.range(5, 20), r.range(4, 10)),
    };
}

fn answer(r: &mut Rng, t: &mut String) {
    t.push_str(r.pick::<&str>(ASSISTANT_OPENERS));
    for i in 1..=r.range(2, 4) {
        let _ = write!(t, "\n{i}. {} {}", r.pick(FILLER), r.pick(FILLER));
    }
    t.push_str("\nLet me know if you want me to adjust anything.");
}

fn chat(session: u64, turn: u8, intl: bool, app: Option<u64>, out: &mut String) -> (u32, u64) {
    let mut r = Rng::new(session);
    let mut text = String::with_capacity(512);
    if let Some(app) = app {
        let name = company(&mut Rng::new(app));
        let _ = write!(text, "You are Juno, the friendly assistant in the {name} app. Be warm and concise, answer in the user's language, and never give medical, legal or financial advice.");
        message(out, "system", &text);
    }
    for t in 0..=turn {
        text.clear();
        match (t, intl) {
            (0, false) => opener(&mut r, &mut text),
            (0, true) => text.push_str(r.pick::<&str>(INTL_OPENERS)),
            (_, false) => text.push_str(r.pick::<&str>(FOLLOW_UPS)),
            (_, true) => text.push_str(r.pick::<&str>(INTL_FOLLOW_UPS)),
        }
        message(out, "user", &text);
        if t < turn {
            text.clear();
            answer(&mut r, &mut text);
            message(out, "assistant", &text);
        }
    }
    let mut r = Rng::derive(session, u64::from(turn) + 1);
    (r.range(256, 2048) as u32, r.range(40, 600))
}

// ---------------------------------------------------------------------------------------------
// Apps: one fixed system prompt each.

fn company(r: &mut Rng) -> String {
    format!("{}{}", r.pick(COMPANY_HEADS), r.pick(COMPANY_TAILS))
}

fn app_request(app: u64, seed: u64, out: &mut String) -> (u32, u64) {
    let mut a = Rng::new(app);
    let kind = a.below(5);
    let name = company(&mut a);
    let product = *a.pick(PRODUCTS);
    let mut text = String::with_capacity(512);
    let mut r = Rng::new(seed);
    let (system, max, output) = match kind {
        0 => {
            let _ = write!(text, "Order #{} of {product} hasn't arrived yet, it's been {} days. The tracking page says \"in transit\". Can you check what is going on?", r.range(100_000, 999_999), r.range(3, 21));
            (format!("You are the customer support assistant for {name}, an online shop selling {product}. Answer politely and briefly, never promise refunds, and hand over to a human agent when the customer is angry."), 512, r.range(60, 250))
        }
        1 => {
            for _ in 0..r.range(4, 9) {
                text.push_str(r.pick::<&str>(FILLER));
                text.push(' ');
            }
            let doc = *a.pick(DOC_TYPES);
            (format!("Summarise the {doc} the user sends in {} bullet points for a busy manager at {name}. Use plain language and keep names and numbers exact.", a.range(3, 5)), 400, r.range(60, 180))
        }
        2 => {
            let _ = write!(
                text,
                "The {product} {} and {}. {}",
                r.pick(REVIEW_BITS),
                r.pick(REVIEW_BITS),
                r.pick(&["Would not buy again.", "Overall happy.", "Three stars.", ""])
            );
            ("Classify the sentiment of the product review as positive, negative or neutral. Reply with one word only.".to_string(), 3, 1)
        }
        3 => {
            let _ = write!(
                text,
                "Product: {product} model {}{}; colour {}; weight {} g; made in {}.",
                r.pick(COMPANY_HEADS),
                r.range(100, 999),
                r.pick(&["black", "sand", "forest green", "navy"]),
                r.range(80, 4000),
                r.pick(COUNTRIES)
            );
            (format!("You write short, friendly product descriptions for the {name} web shop. Two sentences, no exaggerated claims, no emojis."), 200, r.range(40, 120))
        }
        _ => {
            let _ = write!(
                text,
                "How many orders did we ship to {} in the last {} days, grouped by week?",
                r.pick(COUNTRIES),
                r.range(7, 90)
            );
            ("Translate the user's question into one SQL query for the schema orders(id, customer_id, country, shipped_at, total). Reply with the query only.".to_string(), 300, r.range(30, 90))
        }
    };
    message(out, "system", &system);
    message(out, "user", &text);
    (max, output)
}

/// Whether the app at `app` passes end-user ids (a third of them do).
pub fn app_names_end_users(app: u64) -> bool {
    Rng::derive(app, 99).chance(0.33)
}

// ---------------------------------------------------------------------------------------------
// Evaluation harnesses: a fixed template per suite, the same items every run.

fn eval(suite: u64, item: u32, out: &mut String) -> (u32, u64) {
    let kind = Rng::new(suite).below(3);
    let mut r = Rng::derive(suite, u64::from(item));
    let mut text = String::with_capacity(512);
    let (max, output) = match kind {
        0 => {
            let concept = *r.pick(CONCEPTS);
            let _ = write!(text, "The following is a multiple choice question about {}.\n\nWhich statement about {concept} is correct?\nA. {}\nB. {}\nC. {}\nD. {}\n\nAnswer with the letter of the correct option only.",
                r.pick(SUBJECTS), r.pick(FILLER), r.pick(FILLER), r.pick(FILLER), r.pick(FILLER));
            (1, 1)
        }
        1 => {
            text.push_str("Question: ");
            problem(&mut r, &mut text);
            text.push_str("\nAnswer: Let's think step by step.");
            (512, r.range(150, 400))
        }
        _ => {
            let _ = write!(text, "Complete the following function.\n\n```python\ndef solve(data):\n    \"\"\"Return a function result that {}.\"\"\"\n```\nReturn only the code.", r.pick(CODE_TASKS));
            (512, r.range(80, 300))
        }
    };
    message(out, "user", &text);
    (max, output)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_protocol::view::{RequestView, ViewApi};

    #[test]
    fn every_kind_is_a_valid_chat_body_and_deterministic() {
        let contents = [
            Content::Attack { farm: 1, seed: 2 },
            Content::Chat {
                session: 3,
                turn: 0,
                intl: false,
                app: None,
            },
            Content::Chat {
                session: 4,
                turn: 3,
                intl: true,
                app: Some(1),
            },
            Content::App { app: 5, seed: 6 },
            Content::App { app: 7, seed: 8 },
            Content::Eval { suite: 9, item: 10 },
            Content::Eval {
                suite: 12,
                item: 10,
            },
        ];
        for c in contents {
            let (mut a, mut b) = (String::new(), String::new());
            write_body(&c, Some("u\"1"), &mut a);
            write_body(&c, Some("u\"1"), &mut b);
            assert_eq!(a, b);
            let view = RequestView::parse(ViewApi::OpenAiChat, a.as_bytes()).unwrap();
            assert!(view.last_user_text().is_some(), "{a}");
            assert_eq!(view.end_user.as_deref(), Some("u\"1"));
        }
        let mut odd = String::new();
        json_str(&mut odd, "a\"b\\c\nd\u{1}é");
        let back: String = serde_json::from_str(&odd).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
        let mut chat = String::new();
        write_body(
            &Content::Chat {
                session: 3,
                turn: 2,
                intl: false,
                app: None,
            },
            None,
            &mut chat,
        );
        let view = RequestView::parse(ViewApi::OpenAiChat, chat.as_bytes()).unwrap();
        assert_eq!(
            view.turns.len(),
            5,
            "two earlier exchanges and the new turn"
        );
    }
}
