//! Who sends what, when: the farm and the benign populations as actors on one clock, and the
//! schedule that merges them into a single time-ordered stream.
//!
//! Each actor knows its next request time; a min-heap pops the earliest, the actor describes the
//! request as a [`Spec`] (seeds, not text) and moves its clock on. The schedule is cheap (well
//! under a microsecond a request), so it runs on one thread and the bodies are built elsewhere.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::prompts::{app_names_end_users, Content};
use super::rng::Rng;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// 2026-03-01T00:00:00Z, when the window starts.
pub const T0_MS: i64 = 1_772_323_200_000;

/// Relative request rate by local hour of day: quiet nights, busy evenings.
const DIURNAL: [f64; 24] = [
    0.35, 0.2, 0.12, 0.08, 0.08, 0.12, 0.3, 0.6, 0.9, 1.0, 1.05, 1.1, 1.2, 1.1, 1.05, 1.0, 1.05,
    1.15, 1.3, 1.5, 1.6, 1.5, 1.1, 0.7,
];
const DIURNAL_MAX: f64 = 1.6;

/// What the run should look like.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seed of everything.
    pub seed: u64,
    /// Requests in the stream.
    pub events: u64,
    /// Accounts in the sybil farm.
    pub attack_accounts: u32,
    /// Requests per farm account per day.
    pub attack_per_day: f64,
    /// Length of the window, days.
    pub days: u32,
}

/// The kind of client behind an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A sybil-farm account.
    Attack,
    /// A person chatting through their own key.
    Chat,
    /// A consumer chat app passing its end users' ids.
    ChatApp,
    /// An app with one fixed system prompt.
    App,
    /// An evaluation harness.
    Eval,
}

/// An account as the detector sees it, and what it really is.
#[derive(Debug, Clone)]
pub struct Account {
    /// Its id.
    pub name: String,
    /// When it was created, ms since the epoch.
    pub created_ms: i64,
    /// What it really is.
    pub class: Class,
}

/// Every account and end user of a run, indexed by the ids in [`Spec`].
#[derive(Debug, Default)]
pub struct Directory {
    /// Accounts.
    pub accounts: Vec<Account>,
    /// End-user ids (behind chat apps and some app keys).
    pub end_users: Vec<String>,
    /// Requests per farm account per day, after fitting the farm into the event budget.
    pub attack_per_day: f64,
    /// Requests the farm is expected to send.
    pub attack_expected: u64,
}

impl Directory {
    /// Accounts of `class`.
    pub fn count(&self, class: Class) -> usize {
        self.accounts.iter().filter(|a| a.class == class).count()
    }
}

/// One request to build: who, when, from where, and the seeds of its body.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Position in the stream.
    pub index: u64,
    /// Arrival, ms since the epoch.
    pub ts_ms: i64,
    /// Index into [`Directory::accounts`].
    pub account: u32,
    /// Index into [`Directory::end_users`].
    pub end_user: Option<u32>,
    /// Client IPv4 address.
    pub ip: [u8; 4],
    /// The body's seeds.
    pub content: Content,
}

#[derive(Debug)]
enum Behaviour {
    /// Paced round-robin by the farm, from its rotating proxies.
    Attack { period_ms: f64 },
    /// Sessions of a few turns at diurnal times.
    Chat {
        intl: bool,
        app: Option<u64>,
        tz_h: i64,
        session_gap_ms: f64,
        session: u64,
        turn: u8,
        turns: u8,
        net: [u8; 3],
    },
    /// Single requests at a diurnal Poisson rate.
    App {
        app: u64,
        gap_ms: f64,
        tz_h: i64,
        users: Option<(u32, u32)>,
    },
    /// Suite runs in bursts.
    Eval {
        suites: [u64; 3],
        items: [u32; 3],
        run_gap_ms: f64,
        suite: usize,
        item: u32,
    },
}

#[derive(Debug)]
struct Actor {
    account: u32,
    end_user: Option<u32>,
    rng: Rng,
    ip: [u8; 4],
    behaviour: Behaviour,
}

/// The time-ordered stream of requests.
#[derive(Debug)]
pub struct Schedule {
    actors: Vec<Actor>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    farm: u64,
    proxies: Vec<[u8; 3]>,
    emitted: u64,
    events: u64,
}

/// Builds the populations of `plan`: the directory (shared, read-only) and the schedule.
pub fn build(plan: &Plan) -> (Directory, Schedule) {
    let mut b = Builder {
        rng: Rng::derive(plan.seed, 1),
        dir: Directory::default(),
        actors: Vec::new(),
        starts: Vec::new(),
        end_ms: T0_MS + i64::from(plan.days) * DAY_MS,
    };
    let farm = Rng::derive(plan.seed, 2).next_u64();
    b.farm(plan);
    let benign = plan.events.saturating_sub(b.dir.attack_expected) as f64;
    b.chat_accounts(benign * 0.45);
    b.chat_apps(benign * 0.15);
    b.apps(benign * 0.30);
    b.evals(benign * 0.10);
    let mut proxy_rng = Rng::derive(plan.seed, 3);
    let proxies = (0..1200)
        .map(|_| {
            [
                proxy_rng.range(23, 223) as u8,
                proxy_rng.below(256) as u8,
                proxy_rng.below(256) as u8,
            ]
        })
        .collect();
    let heap = b
        .starts
        .iter()
        .enumerate()
        .map(|(i, &ts)| Reverse((ts, i as u32)))
        .collect();
    let schedule = Schedule {
        actors: b.actors,
        heap,
        farm,
        proxies,
        emitted: 0,
        events: plan.events,
    };
    (b.dir, schedule)
}

impl Iterator for Schedule {
    type Item = Spec;

    fn next(&mut self) -> Option<Spec> {
        if self.emitted >= self.events {
            return None;
        }
        let Reverse((ts, i)) = self.heap.pop()?;
        let actor = &mut self.actors[i as usize];
        let index = self.emitted;
        self.emitted += 1;
        let r = &mut actor.rng;
        let mut end_user = actor.end_user;
        let (content, ip, next) = match &mut actor.behaviour {
            Behaviour::Attack { period_ms } => {
                let net = self.proxies[r.below(self.proxies.len())];
                let ip = [net[0], net[1], net[2], r.range(2, 254) as u8];
                let jitter = 1.0 + (r.unit() - 0.5) * 0.1;
                let content = Content::Attack {
                    farm: self.farm,
                    seed: r.next_u64(),
                };
                (content, ip, ts + (*period_ms * jitter) as i64)
            }
            Behaviour::Chat {
                intl,
                app,
                tz_h,
                session_gap_ms,
                session,
                turn,
                turns,
                net,
            } => {
                let content = Content::Chat {
                    session: *session,
                    turn: *turn,
                    intl: *intl,
                    app: *app,
                };
                let ip = match app {
                    Some(_) => actor.ip,
                    None => [net[0], net[1], net[2], actor.ip[3]],
                };
                let next = if *turn + 1 < *turns {
                    *turn += 1;
                    ts + r.range(20_000, 240_000) as i64
                } else {
                    *turn = 0;
                    *turns = session_turns(r);
                    *session = r.next_u64();
                    // One session in five from a mobile network.
                    *net = if r.chance(0.2) {
                        [
                            100 + r.below(20) as u8,
                            r.below(8) as u8,
                            r.below(256) as u8,
                        ]
                    } else {
                        [actor.ip[0], actor.ip[1], actor.ip[2]]
                    };
                    diurnal_next(r, ts, *session_gap_ms, *tz_h)
                };
                (content, ip, next)
            }
            Behaviour::App {
                app,
                gap_ms,
                tz_h,
                users,
            } => {
                if let Some((first, n)) = *users {
                    // A few heavy users and a long tail.
                    let top = r.below(n as usize) + 1;
                    let k = r.below(top) as u32;
                    end_user = Some(first + k);
                }
                let content = Content::App {
                    app: *app,
                    seed: r.next_u64(),
                };
                (content, actor.ip, diurnal_next(r, ts, *gap_ms, *tz_h))
            }
            Behaviour::Eval {
                suites,
                items,
                run_gap_ms,
                suite,
                item,
            } => {
                let content = Content::Eval {
                    suite: suites[*suite],
                    item: *item,
                };
                *item += 1;
                let next = if *item < items[*suite] {
                    ts + r.range(15, 400) as i64
                } else {
                    *item = 0;
                    *suite = r.below(3);
                    ts + r.exp(*run_gap_ms) as i64 + HOUR_MS
                };
                (content, actor.ip, next)
            }
        };
        self.heap.push(Reverse((next.max(ts + 1), i)));
        Some(Spec {
            index,
            ts_ms: ts,
            account: actor.account,
            end_user,
            ip,
            content,
        })
    }
}

struct Builder {
    rng: Rng,
    dir: Directory,
    actors: Vec<Actor>,
    starts: Vec<i64>,
    end_ms: i64,
}

impl Builder {
    fn account(&mut self, created_ms: i64, class: Class) -> u32 {
        let i = self.dir.accounts.len() as u32;
        // Ids say nothing of the class: the detector must not be able to read it off the name.
        let tag = super::rng::mix(u64::from(i) ^ 0x5eed) & 0xffff_ffff;
        self.dir.accounts.push(Account {
            name: format!("acct_{tag:08x}{i:06}"),
            created_ms,
            class,
        });
        i
    }

    fn actor(
        &mut self,
        account: u32,
        end_user: Option<u32>,
        ip: [u8; 4],
        start: i64,
        behaviour: Behaviour,
    ) {
        let seed = self.rng.next_u64();
        self.actors.push(Actor {
            account,
            end_user,
            rng: Rng::new(seed),
            ip,
            behaviour,
        });
        self.starts.push(start);
    }

    /// The farm: accounts created in bursts over the first 30 days (some just before the window),
    /// each paced at `attack_per_day`, round-robin across the farm.
    fn farm(&mut self, plan: &Plan) {
        let n = plan.attack_accounts as usize;
        let mut created = Vec::with_capacity(n);
        while created.len() < n {
            let burst_at = T0_MS - 5 * DAY_MS + self.rng.range(0, 35 * DAY_MS as u64) as i64;
            let size = self.rng.range(40, 300) as usize;
            for _ in 0..size.min(n - created.len()) {
                created.push(burst_at + self.rng.range(0, 50 * 60_000) as i64);
            }
        }
        created.sort_unstable();
        let firsts: Vec<i64> = created
            .iter()
            .map(|&c| (c + self.rng.range(HOUR_MS as u64, 12 * HOUR_MS as u64) as i64).max(T0_MS))
            .collect();
        let lifetime_days: f64 = firsts
            .iter()
            .map(|&f| (self.end_ms - f).max(0) as f64 / DAY_MS as f64)
            .sum();
        // Fit the farm into at most 85 % of the budget, so a small run keeps its benign traffic.
        let cap = 0.85 * plan.events as f64 / lifetime_days.max(1.0);
        let per_day = plan.attack_per_day.min(cap);
        self.dir.attack_per_day = per_day;
        self.dir.attack_expected = (lifetime_days * per_day) as u64;
        let period = DAY_MS as f64 / per_day.max(1e-6);
        for (i, (&c, &first)) in created.iter().zip(&firsts).enumerate() {
            let account = self.account(c, Class::Attack);
            // Round-robin: account i's slot in the farm's cycle.
            let phase = (i as f64 / n as f64 * period) as i64;
            let start = first + (phase - first).rem_euclid(period as i64);
            self.actor(
                account,
                None,
                [0; 4],
                start,
                Behaviour::Attack { period_ms: period },
            );
        }
    }

    fn chat_behaviour(&mut self, app: Option<u64>, requests: f64) -> (Behaviour, f64) {
        let r = &mut self.rng;
        let intl = r.chance(0.04);
        let tz_h = *r.pick(&[-8, -5, -3, 0, 1, 2, 3, 5, 8, 9]);
        let mean_turns = 0.35 + 0.65 * 5.0;
        let sessions = requests / mean_turns * (0.2 + 1.6 * r.unit());
        let window = (self.end_ms - T0_MS) as f64;
        let behaviour = Behaviour::Chat {
            intl,
            app,
            tz_h,
            session_gap_ms: window / sessions.max(0.5),
            session: r.next_u64(),
            turn: 0,
            turns: session_turns(r),
            net: [
                r.range(60, 220) as u8,
                r.below(256) as u8,
                r.below(256) as u8,
            ],
        };
        let gap = window / sessions.max(0.5);
        (behaviour, gap)
    }

    /// People with their own keys: about 36 requests each over the window.
    fn chat_accounts(&mut self, budget: f64) {
        const PER_USER: f64 = 36.0;
        let users = (budget / PER_USER).round().max(1.0) as usize;
        for _ in 0..users {
            let created = T0_MS - 700 * DAY_MS + self.rng.range(0, 720 * DAY_MS as u64) as i64;
            let account = self.account(created, Class::Chat);
            let (behaviour, gap) = self.chat_behaviour(None, PER_USER);
            let host = self.rng.range(2, 254) as u8;
            let ip = match &behaviour {
                Behaviour::Chat { net, .. } => [net[0], net[1], net[2], host],
                _ => [0, 0, 0, host],
            };
            let start = created.max(T0_MS) + self.rng.exp(gap) as i64;
            self.actor(account, None, ip, start, behaviour);
        }
    }

    /// Consumer chat apps: three keys, each passing its users' ids; about 25 requests a user.
    fn chat_apps(&mut self, budget: f64) {
        const PER_USER: f64 = 25.0;
        let users = (budget / PER_USER).round().max(1.0) as usize;
        let apps: Vec<(u32, u64, [u8; 4])> = (0..3)
            .map(|_| {
                let created = T0_MS - self.rng.range(200, 600) as i64 * DAY_MS;
                let account = self.account(created, Class::ChatApp);
                let ip = [34, self.rng.below(256) as u8, self.rng.below(256) as u8, 10];
                (account, self.rng.next_u64(), ip)
            })
            .collect();
        for u in 0..users {
            let (account, app, ip) = apps[u % apps.len()];
            let end_user = self.dir.end_users.len() as u32;
            self.dir
                .end_users
                .push(format!("user-{:x}", super::rng::mix(u as u64 ^ app)));
            let (behaviour, gap) = self.chat_behaviour(Some(app), PER_USER);
            let start = T0_MS + self.rng.exp(gap) as i64;
            self.actor(account, Some(end_user), ip, start, behaviour);
        }
    }

    /// Apps with one fixed system prompt, at rates from a few a day to a few thousand.
    fn apps(&mut self, budget: f64) {
        let n = ((budget / 27_000.0).round() as usize).clamp(1, 400);
        let weights: Vec<f64> = (0..n).map(|_| (self.rng.unit() * 4.6).exp()).collect();
        let total: f64 = weights.iter().sum();
        let window = (self.end_ms - T0_MS) as f64;
        for w in weights {
            let requests = budget * w / total;
            let created = T0_MS - self.rng.range(30, 400) as i64 * DAY_MS;
            let account = self.account(created, Class::App);
            let app = self.rng.next_u64();
            let users = app_names_end_users(app).then(|| {
                let pool = ((requests / 6.0) as u32).clamp(10, 20_000);
                let first = self.dir.end_users.len() as u32;
                for k in 0..pool {
                    self.dir
                        .end_users
                        .push(format!("{:x}-{k}", super::rng::mix(app) & 0xffffff));
                }
                (first, pool)
            });
            let ip = [
                *self.rng.pick(&[3, 18, 34, 35, 52, 104]),
                self.rng.below(256) as u8,
                self.rng.below(256) as u8,
                self.rng.range(2, 254) as u8,
            ];
            let gap_ms = window / requests.max(1.0);
            let tz_h = *self.rng.pick(&[-5, 0, 1, 8]);
            let start = T0_MS + self.rng.exp(gap_ms) as i64;
            self.actor(
                account,
                None,
                ip,
                start,
                Behaviour::App {
                    app,
                    gap_ms,
                    tz_h,
                    users,
                },
            );
        }
    }

    /// Evaluation harnesses: fixed-template suites run in bursts every few days.
    fn evals(&mut self, budget: f64) {
        let n = ((budget / 40_000.0).round() as usize).clamp(1, 20);
        let window = (self.end_ms - T0_MS) as f64;
        for _ in 0..n {
            let created = T0_MS - self.rng.range(10, 300) as i64 * DAY_MS;
            let account = self.account(created, Class::Eval);
            let suites = [
                self.rng.next_u64(),
                self.rng.next_u64(),
                self.rng.next_u64(),
            ];
            let items = [
                self.rng.range(300, 2000) as u32,
                self.rng.range(300, 2000) as u32,
                self.rng.range(300, 2000) as u32,
            ];
            let mean_items = f64::from(items[0] + items[1] + items[2]) / 3.0;
            let runs = (budget / n as f64 / mean_items).max(1.0);
            let run_gap_ms = (window / runs - HOUR_MS as f64).max(HOUR_MS as f64);
            let ip = [34, self.rng.below(256) as u8, self.rng.below(256) as u8, 77];
            let start = T0_MS + self.rng.exp(run_gap_ms) as i64;
            let behaviour = Behaviour::Eval {
                suites,
                items,
                run_gap_ms,
                suite: self.rng.below(3),
                item: 0,
            };
            self.actor(account, None, ip, start, behaviour);
        }
    }
}

/// Turns in a chat session: a third are one question, the rest two to eight turns.
fn session_turns(r: &mut Rng) -> u8 {
    if r.chance(0.35) {
        1
    } else {
        r.range(2, 8) as u8
    }
}

/// The next arrival of a diurnal Poisson process with mean gap `gap_ms` (over a day's average),
/// by thinning: candidates at the peak rate, kept in proportion to the hour's weight.
fn diurnal_next(r: &mut Rng, from: i64, gap_ms: f64, tz_h: i64) -> i64 {
    let mean_weight = DIURNAL.iter().sum::<f64>() / 24.0;
    let peak_gap = gap_ms * mean_weight / DIURNAL_MAX;
    let mut t = from;
    for _ in 0..10_000 {
        t += r.exp(peak_gap) as i64 + 1;
        let hour = (t.div_euclid(HOUR_MS) + tz_h).rem_euclid(24) as usize;
        if r.unit() * DIURNAL_MAX < DIURNAL[hour] {
            return t;
        }
    }
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn plan(events: u64, attack: u32) -> Plan {
        Plan {
            seed: 9,
            events,
            attack_accounts: attack,
            attack_per_day: 26.0,
            days: 44,
        }
    }

    #[test]
    fn the_stream_is_time_ordered_sized_and_reproducible() {
        let (dir, schedule) = build(&plan(60_000, 200));
        let specs: Vec<Spec> = schedule.collect();
        assert_eq!(specs.len(), 60_000);
        assert!(specs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        assert!(specs
            .iter()
            .all(|s| (s.account as usize) < dir.accounts.len()));
        let attack = specs
            .iter()
            .filter(|s| dir.accounts[s.account as usize].class == Class::Attack)
            .count();
        assert!(attack > 20_000 && attack < 55_000, "{attack}");
        let (_, again) = build(&plan(60_000, 200));
        let again: Vec<Spec> = again.collect();
        assert!(specs
            .iter()
            .zip(&again)
            .all(|(a, b)| (a.ts_ms, a.account, a.ip) == (b.ts_ms, b.account, b.ip)));
        assert_eq!(dir.count(Class::Attack), 200);
        assert!(dir.count(Class::Chat) > 100);
        assert!(!dir.end_users.is_empty());
    }
}
