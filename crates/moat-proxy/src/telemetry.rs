//! Metrics and the per-request log line. Names follow OpenTelemetry's GenAI conventions where they
//! exist (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`), in Prometheus spelling.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use moat_protocol::usage::Usage;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

/// Seconds-scale buckets from 1 ms to ~80 s for request durations.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0,
];
/// Token-count buckets, powers of four (the OpenTelemetry GenAI recommendation).
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
];

/// The process-wide Prometheus recorder, installed on first use. Several gateways in one process
/// (tests) share it.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    DURATION_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("gen_ai_client_token_usage".into()),
                        TOKEN_BUCKETS,
                    )
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// A decision a stage took about a request, for the audit record: which stage, what it did, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `auth`, `authorize`, `request`, `filter`, `detection`, `policy`, `limits`, `budget`,
    /// `upstream`, `internal`.
    pub stage: &'static str,
    /// What it did: `deny`, `flag`, `block`, `throttle`, `degrade`, `would_throttle`, `route`,
    /// `unregistered`, `fail`...
    pub outcome: &'static str,
    /// Why, in words or as a `name:reason` tag.
    pub reason: Option<String>,
}

/// What is known about a request by the time it ends; logged and counted once, when it drops if
/// nobody finished it first (a client that hung up mid-stream).
pub struct RequestRecord {
    /// Request id, also returned to the client in `x-moat-request-id`.
    pub request_id: Arc<str>,
    /// `chat`, `embeddings`, `responses`, `messages`, `count_tokens`, `models`.
    pub operation: &'static str,
    /// Model the client asked for.
    pub model: Option<String>,
    /// Whether `model` is a configured model name. Only configured names become metric labels:
    /// the client chooses the string, and each new label set is a new time series.
    pub model_configured: bool,
    /// Provider that answered.
    pub provider: Option<Arc<str>>,
    /// Provider model that answered.
    pub response_model: Option<Arc<str>>,
    /// Key id.
    pub key_id: Option<String>,
    /// Account of the key.
    pub account: Option<String>,
    /// Targets tried before one answered or all failed.
    pub attempts: u32,
    /// Filters that matched, flag and block alike, as `filter:reason`, for the log line and,
    /// later, the detector.
    pub flags: Vec<String>,
    /// When the request arrived.
    pub started: Instant,
    /// The detector event of this request, sent with the settled usage when the record finishes.
    pub(crate) detect: Option<crate::detection::Pending>,
    /// The key's workflow as registered, or `None` (logged as unregistered).
    pub workflow: Option<String>,
    /// The request's limits and budget reservations, settled when the record finishes.
    pub(crate) settlement: Option<crate::governance::Settlement>,
    /// The request body's bytes against its key's budget of bytes in flight, given back when
    /// the record is dropped (the body is kept until then).
    pub(crate) body_hold: Option<crate::governance::BodyHold>,
    /// What the request cost, as settled, in micro-units.
    pub cost: moat_core::Money,
    /// What each stage decided, in order (refusals included).
    pub decisions: Vec<Decision>,
    /// The audit log the record goes to when it finishes, if it is on; kept after that for the
    /// incidents the request still causes (a breaker closed by its success is noted after the
    /// answer was built and recorded).
    pub(crate) audit: Option<std::sync::Arc<crate::audit::AuditLog>>,
    /// What the audit record needs beyond the fields above.
    pub(crate) audit_input: crate::audit::AuditInput,
    /// In `sync` durability, the writer's acknowledgement the response waits for.
    pub(crate) audit_ack: Option<tokio::sync::oneshot::Receiver<()>>,
    /// The workflow's latency and cost objectives, checked when the record finishes.
    pub(crate) watch: Option<crate::objectives::Watch>,
    done: bool,
}

impl RequestRecord {
    /// Starts the record of a request.
    pub fn new(request_id: Arc<str>, operation: &'static str) -> Self {
        Self {
            request_id,
            operation,
            model: None,
            model_configured: false,
            provider: None,
            response_model: None,
            key_id: None,
            account: None,
            attempts: 0,
            flags: Vec::new(),
            started: Instant::now(),
            detect: None,
            workflow: None,
            settlement: None,
            body_hold: None,
            cost: moat_core::Money::ZERO,
            watch: None,
            decisions: Vec::new(),
            audit: None,
            audit_input: Default::default(),
            audit_ack: None,
            done: false,
        }
    }

    /// Notes a stage's decision for the audit record.
    /// A reason may quote what the client sent (a model name, a workflow): it is kept to
    /// `moat_audit::MAX_CLIENT_STRING` bytes and marked when cut.
    pub fn decide(&mut self, stage: &'static str, outcome: &'static str, reason: Option<String>) {
        self.decisions.push(Decision {
            stage,
            outcome,
            reason: reason.map(moat_audit::clip_owned),
        });
    }

    /// Appends an incident this request caused (at `ts_ms`) to the audit log, if it is on. An
    /// objective violation names the request's key, account and workflow; a breaker transition
    /// names only the request, since the breaker is shared by every caller of its target.
    pub(crate) fn incident(&self, ts_ms: i64, incident: moat_audit::Incident) {
        let Some(log) = &self.audit else {
            return;
        };
        let principal = !matches!(incident, moat_audit::Incident::Breaker { .. });
        let mut record =
            moat_audit::AuditRecord::incident(ts_ms, self.request_id.to_string(), incident);
        if principal {
            record.key_id.clone_from(&self.key_id);
            record.account.clone_from(&self.account);
            record.workflow.clone_from(&self.workflow);
        }
        // Never waited on, even in `sync` durability: the request's own record is what its
        // response waits for.
        drop(log.submit(record));
    }

    /// A record that is already finished: what the request path keeps once a stream has taken the
    /// real record over.
    pub fn detached() -> Self {
        let mut r = Self::new(Arc::from(""), "");
        r.done = true;
        r
    }

    /// Logs and counts the outcome. `error` is the stable error label when the request failed.
    pub fn finish(&mut self, status: u16, usage: Option<Usage>, error: Option<&'static str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        // The record stage's hand-off to the detector: a bounded queue push, never a wait.
        if let Some(pending) = self.detect.take() {
            pending.settle(usage);
        }
        // Limits and budgets: charged what the provider reported, at the price of the model
        // that answered; a failure that reached no provider is charged nothing.
        if let Some(settlement) = self.settlement.take() {
            self.cost =
                settlement.settle(self.response_model.as_deref(), usage.as_ref(), status < 400);
        }
        let elapsed = self.started.elapsed();
        if let Some(log) = self.audit.clone() {
            let record =
                crate::audit::build(log.keys(), self, status, usage.as_ref(), error, elapsed);
            self.audit_ack = log.submit(record);
        }
        if let Some(watch) = self.watch.take() {
            let violations = watch.finish(
                &self.request_id,
                self.provider.as_deref().unwrap_or(""),
                self.response_model.as_deref().unwrap_or(""),
                elapsed,
                self.cost,
            );
            for v in violations {
                self.incident(v.at_ms, v.audit());
            }
        }
        let model = self.model.as_deref().unwrap_or("");
        let provider = self.provider.as_deref().unwrap_or("");
        let model_label = match (model.is_empty(), self.model_configured) {
            (true, _) | (false, true) => model,
            (false, false) => UNCONFIGURED_MODEL,
        };
        let handles = handles(HandleKey {
            operation: self.operation,
            model: model_label.to_string(),
            provider: provider.to_string(),
            status,
            error: error.unwrap_or(""),
        });
        handles.duration.record(elapsed.as_secs_f64());
        handles.requests.increment(1);
        if let Some(u) = usage {
            handles.input_tokens.record(u.input_tokens as f64);
            handles.output_tokens.record(u.output_tokens as f64);
        }
        // Strings moat itself chose go as Display (`%`), which skips Debug's char-by-char escaping
        // on a line written for every request; the model name comes from the client, so it keeps
        // Debug's escaping and cannot forge log lines.
        tracing::info!(
            target: "moat::request",
            request_id = %self.request_id,
            operation = %self.operation,
            model,
            provider = %provider,
            response_model = %self.response_model.as_deref().unwrap_or(""),
            key_id = %self.key_id.as_deref().unwrap_or(""),
            account = %self.account.as_deref().unwrap_or(""),
            workflow = %self.workflow.as_deref().unwrap_or("unregistered"),
            cost_micros = self.cost.0,
            attempts = self.attempts,
            flags = %self.flags.join(","),
            status,
            error = %error.unwrap_or(""),
            input_tokens = usage.map_or(0, |u| u.input_tokens),
            output_tokens = usage.map_or(0, |u| u.output_tokens),
            duration_us = elapsed.as_micros() as u64,
            "request"
        );
    }
}

/// The labels one request's metrics are recorded under.
#[derive(Clone, PartialEq, Eq, Hash)]
struct HandleKey {
    operation: &'static str,
    model: String,
    provider: String,
    status: u16,
    error: &'static str,
}

/// Registered metric handles for one label set, so a request records with atomic adds instead of
/// building and hashing label sets for each metric.
struct Handles {
    duration: metrics::Histogram,
    requests: metrics::Counter,
    input_tokens: metrics::Histogram,
    output_tokens: metrics::Histogram,
}

/// The metric label for a model name that is not configured (a typo, a probe, a random string).
const UNCONFIGURED_MODEL: &str = "unconfigured";

/// Label sets seen so far; bounded by configured models x providers x statuses x error kinds,
/// because client model names outside the config share one label.
static HANDLES: OnceLock<RwLock<HashMap<HandleKey, Arc<Handles>>>> = OnceLock::new();

fn handles(key: HandleKey) -> Arc<Handles> {
    let map = HANDLES.get_or_init(Default::default);
    if let Some(h) = map.read().ok().and_then(|m| m.get(&key).cloned()) {
        return h;
    }
    let genai = |extra: Option<&'static str>| {
        let mut labels = vec![
            ("gen_ai_operation_name", key.operation.to_string()),
            ("gen_ai_request_model", key.model.clone()),
            ("gen_ai_provider_name", key.provider.clone()),
        ];
        match extra {
            Some(token_type) => labels.push(("gen_ai_token_type", token_type.to_string())),
            None => labels.push(("error_type", key.error.to_string())),
        }
        labels
    };
    let handles = Arc::new(Handles {
        duration: metrics::histogram!("gen_ai_client_operation_duration_seconds", &genai(None)),
        requests: metrics::counter!(
            "moat_requests_total",
            "operation" => key.operation,
            "model" => key.model.clone(),
            "provider" => key.provider.clone(),
            "status" => key.status.to_string()
        ),
        input_tokens: metrics::histogram!("gen_ai_client_token_usage", &genai(Some("input"))),
        output_tokens: metrics::histogram!("gen_ai_client_token_usage", &genai(Some("output"))),
    });
    if let Ok(mut m) = map.write() {
        m.insert(key, Arc::clone(&handles));
    }
    handles
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        // 499 is the de facto code for "client closed request" (nginx); the stream ended early.
        self.finish(499, None, Some("client_closed"));
    }
}

/// Counts an upstream failure that a fallback may have rescued.
pub fn upstream_error(provider: &str, kind: &'static str) {
    metrics::counter!("moat_upstream_errors_total", "provider" => provider.to_string(), "error_type" => kind).increment(1);
}

/// Keeps the background log writer alive; logs still queued are flushed when it drops.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the process's log subscriber: `filter` in `EnvFilter` syntax, JSON lines or text,
/// written by a background thread so a request never waits on a log write (under a burst beyond
/// its queue the writer drops lines rather than stall requests).
pub fn init_logging(
    writer: impl std::io::Write + Send + 'static,
    filter: &str,
    json: bool,
    ansi: bool,
) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking(writer);
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if installed.is_err() {
        tracing::debug!("a log subscriber was already installed");
    }
    guard
}
