//! Rate limits per key, workflow and account: requests and tokens per minute as token buckets,
//! and a cap on requests in flight, admitted all-or-nothing across the principals of a request.
//!
//! All state sits behind one mutex held for a few hash lookups and integer operations per
//! principal, which makes admission trivially atomic across principals (no lock ordering, no
//! rollback) and exact under concurrency. A store backend can apply the same transitions in one
//! atomic script per request.

mod bucket;
pub(crate) mod slots;
#[cfg(test)]
mod tests;

use bucket::Bucket;
use parking_lot::Mutex;
use slots::Slots;
use std::collections::HashMap;
use std::sync::Arc;

/// What `Refusal::retry_after_ms` says when a concurrency limit refuses: nothing predicts when a
/// request in flight ends, so this is a hint, not a promise.
pub const CONCURRENCY_RETRY_MS: u64 = 1000;

/// Idle principals are swept after this many admits, or after as many admits as principals were
/// kept by the last sweep if that is more: sweeping then costs O(1) per admit amortised, and the
/// map holds at most about twice the live principals plus this many.
const SWEEP_EVERY: u64 = 1024;

/// Limits of one principal; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens (input plus output) per minute.
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
}

/// The kind of principal a limit or budget belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A virtual API key.
    Key,
    /// A workflow (a named use of the gateway, across keys).
    Workflow,
    /// An account (all keys and workflows of a customer).
    Account,
}

impl Scope {
    /// The lower-case name used in config, logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Workflow => "workflow",
            Scope::Account => "account",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Scope::Key => 0,
            Scope::Workflow => 1,
            Scope::Account => 2,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
    /// Requests in flight.
    Concurrency,
    /// Request body bytes in flight (a key's bodies being read or held).
    BodyBytes,
}

/// One bucket's state for response headers (`x-ratelimit-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketStatus {
    /// The per-minute limit.
    pub limit: u64,
    /// Whole units left now.
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

/// The tightest principal's buckets, separately for requests and tokens; `None` where no
/// principal of the request has such a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStatus {
    /// Requests per minute.
    pub requests: Option<BucketStatus>,
    /// Tokens per minute.
    pub tokens: Option<BucketStatus>,
}

/// A request refused by a rate limit. Nothing was taken from any principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit reached for {scope} {id}: {}", describe_limit(*kind, *limit))]
pub struct Refusal {
    /// Kind of the refusing principal.
    pub scope: Scope,
    /// Id of the refusing principal.
    pub id: Arc<str>,
    /// Which of its limits refused.
    pub kind: LimitKind,
    /// The value of that limit (per minute, or requests in flight).
    pub limit: u64,
    /// Milliseconds until the refusing bucket holds what the request needs (at least 1); where
    /// several refuse, the longest of their waits. For concurrency, `CONCURRENCY_RETRY_MS`.
    pub retry_after_ms: u64,
    /// Bucket status for response headers, as of the refusal.
    pub status: RateStatus,
}

/// All principals' rate-limit state. `Send + Sync`; share it by reference or `Arc`.
#[derive(Debug, Default)]
pub struct Limiter {
    state: Arc<Mutex<Tables>>,
}

/// Capacity admitted for one request. `Send + 'static`: it may travel with a stream to another
/// task. Settle it when the request ends. Dropping it unsettled frees its concurrency slots and
/// gives back its reserved tokens (a request that never reached a provider costs no tokens); the
/// request itself stays counted, so failing requests are rate limited too.
#[derive(Debug)]
pub struct Admission {
    state: Arc<Mutex<Tables>>,
    held: Slots<Held, 4>,
    status: RateStatus,
}

impl Limiter {
    /// An empty limiter.
    pub fn new() -> Limiter {
        Limiter::default()
    }

    /// Admits one request against every listed principal, or none: if any refuses, nothing is
    /// taken from any of them. On success it takes one request from each requests bucket,
    /// reserves `estimated_tokens` from each tokens bucket and one slot of each principal's
    /// concurrency.
    ///
    /// A reservation larger than a tokens bucket's capacity reserves the capacity instead, so a
    /// request bigger than a minute's allowance still passes once the bucket is full; its actual
    /// usage is charged at settle and the debt delays later requests. A principal listed twice
    /// counts once, with the limits listed first.
    pub fn admit(
        &self,
        now_ms: i64,
        checks: &[(Scope, &Arc<str>, &RateLimits)],
        estimated_tokens: u64,
    ) -> Result<Admission, Refusal> {
        self.admit_part(now_ms, checks, estimated_tokens, Part::All)
    }

    /// The first half of [`Limiter::admit`], for a request whose body is not read yet: admits
    /// it on requests per minute and concurrency only (all or nothing) and takes one request and
    /// one concurrency slot of each principal. [`Admission::reserve_tokens`] does the tokens
    /// part once the body's size is known. A request refused there, or later, stays counted.
    pub fn admit_entry(
        &self,
        now_ms: i64,
        checks: &[(Scope, &Arc<str>, &RateLimits)],
    ) -> Result<Admission, Refusal> {
        self.admit_part(now_ms, checks, 0, Part::Entry)
    }

    fn admit_part(
        &self,
        now_ms: i64,
        checks: &[(Scope, &Arc<str>, &RateLimits)],
        estimated_tokens: u64,
        part: Part,
    ) -> Result<Admission, Refusal> {
        let mut tables = self.state.lock();
        tables.maybe_sweep(now_ms);

        // Check every principal first, so a refusal leaves all of them untouched.
        tables.refuse(now_ms, checks, estimated_tokens, part)?;

        let mut held = Slots::new();
        for (index, &(scope, id, _)) in checks.iter().enumerate() {
            if listed_before(checks, index) {
                continue;
            }
            if let Some(principal) = tables.get_mut(scope, id) {
                let reserved_tokens = principal.commit(estimated_tokens, part);
                held.push(Held {
                    scope,
                    id: Arc::clone(id),
                    reserved_tokens,
                });
            }
        }
        let status = tables.status(checks);
        drop(tables);
        Ok(Admission {
            state: Arc::clone(&self.state),
            held,
            status,
        })
    }

    /// Forgets principals whose buckets are full at `now_ms` and who have nothing in flight;
    /// forgetting them loses nothing, as they would start full. `admit` calls this on its own
    /// from time to time.
    pub fn sweep(&self, now_ms: i64) {
        self.state.lock().sweep(now_ms);
    }

    /// How many principals the limiter holds state for.
    pub fn len(&self) -> usize {
        self.state.lock().len()
    }

    /// Whether the limiter holds no state at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Admission {
    /// The second half of an admission begun with [`Limiter::admit_entry`]: reserves
    /// `estimated_tokens` from the tokens bucket of each of `checks` (the same principals and
    /// limits as then), or none of them. A refusal takes nothing; the request and its
    /// concurrency slots stay held until this admission is dropped or settled.
    pub fn reserve_tokens(
        &mut self,
        now_ms: i64,
        checks: &[(Scope, &Arc<str>, &RateLimits)],
        estimated_tokens: u64,
    ) -> Result<(), Refusal> {
        let mut tables = self.state.lock();
        tables.refuse(now_ms, checks, estimated_tokens, Part::Tokens)?;
        for entry in self.held.iter_mut() {
            if entry.reserved_tokens.is_some() {
                continue;
            }
            if let Some(principal) = tables.get_mut(entry.scope, &entry.id) {
                entry.reserved_tokens = principal.commit(estimated_tokens, Part::Tokens);
            }
        }
        self.status = tables.status(checks);
        Ok(())
    }

    /// The tightest principal's buckets right after this admission, for response headers.
    pub fn status(&self) -> RateStatus {
        self.status
    }

    /// Ends the request: charges each tokens bucket the difference between `actual_tokens` and
    /// what was reserved (a refund never fills a bucket past its capacity; an overrun may leave
    /// it in debt) and frees the concurrency slots.
    pub fn settle(mut self, now_ms: i64, actual_tokens: u64) {
        self.release(Some((now_ms, actual_tokens)));
    }

    fn release(&mut self, settle: Option<(i64, u64)>) {
        let held = self.held.take();
        let mut tables = self.state.lock();
        for entry in held.iter() {
            // A principal with a request in flight is never swept, so it is still there.
            let Some(principal) = tables.get_mut(entry.scope, &entry.id) else {
                continue;
            };
            principal.in_flight = principal.in_flight.saturating_sub(1);
            let (Some(reserved), Some(bucket)) = (entry.reserved_tokens, &mut principal.tokens)
            else {
                continue;
            };
            match settle {
                Some((now_ms, actual)) => {
                    bucket.refill(now_ms);
                    bucket.add(i128::from(reserved) - i128::from(actual));
                }
                // Adding tokens back commutes with refilling, so no clock is needed here.
                None => bucket.add(i128::from(reserved)),
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.held.iter().next().is_some() {
            self.release(None);
        }
    }
}

/// One principal's part of an admission.
#[derive(Debug)]
struct Held {
    scope: Scope,
    id: Arc<str>,
    /// Tokens reserved, or `None` if the principal had no tokens limit when admitted.
    reserved_tokens: Option<u64>,
}

/// The state of one principal.
#[derive(Debug, Default)]
struct Principal {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    /// Admissions not yet settled or dropped, counted whether or not a concurrency limit applies.
    in_flight: u32,
}

/// Which limits an admission step checks and takes.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Requests, concurrency and tokens at once.
    All,
    /// Requests and concurrency: before the body is read.
    Entry,
    /// Tokens: once the body's size is known.
    Tokens,
}

impl Part {
    /// (requests and concurrency, tokens).
    fn covers(self) -> (bool, bool) {
        match self {
            Part::All => (true, true),
            Part::Entry => (true, false),
            Part::Tokens => (false, true),
        }
    }
}

/// A refusal found while checking, before it names its principal.
#[derive(Debug, Clone, Copy)]
struct Refused {
    index: usize,
    kind: LimitKind,
    limit: u64,
    retry_after_ms: u64,
}

#[derive(Debug, Default)]
struct Tables {
    by_scope: [HashMap<Arc<str>, Principal>; 3],
    admits_since_sweep: u64,
    kept_by_last_sweep: u64,
}

impl Tables {
    fn principal(&mut self, scope: Scope, id: &Arc<str>) -> &mut Principal {
        self.by_scope[scope.index()]
            .entry(Arc::clone(id))
            .or_default()
    }

    fn get_mut(&mut self, scope: Scope, id: &str) -> Option<&mut Principal> {
        self.by_scope[scope.index()].get_mut(id)
    }

    fn len(&self) -> usize {
        self.by_scope.iter().map(HashMap::len).sum()
    }

    fn maybe_sweep(&mut self, now_ms: i64) {
        self.admits_since_sweep += 1;
        if self.admits_since_sweep >= SWEEP_EVERY.max(self.kept_by_last_sweep) {
            self.sweep(now_ms);
        }
    }

    fn sweep(&mut self, now_ms: i64) {
        self.admits_since_sweep = 0;
        for map in &mut self.by_scope {
            map.retain(|_, principal| !principal.is_idle_at(now_ms));
        }
        self.kept_by_last_sweep = self.len() as u64;
    }

    /// The tightest bucket of each kind across the listed principals.
    /// The refusal of the principal that must wait longest for `part` of a request estimated
    /// at `estimated_tokens`, if any refuses; each principal's buckets are synced to `now_ms`,
    /// nothing is taken.
    fn refuse(
        &mut self,
        now_ms: i64,
        checks: &[(Scope, &Arc<str>, &RateLimits)],
        estimated_tokens: u64,
        part: Part,
    ) -> Result<(), Refusal> {
        let mut refusal: Option<Refused> = None;
        for (index, &(scope, id, limits)) in checks.iter().enumerate() {
            if listed_before(checks, index) {
                continue;
            }
            let principal = self.principal(scope, id);
            principal.sync(limits, now_ms);
            if let Some(found) = principal.refusal(limits, estimated_tokens, part) {
                if refusal.is_none_or(|worst| found.retry_after_ms > worst.retry_after_ms) {
                    refusal = Some(Refused { index, ..found });
                }
            }
        }
        let Some(refused) = refusal else {
            return Ok(());
        };
        let (scope, id, _) = checks[refused.index];
        Err(Refusal {
            scope,
            id: Arc::clone(id),
            kind: refused.kind,
            limit: refused.limit,
            retry_after_ms: refused.retry_after_ms.max(1),
            status: self.status(checks),
        })
    }

    fn status(&self, checks: &[(Scope, &Arc<str>, &RateLimits)]) -> RateStatus {
        let mut status = RateStatus::default();
        for &(scope, id, _) in checks {
            if let Some(principal) = self.by_scope[scope.index()].get(&**id) {
                tighten(&mut status.requests, principal.requests.as_ref());
                tighten(&mut status.tokens, principal.tokens.as_ref());
            }
        }
        status
    }
}

impl Principal {
    /// Follows the limits given with this request and refills the buckets to `now_ms`.
    fn sync(&mut self, limits: &RateLimits, now_ms: i64) {
        sync_bucket(&mut self.requests, limits.requests_per_minute, now_ms);
        sync_bucket(&mut self.tokens, limits.tokens_per_minute, now_ms);
    }

    /// The longest-waiting limit of `part` that refuses this request, if any.
    fn refusal(&self, limits: &RateLimits, estimated_tokens: u64, part: Part) -> Option<Refused> {
        let (entry, tokens) = part.covers();
        let mut worst: Option<Refused> = None;
        let mut consider = |kind, limit, retry_after_ms| {
            if worst.is_none_or(|w| retry_after_ms > w.retry_after_ms) {
                worst = Some(Refused {
                    index: 0,
                    kind,
                    limit,
                    retry_after_ms,
                });
            }
        };
        if let Some(bucket) = self.requests.as_ref().filter(|_| entry) {
            if !bucket.holds(1) {
                consider(LimitKind::Requests, bucket.limit(), bucket.wait_ms(1));
            }
        }
        if let Some(bucket) = self.tokens.as_ref().filter(|_| tokens) {
            let reserve = estimated_tokens.min(bucket.limit());
            if !bucket.holds(reserve) {
                consider(LimitKind::Tokens, bucket.limit(), bucket.wait_ms(reserve));
            }
        }
        if let Some(max) = limits.concurrency.filter(|_| entry) {
            if self.in_flight >= max {
                consider(LimitKind::Concurrency, u64::from(max), CONCURRENCY_RETRY_MS);
            }
        }
        worst
    }

    /// Takes what `refusal` found available for `part`; returns the tokens reserved.
    fn commit(&mut self, estimated_tokens: u64, part: Part) -> Option<u64> {
        let (entry, tokens) = part.covers();
        if entry {
            if let Some(bucket) = &mut self.requests {
                bucket.add(-1);
            }
            self.in_flight = self.in_flight.saturating_add(1);
        }
        if !tokens {
            return None;
        }
        let bucket = self.tokens.as_mut()?;
        let reserve = estimated_tokens.min(bucket.limit());
        bucket.add(-i128::from(reserve));
        Some(reserve)
    }

    fn is_idle_at(&self, now_ms: i64) -> bool {
        self.in_flight == 0
            && self.requests.is_none_or(|b| b.is_full_at(now_ms))
            && self.tokens.is_none_or(|b| b.is_full_at(now_ms))
    }
}

fn sync_bucket(bucket: &mut Option<Bucket>, limit: Option<u64>, now_ms: i64) {
    match (limit, bucket.as_mut()) {
        (None, _) => *bucket = None,
        (Some(limit), None) => *bucket = Some(Bucket::full(limit, now_ms)),
        (Some(limit), Some(existing)) => {
            if existing.limit() != limit {
                existing.set_limit(limit);
            }
            existing.refill(now_ms);
        }
    }
}

/// Keeps the bucket with the fewest units left; on a tie, the one that takes longest to refill.
fn tighten(tightest: &mut Option<BucketStatus>, bucket: Option<&Bucket>) {
    let Some(bucket) = bucket else { return };
    let candidate = BucketStatus {
        limit: bucket.limit(),
        remaining: bucket.remaining(),
        reset_ms: bucket.reset_ms(),
    };
    let tighter = tightest.is_none_or(|current| {
        (candidate.remaining, std::cmp::Reverse(candidate.reset_ms))
            < (current.remaining, std::cmp::Reverse(current.reset_ms))
    });
    if tighter {
        *tightest = Some(candidate);
    }
}

/// Whether the principal at `index` already appears earlier in `checks`.
fn listed_before(checks: &[(Scope, &Arc<str>, &RateLimits)], index: usize) -> bool {
    let (scope, id, _) = checks[index];
    checks[..index]
        .iter()
        .any(|&(s, other, _)| s == scope && **other == **id)
}

fn describe_limit(kind: LimitKind, limit: u64) -> String {
    match kind {
        LimitKind::Requests => format!("{limit} requests per minute"),
        LimitKind::Tokens => format!("{limit} tokens per minute"),
        LimitKind::Concurrency => format!("{limit} concurrent requests"),
        LimitKind::BodyBytes => format!("{limit} request body bytes in flight"),
    }
}
