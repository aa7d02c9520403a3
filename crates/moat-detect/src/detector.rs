//! The detector: folds events into account, end-user and cross-account state and keeps verdicts.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::account::Track;
use crate::config::DetectorConfig;
use crate::end_users::{end_user_id, Capacity, EndUsers};
use crate::features::RequestFeatures;
use crate::links::{Clusters, SharedIndex, Signups};
use crate::reason::{Reason, REASONS};
use crate::verdict::{Evidence, Verdict};

const DAY_MS: i64 = 86_400_000;
/// Shared templates and networks indexed at most.
const SHARED_CAP: usize = 2_000_000;
/// Templates and networks an account registers in the shared indexes.
const MAX_REGISTERED: usize = 48;

/// One request as the detector sees it: who, from where, when, and its features.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// When the request arrived, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The gateway's request id.
    pub request_id: &'a str,
    /// The account the key belongs to.
    pub account: &'a str,
    /// The end user the request names (OpenAI `user`, Anthropic `metadata.user_id`).
    pub end_user: Option<&'a str>,
    /// When the account was created, ms since the Unix epoch.
    pub account_created_ms: Option<i64>,
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Tokens in (from usage).
    pub input_tokens: u64,
    /// Tokens out (from usage).
    pub output_tokens: u64,
    /// The request's features.
    pub features: &'a RequestFeatures,
}

/// What observing one event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// The account crossed its threshold with this request.
    pub account_flagged_now: bool,
    /// The end user crossed its threshold with this request.
    pub end_user_flagged_now: bool,
}

#[derive(Debug)]
struct Account {
    id: Box<str>,
    track: Track,
    created_ms: Option<i64>,
    /// Template fingerprints and networks registered in the shared indexes.
    templates: Vec<u64>,
    nets: Vec<u64>,
    /// Distinct end users seen behind its keys.
    end_users: u32,
    /// System prompts it used that at least three accounts use.
    shared_seen: Vec<u64>,
}

/// The distillation detector. Pure: time comes from the events.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    index: HashMap<Box<str>, u32>,
    accounts: Vec<Account>,
    end_users: EndUsers,
    templates: SharedIndex,
    nets: SharedIndex,
    signups: Signups,
    clusters: Clusters,
}

/// The evidence of one request, by reason, plus the negative part.
struct Scored {
    parts: [f32; REASONS],
    negative: f32,
    /// A request inside someone's conversation: neither evidence nor drift.
    conversation: bool,
}

impl Scored {
    fn total(&self) -> f32 {
        self.parts.iter().sum::<f32>() + self.negative
    }
}

impl Detector {
    /// A detector with `config`.
    pub fn new(config: DetectorConfig) -> Self {
        Detector::with_capacity(config, Capacity::DEFAULT)
    }

    /// A detector with `config` keeping at most `capacity` end users (see [`Capacity`]).
    pub fn with_capacity(config: DetectorConfig, capacity: Capacity) -> Self {
        Detector {
            config,
            index: HashMap::new(),
            accounts: Vec::new(),
            end_users: EndUsers::new(capacity),
            templates: SharedIndex::new(SHARED_CAP),
            nets: SharedIndex::new(SHARED_CAP),
            signups: Signups::default(),
            clusters: Clusters::default(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Accounts tracked.
    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    /// End users tracked.
    pub fn end_users(&self) -> usize {
        self.end_users.len()
    }

    /// End users evicted so far to stay within the capacity.
    pub fn end_users_evicted(&self) -> u64 {
        self.end_users.evicted()
    }

    /// Folds one event into the state.
    pub fn observe(&mut self, ev: &Event<'_>) -> Observed {
        let idx = self.account_index(ev);
        let net = ev.ip.map(network);
        let mut out = Observed::default();

        // Account level.
        let scored = self.score_account(idx, ev, net);
        let threshold = self.config.threshold;
        let drift = self.config.drift;
        let probe_min = self.config.logit_probe_min;
        let acct = &mut self.accounts[idx as usize];
        let was_flagged = acct.track.first_flag.is_some();
        apply(&mut acct.track, &scored, ev, threshold, drift);
        let t = &acct.track;
        if t.logit_probes >= probe_min && t.logit_probes * 2 >= t.requests {
            let t = &mut acct.track;
            t.cusum = t.cusum.max(threshold);
            t.peak = t.peak.max(t.cusum);
            if t.first_flag.is_none() {
                t.first_flag = Some((ev.ts_ms, t.requests));
                t.keep_evidence(ev.request_id);
            }
        }
        if !was_flagged && acct.track.first_flag.is_some() {
            out.account_flagged_now = true;
            self.on_flag(idx);
        }

        // End-user level, on keys that name their end users.
        if let Some(user) = ev.end_user {
            let user = end_user_id(user);
            let (track, new) = self.end_users.touch(idx, &user);
            let scored = end_user_evidence(track, ev, &self.config.weights);
            let threshold = self.config.end_user_threshold;
            let was = track.first_flag.is_some();
            apply(track, &scored, ev, threshold, drift);
            out.end_user_flagged_now = !was && track.first_flag.is_some();
            // An end user with strong harvesting evidence (not only probes of the app's system
            // prompt) counts against the key's account.
            let probing = track.contributions[Reason::Probe as usize];
            let total: f32 = track.contributions.iter().sum();
            let harvesting = track.peak >= self.config.end_user_harvest_threshold;
            if harvesting && !track.counted_against_account && probing * 2.0 < total {
                track.counted_against_account = true;
                let need = self.config.end_users_to_flag_account;
                let w = self.config.weights.clone();
                let acct = &mut self.accounts[idx as usize].track;
                acct.flagged_end_users += 1;
                acct.contributions[Reason::FlaggedEndUsers as usize] += w.tainted_template;
                let users = self.accounts[idx as usize].end_users;
                let acct = &mut self.accounts[idx as usize].track;
                // Several, and a noticeable share of the key's end users: one odd user among
                // hundreds on a reseller key is that user's verdict, not the reseller's.
                let share = u64::from(acct.flagged_end_users) * 20 >= u64::from(users);
                if acct.flagged_end_users >= need && share && acct.first_flag.is_none() {
                    acct.cusum = acct.cusum.max(self.config.threshold);
                    acct.peak = acct.peak.max(acct.cusum);
                    acct.first_flag = Some((ev.ts_ms, acct.requests));
                    acct.evidence.push(ev.request_id.into());
                    out.account_flagged_now = true;
                    self.on_flag(idx);
                }
            }
            if new {
                self.accounts[idx as usize].end_users += 1;
            }
            if out.end_user_flagged_now {
                self.end_users.mark_flagged(idx, &user);
            }
        }
        out
    }

    fn account_index(&mut self, ev: &Event<'_>) -> u32 {
        if let Some(&i) = self.index.get(ev.account) {
            return i;
        }
        let i = self.accounts.len() as u32;
        self.index.insert(ev.account.into(), i);
        self.accounts.push(Account {
            id: ev.account.into(),
            track: Track::default(),
            created_ms: ev.account_created_ms,
            templates: Vec::new(),
            nets: Vec::new(),
            shared_seen: Vec::new(),
            end_users: 0,
        });
        if let Some(c) = ev.account_created_ms {
            self.signups.add(c);
        }
        self.clusters.ensure(i);
        i
    }

    fn score_account(&mut self, idx: u32, ev: &Event<'_>, net: Option<u64>) -> Scored {
        let w = self.config.weights.clone();
        let f = ev.features;
        let acct = &mut self.accounts[idx as usize];
        let t = &mut acct.track;
        t.requests += 1;
        let mut s = content_evidence(t, f, ev, &w);

        // Templates the account uses: register recurring ones in the shared index.
        // Only distinctive templates link accounts: a system prompt of some length, or an affix
        // outside a batch job's one fixed template.
        let mut tainted = false;
        let system = f.system.filter(|_| f.system_tokens >= 8);
        let affixes = [
            f.user.prefix.map(|p| p ^ 0x5bd1),
            f.user.suffix.map(|p| p ^ 0x1b87),
        ];
        for (fp, is_system) in [(system, true), (affixes[0], false), (affixes[1], false)] {
            let Some(fp) = fp else { continue };
            let recurring = is_system || t.affixes.count(fp) >= 2;
            if recurring && !acct.templates.contains(&fp) && acct.templates.len() < MAX_REGISTERED {
                acct.templates.push(fp);
                self.templates.join(fp);
            }
            // Affixes are often public phrasings ("think step by step") shared with evaluation
            // harnesses: they are registered for clusters but never taint on their own.
            tainted |= is_system && self.templates.tainted(fp);
        }
        if tainted {
            s.scored.parts[Reason::TaintedTemplate as usize] = w.tainted_template;
        }
        // Rotating system prompts that other accounts use too: a shared harvesting script.
        if let Some(fp) = system {
            if self.templates.accounts(fp) >= 3 {
                if !acct.shared_seen.contains(&fp) && acct.shared_seen.len() < MAX_REGISTERED {
                    acct.shared_seen.push(fp);
                }
                if acct.shared_seen.len() >= 2 {
                    s.scored.parts[Reason::SystemRotation as usize] += w.shared_system;
                }
            }
        }

        // Networks.
        if let Some(net) = net {
            if t.add_net(net) && acct.nets.len() < MAX_REGISTERED {
                acct.nets.push(net);
                self.nets.join(net);
            }
            if self.nets.tainted(net) {
                s.scored.parts[Reason::TaintedNetwork as usize] = w.tainted_network;
            }
        }
        let nets = t.distinct_nets();
        if nets >= 6 && f64::from(nets) >= 0.25 * f64::from(t.requests) {
            s.scored.parts[Reason::IpChurn as usize] = w.ip_churn;
        }

        // The account's age and sign-up cohort.
        if let Some(created) = acct.created_ms {
            if ev.ts_ms - created < i64::from(self.config.new_account_days) * DAY_MS {
                s.scored.parts[Reason::NewAccount as usize] = w.new_account;
                if self.signups.burst(created, self.config.signup_burst_min) {
                    s.scored.parts[Reason::SignupBurst as usize] = w.signup_burst;
                }
            }
        }

        // Sustained volume of novel prompts.
        let day = t.add_hourly(ev.ts_ms);
        let per_hour = self.config.volume_per_day.div_ceil(24);
        let high = day >= self.config.volume_per_day || t.sustained_hours(ev.ts_ms, per_hour) >= 3;
        if high && !s.batch && t.repeats * 5 < t.requests {
            s.scored.parts[Reason::Volume as usize] = w.volume;
        }
        s.scored
    }

    /// An account was flagged: mark its templates and networks, join its cluster.
    fn on_flag(&mut self, idx: u32) {
        let acct = &self.accounts[idx as usize];
        let (templates, nets) = (acct.templates.clone(), acct.nets.clone());
        for fp in templates {
            if let Some(anchor) = self.templates.flag(fp, idx) {
                self.clusters.union(anchor, idx);
            }
        }
        for net in nets {
            if let Some(anchor) = self.nets.flag(net, idx) {
                self.clusters.union(anchor, idx);
            }
        }
    }

    /// The score (0..1, 0.5 at the threshold) of one account, if it was seen; cheap, unlike
    /// [`Detector::verdict`].
    pub fn score(&self, account: &str) -> Option<f64> {
        let idx = *self.index.get(account)?;
        let t = &self.accounts[idx as usize].track;
        Some(score_of(t.peak, self.config.threshold))
    }

    /// The score of one end user behind an account's key, if seen.
    pub fn end_user_score(&self, account: &str, end_user: &str) -> Option<f64> {
        let idx = *self.index.get(account)?;
        let t = self.end_users.get(idx, &end_user_id(end_user))?;
        Some(score_of(t.peak, self.config.end_user_threshold))
    }

    /// Whether one end user behind an account's key is kept and flagged.
    pub fn end_user_flagged(&self, account: &str, end_user: &str) -> bool {
        let Some(&idx) = self.index.get(account) else {
            return false;
        };
        self.end_users
            .get(idx, &end_user_id(end_user))
            .is_some_and(|t| t.first_flag.is_some())
    }

    /// The verdict on one end user behind an account's key, if seen.
    pub fn end_user_verdict(&self, account: &str, end_user: &str) -> Option<Verdict> {
        let idx = *self.index.get(account)?;
        let user = end_user_id(end_user);
        let t = self.end_users.get(idx, &user)?;
        Some(build(
            account.to_string(),
            Some(user.into_owned()),
            t,
            self.config.end_user_threshold,
            None,
        ))
    }

    /// The verdict on one account, if it was seen.
    pub fn verdict(&mut self, account: &str) -> Option<Verdict> {
        let idx = *self.index.get(account)?;
        Some(self.account_verdict(idx))
    }

    /// Verdicts on every account, in first-seen order.
    pub fn account_verdicts(&mut self) -> Vec<Verdict> {
        (0..self.accounts.len() as u32)
            .map(|i| self.account_verdict(i))
            .collect()
    }

    /// Verdicts on every end user seen behind a key.
    pub fn end_user_verdicts(&self) -> Vec<Verdict> {
        self.end_user_verdicts_of(self.end_users.iter())
    }

    /// Verdicts on the flagged end users only: cheap beside [`Detector::end_user_verdicts`]
    /// when many end users are kept.
    pub fn flagged_end_user_verdicts(&self) -> Vec<Verdict> {
        self.end_user_verdicts_of(self.end_users.flagged())
    }

    fn end_user_verdicts_of<'a>(
        &'a self,
        users: impl Iterator<Item = (u32, &'a str, &'a Track)>,
    ) -> Vec<Verdict> {
        let mut out: Vec<Verdict> = users
            .map(|(idx, user, t)| {
                let account = self.accounts[idx as usize].id.to_string();
                build(
                    account,
                    Some(user.to_string()),
                    t,
                    self.config.end_user_threshold,
                    None,
                )
            })
            .collect();
        out.sort_by(|a, b| (&a.account, &a.end_user).cmp(&(&b.account, &b.end_user)));
        out
    }

    fn account_verdict(&mut self, idx: u32) -> Verdict {
        let flagged = self.accounts[idx as usize].track.first_flag.is_some();
        let cluster = if flagged {
            let root = self.clusters.find(idx);
            let size = self.clusters.size_of(idx);
            Some((format!("c{root}"), size))
        } else {
            None
        };
        let acct = &self.accounts[idx as usize];
        build(
            acct.id.to_string(),
            None,
            &acct.track,
            self.config.threshold,
            cluster,
        )
    }
}

/// The evidence of one request for an end user behind a key: the content evidence plus
/// system-prompt probes (the key's networks and age are the account's, not the user's).
fn end_user_evidence(t: &mut Track, ev: &Event<'_>, w: &crate::config::Weights) -> Scored {
    let f = ev.features;
    t.requests += 1;
    let mut s = content_evidence(t, f, ev, w).scored;
    s.parts[Reason::Probe as usize] = w.probe * f.user_cues.probe;
    if f.user_cues.probe > 0.0 {
        t.probes += 1;
    }
    s
}

/// Content evidence shared by accounts and end users, and whether the request follows the
/// account's single dominant template (a batch job).
struct Content {
    scored: Scored,
    batch: bool,
}

fn content_evidence(
    t: &mut Track,
    f: &RequestFeatures,
    ev: &Event<'_>,
    w: &crate::config::Weights,
) -> Content {
    let mut s = Scored {
        parts: [0.0; REASONS],
        negative: 0.0,
        conversation: false,
    };
    // System prompts: rotation is harvesting, one fixed prompt is an app.
    let distinct = match f.system {
        Some(fp) => t.add_system(fp).0,
        None => t.distinct_systems(),
    };
    let rotating = distinct >= 3;
    let fixed_app = distinct == 1
        && t.with_system >= 10
        && u64::from(t.with_system) * 5 >= u64::from(t.requests) * 4;
    // Affix templates: a batch job repeats one; harvesters rotate several.
    let mut batch = false;
    let requests = t.requests;
    for fp in [
        f.user.prefix.map(|p| p ^ 0x5bd1),
        f.user.suffix.map(|p| p ^ 0x1b87),
    ]
    .into_iter()
    .flatten()
    {
        let count = t.add_affix(fp);
        if requests >= 8 && count * 4 >= requests {
            batch = true;
        }
    }
    let system_weight = if rotating {
        1.0
    } else if distinct <= 1 {
        0.3
    } else {
        0.6
    };
    let elicit = f.user_cues.elicit.max(f.system_cues.elicit * system_weight);
    s.parts[Reason::Elicit as usize] = w.elicit * elicit;
    let grader = f.user_cues.grader.max(f.user_cues.rewrite);
    s.parts[Reason::Grader as usize] = w.grader * grader;
    if elicit > 0.0 {
        t.elicit += 1;
    }
    if f.single_turn() {
        t.single_turn += 1;
        s.parts[Reason::SingleTurn as usize] = w.single_turn;
    } else if f.assistant_turns > 0 {
        s.negative += w.conversation;
        s.conversation = true;
    }
    if f.tool_turns > 0 {
        t.tool_closes += 1;
    } else if f.tools > 0 && f.single_turn() {
        t.tool_opens += 1;
        if t.tool_opens >= 3 && t.tool_closes == 0 {
            s.parts[Reason::OpenToolLoops as usize] = w.open_tool_loop;
        }
    }
    if rotating && f.system.is_some() {
        s.parts[Reason::SystemRotation as usize] = w.system_rotation;
    }
    if fixed_app {
        s.negative += w.fixed_app;
    }
    if t.seen_recently(f.user.simhash, f.user.tokens) {
        t.repeats += 1;
        s.negative += w.repeat;
    }
    if let Some(last) = t.last_ts {
        if ev.ts_ms - last < 2000 {
            t.bursts += 1;
            s.negative += w.burst;
        }
    }
    // Most requests in concurrent bursts: an evaluation harness or batch runner.
    let harness = t.requests >= 8 && t.bursts * 2 >= t.requests;
    let batch = batch || harness;
    t.last_ts = Some(ev.ts_ms);
    t.input_tokens += ev.input_tokens;
    t.output_tokens += ev.output_tokens;
    if ev.output_tokens >= 200 && ev.output_tokens >= 4 * ev.input_tokens.max(1) {
        s.parts[Reason::LongOutput as usize] = w.long_output;
    }
    if f.logit_probe() {
        t.logit_probes += 1;
        s.parts[Reason::LogitProbe as usize] = w.logit_probe;
    }
    t.categories |= f.category.bit();
    if batch {
        // One fixed template with varying data is a batch job or an evaluation harness: its
        // content says little either way.
        for r in [
            Reason::Elicit,
            Reason::Grader,
            Reason::SingleTurn,
            Reason::LongOutput,
        ] {
            s.parts[r as usize] *= 1.0 - w.batch_template_discount;
        }
    }
    Content { scored: s, batch }
}

/// Adds one request's evidence to a track's CUSUM, recording the first crossing.
fn apply(t: &mut Track, s: &Scored, ev: &Event<'_>, threshold: f32, drift: f32) {
    let e = s.total();
    for (c, p) in t.contributions.iter_mut().zip(s.parts.iter()) {
        *c += p.max(0.0);
    }
    if s.conversation {
        // Inside a conversation only the unambiguous evidence counts.
        let strong: f32 = [Reason::Probe, Reason::LogitProbe, Reason::TaintedTemplate]
            .iter()
            .map(|r| s.parts[*r as usize])
            .sum();
        t.cusum = (t.cusum + strong).clamp(0.0, 3.0 * threshold);
    } else {
        t.cusum = (t.cusum + e - drift).clamp(0.0, 3.0 * threshold);
    }
    t.peak = t.peak.max(t.cusum);
    if t.first_flag.is_none() {
        if e >= 1.5 {
            t.keep_evidence(ev.request_id);
        }
        if t.cusum >= threshold {
            t.first_flag = Some((ev.ts_ms, t.requests));
            if t.evidence.last().map(|r| &**r) != Some(ev.request_id) {
                t.evidence.push(ev.request_id.into());
            }
        }
    }
}

fn build(
    account: String,
    end_user: Option<String>,
    t: &Track,
    threshold: f32,
    cluster: Option<(String, u32)>,
) -> Verdict {
    let score = score_of(t.peak, threshold);
    let mut ranked: Vec<(Reason, f32)> = Reason::ALL
        .iter()
        .map(|&r| (r, t.contributions[r as usize]))
        .filter(|(_, c)| *c > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let reasons = ranked
        .iter()
        .take(3)
        .map(|(r, _)| crate::verdict::describe(*r, t))
        .collect();
    let (cluster, cluster_size) = match cluster {
        Some((c, n)) => (Some(c), n),
        None => (None, 0),
    };
    Verdict {
        account,
        end_user,
        score,
        flagged: t.first_flag.is_some(),
        first_flagged_ms: t.first_flag.map(|f| f.0),
        first_flagged_request: t.first_flag.map(|f| f.1),
        cluster,
        cluster_size,
        reasons,
        evidence: Evidence::of(t, &ranked),
    }
}

/// Maps a CUSUM peak to a 0..1 score that is 0.5 at the threshold, rounded to four places.
fn score_of(peak: f32, threshold: f32) -> f64 {
    let s = f64::from(peak) / f64::from(peak + threshold);
    (s * 10_000.0).round() / 10_000.0
}

/// The /24 (IPv4) or /48 (IPv6) network of an address, as a key.
pub fn network(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4) >> 8) | (4 << 56),
        IpAddr::V6(v6) => (u128::from(v6) >> 80) as u64 | (6 << 56),
    }
}
