//! The distillation detector, live: stage 5 (the detection gate) and the plumbing that feeds the
//! detector from stage 9 (settle and record).
//!
//! An event's path:
//! 1. stage 4 (`filter.rs`) computes the request's [`RequestFeatures`] from the view it parses
//!    anyway;
//! 2. stage 5 ([`Detection::gate`], `gate.rs`) reads the account's and end user's action from
//!    the [`Board`] and refuses, throttles or degrades the request (in `enforce` mode);
//! 3. the pipeline leaves a [`Pending`] event on the request record, and when the record is
//!    finished (`telemetry.rs`, buffered or streamed, with the usage the relay settled) the event
//!    is pushed onto a bounded queue with `try_send`: a full queue drops the event, counts it in
//!    `moat_detect_queue_full_total` and warns at most every 10 s, and never blocks a request;
//! 4. the worker thread (`worker.rs`) owns the [`Detector`], observes the event and raises the
//!    account's (and end user's) action on the board from the verdict's score.
//!
//! In `off` mode nothing of this runs: no features, no worker, no gate.

mod gate;
mod worker;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_config::{ActionsConfig, ConfigError, DetectionConfig, DetectionMode, DetectorModel};
use moat_detect::{Capacity, Detector, DetectorConfig, Extractor, RequestFeatures};
use moat_protocol::usage::Usage;
use tokio::sync::{mpsc, oneshot};

pub(crate) use gate::cap_output;
pub use moat_detect::board::Action;
use moat_detect::board::Board;
use moat_detect::trace::Record;
pub use worker::Row;
use worker::{Ladder, Msg, Query, Worker};

/// How long an admin read waits for the worker (behind a full queue, at worst).
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Queue-full warnings come at most this often.
const WARN_EVERY_MS: i64 = 10_000;

/// The detector as the request path sees it: the mode, the feature extractor, the board of
/// actions and the queue to the worker.
pub struct Detection {
    mode: DetectionMode,
    extractor: Option<Extractor>,
    board: Arc<Board>,
    sink: Option<Arc<Sink>>,
    actions: ActionsConfig,
}

/// Why an admin read of the verdicts failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The worker did not answer in time (a queue backlog) or is gone.
    #[error("the detector did not answer")]
    Unavailable,
}

impl Detection {
    /// Sets up detection for `config`: in `monitor` and `enforce` modes, the detector (with the
    /// settings of `[detection.model]`) on its worker thread. Fails when `[detection.model]` does
    /// not fit the detector's settings, or the thread cannot start.
    pub fn new(config: &DetectionConfig) -> Result<Detection, ConfigError> {
        // End users are named by clients: the board and the detector keep a bounded number.
        let capacity = Capacity {
            total: config.max_end_users,
            per_account: config.max_end_users_per_account,
        };
        let board = Arc::new(Board::new(capacity));
        let allowlist: Arc<HashSet<String>> = Arc::new(config.allowlist.iter().cloned().collect());
        let mut detection = Detection {
            mode: config.mode,
            extractor: None,
            board: Arc::clone(&board),
            sink: None,
            actions: config.actions.clone(),
        };
        if config.mode == DetectionMode::Off {
            return Ok(detection);
        }
        let detector = Detector::with_capacity(detector_config(&config.model)?, capacity);
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let worker = Worker::new(detector, board, Ladder::new(&config.actions), allowlist);
        std::thread::Builder::new()
            .name("moat-detect".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| ConfigError {
                line: None,
                field: "detection".into(),
                message: format!("cannot start the detector thread: {e}"),
            })?;
        detection.extractor = Some(Extractor::new());
        detection.sink = Some(Arc::new(Sink {
            tx,
            dropped: AtomicU64::new(0),
            last_warn_ms: AtomicI64::new(i64::MIN),
            started: Instant::now(),
        }));
        Ok(detection)
    }

    /// Off, monitor or enforce.
    pub fn mode(&self) -> DetectionMode {
        self.mode
    }

    /// The feature extractor, unless detection is off.
    pub(crate) fn extractor(&self) -> Option<&Extractor> {
        self.extractor.as_ref()
    }

    /// The event to send when the request is finished, unless detection is off or the request
    /// has no features (embeddings, token counts).
    pub(crate) fn pending(&self, event: NewEvent) -> Option<Pending> {
        let sink = self.sink.as_ref()?;
        let features = event.features?;
        Some(Pending {
            sink: Arc::clone(sink),
            event: Box::new(Record {
                ts_ms: event.ts_ms,
                request_id: event.request_id,
                account: event.account,
                end_user: event.end_user,
                account_created_ms: event.account_created_ms,
                ip: Some(event.ip),
                input_tokens: 0,
                output_tokens: 0,
                features,
            }),
        })
    }

    /// The verdicts, for the admin API: every account and end user seen (or those of one
    /// account), optionally only the flagged ones. Answered after every event queued before it.
    pub async fn verdicts(
        &self,
        account: Option<String>,
        flagged_only: bool,
    ) -> Result<Vec<Row>, QueryError> {
        let Some(sink) = &self.sink else {
            return Ok(Vec::new());
        };
        let (reply, answer) = oneshot::channel();
        let query = Msg::Query(Query {
            account,
            flagged_only,
            reply,
        });
        let ask = async {
            sink.tx.send(query).await.ok()?;
            answer.await.ok()
        };
        match tokio::time::timeout(QUERY_TIMEOUT, ask).await {
            Ok(Some(rows)) => Ok(rows),
            _ => Err(QueryError::Unavailable),
        }
    }
}

/// The detector's settings from `[detection.model]`; an unknown or mistyped field is a config
/// error on that table's line.
pub fn detector_config(model: &DetectorModel) -> Result<DetectorConfig, ConfigError> {
    toml::Value::Table(model.table.clone())
        .try_into::<DetectorConfig>()
        .map_err(|e| ConfigError {
            line: model.line,
            field: "detection.model".into(),
            message: e
                .message()
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; "),
        })
}

/// What the pipeline knows of a request for its detector event.
pub(crate) struct NewEvent {
    pub ts_ms: i64,
    pub request_id: Arc<str>,
    pub account: String,
    pub end_user: Option<String>,
    pub account_created_ms: Option<i64>,
    pub ip: IpAddr,
    pub features: Option<RequestFeatures>,
}

/// A request's detector event, waiting for its usage; sent when the request record finishes.
pub(crate) struct Pending {
    sink: Arc<Sink>,
    event: Box<Record>,
}

impl Pending {
    /// Completes the event with the settled usage and queues it for the worker.
    pub(crate) fn settle(mut self, usage: Option<Usage>) {
        if let Some(u) = usage {
            self.event.input_tokens = u.input_tokens;
            self.event.output_tokens = u.output_tokens;
        }
        self.sink.push(self.event);
    }
}

/// The request path's end of the queue.
struct Sink {
    tx: mpsc::Sender<Msg>,
    /// Events dropped since the last warning.
    dropped: AtomicU64,
    /// When the last warning was logged, ms since `started`.
    last_warn_ms: AtomicI64,
    started: Instant,
}

impl Sink {
    /// Queues an event without waiting; a full queue (or a dead worker) drops it, counted.
    fn push(&self, event: Box<Record>) {
        let reason = match self.tx.try_send(Msg::Event(event)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => "full",
            Err(mpsc::error::TrySendError::Closed(_)) => "closed",
        };
        metrics::counter!("moat_detect_queue_full_total").increment(1);
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        let due = last == i64::MIN || now - last >= WARN_EVERY_MS;
        if due
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let dropped = self.dropped.swap(0, Ordering::Relaxed).max(dropped);
            tracing::warn!(
                target: "moat::detect",
                queue = reason,
                dropped,
                "detector queue {reason}: events dropped (moat_detect_queue_full_total); raise detection.queue or give the gateway more CPU"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn model_tables_become_detector_settings_or_a_located_error() {
        let table: toml::Table =
            toml::from_str("threshold = 12\n[weights]\nelicit = 1.5\n").unwrap();
        let c = detector_config(&DetectorModel {
            table,
            line: Some(40),
        })
        .unwrap();
        assert_eq!(c.threshold, 12.0);
        assert_eq!(c.weights.elicit, 1.5);
        assert_eq!(c.drift, DetectorConfig::default().drift);

        let table: toml::Table = toml::from_str("thresold = 12\n").unwrap();
        let e = detector_config(&DetectorModel {
            table,
            line: Some(40),
        })
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(40), "detection.model"));
        assert!(
            e.message.contains("unknown field `thresold`"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn off_mode_has_no_worker_and_no_features() {
        let d = Detection::new(&DetectionConfig {
            mode: DetectionMode::Off,
            ..DetectionConfig::default()
        })
        .unwrap();
        assert!(d.extractor().is_none());
        assert!(d.verdicts(None, false).await.unwrap().is_empty());
    }

    #[test]
    fn a_full_queue_drops_events_without_blocking() {
        // Nobody reads this queue of one: the first event fills it, the rest are dropped.
        let (tx, mut rx) = mpsc::channel(1);
        let sink = Sink {
            tx,
            dropped: AtomicU64::new(0),
            last_warn_ms: AtomicI64::new(i64::MIN),
            started: Instant::now(),
        };
        let event = |i: u32| {
            Box::new(Record {
                ts_ms: i64::from(i),
                request_id: Arc::from("req"),
                account: "a".into(),
                end_user: None,
                account_created_ms: None,
                ip: None,
                input_tokens: 0,
                output_tokens: 0,
                features: RequestFeatures::default(),
            })
        };
        for i in 0..3 {
            sink.push(event(i));
        }
        // The first drop warned and reset the count; the second is waiting for the next warning.
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 1);
        assert!(sink.last_warn_ms.load(Ordering::Relaxed) >= 0);
        match rx.try_recv() {
            Ok(Msg::Event(e)) => assert_eq!(e.ts_ms, 0),
            _ => panic!("the first event is queued"),
        }
        assert!(rx.try_recv().is_err(), "the others were dropped");
    }
}
