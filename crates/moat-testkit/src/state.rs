//! State shared by the handle and every connection: options, the outage, queued faults, the
//! request log.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use moat_core::{Clock, SystemClock};

use crate::fault::Fault;
use crate::{RecordedRequest, SimOptions};

/// Everything a request handler needs besides the request itself.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The options the sim was started with.
    pub(crate) options: SimOptions,
    /// Source of `created` timestamps.
    pub(crate) clock: Arc<dyn Clock>,
    /// The fault every request gets while set, ahead of the queues.
    outage: Mutex<Option<Fault>>,
    faults: Mutex<FaultQueues>,
    log: Mutex<Vec<RecordedRequest>>,
    next_request: AtomicU64,
}

#[derive(Debug, Default)]
struct FaultQueues {
    any: VecDeque<Fault>,
    by_model: HashMap<String, VecDeque<Fault>>,
}

impl Shared {
    pub(crate) fn new(options: SimOptions) -> Self {
        Shared {
            options,
            clock: Arc::new(SystemClock),
            outage: Mutex::default(),
            faults: Mutex::default(),
            log: Mutex::default(),
            next_request: AtomicU64::new(1),
        }
    }

    /// A fresh request id, unique within this sim: `req_sim_000001`, ...
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("req_sim_{n:06}")
    }

    pub(crate) fn push_fault(&self, model: Option<&str>, fault: Fault) {
        let mut queues = lock(&self.faults);
        match model {
            Some(model) => queues
                .by_model
                .entry(model.to_owned())
                .or_default()
                .push_back(fault),
            None => queues.any.push_back(fault),
        }
    }

    pub(crate) fn set_outage(&self, fault: Option<Fault>) {
        *lock(&self.outage) = fault;
    }

    /// The fault this request gets: the outage's while one is set (leaving the queues alone),
    /// else its model's first queued one, else the oldest unscoped one.
    pub(crate) fn take_fault(&self, model: Option<&str>) -> Option<Fault> {
        if let Some(fault) = lock(&self.outage).clone() {
            return Some(fault);
        }
        let mut queues = lock(&self.faults);
        let scoped = model
            .and_then(|m| queues.by_model.get_mut(m))
            .and_then(VecDeque::pop_front);
        scoped.or_else(|| queues.any.pop_front())
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.log).push(request);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }

    pub(crate) fn request_count(&self) -> usize {
        lock(&self.log).len()
    }

    pub(crate) fn request_count_for_model(&self, model: &str) -> usize {
        lock(&self.log)
            .iter()
            .filter(|r| r.body.get("model").and_then(serde_json::Value::as_str) == Some(model))
            .count()
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here is a single push or pop, so a
/// panic elsewhere cannot leave the data half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
