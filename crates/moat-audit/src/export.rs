//! The export line: one record as JSON, with the detector trace's keys in front so the same
//! file feeds `moat detect replay` and `moat audit verify`.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::record::{AuditRecord, Usage};

/// One record as an export line: the trace keys of `moat_detect::trace` (`ts`, `ip`,
/// `account_created`, `request`, `response`), then every field of the record.
///
/// A line is replayable by `moat detect replay` when the record names an `account` and an `api`
/// the detector knows (`openai.chat`, `openai.responses`, `anthropic.messages`) and its request
/// body was kept in full (`request` is the body itself, so full bodies appear twice: once
/// for the trace, once in `request_body` for the hash). Other lines are counted as unreadable
/// by the replay and skipped. Every line reads back as its [`AuditRecord`] (the trace keys are
/// ignored) with its hash intact, so an export verifies like the log.
///
/// This is a borrowing `Serialize` type rather than a `serde_json::Value` on purpose: a `Value`
/// would re-spell the raw bodies (escapes, floats) and the exported records would no longer
/// match their hashes.
#[derive(Debug, Serialize)]
pub struct Export<'a> {
    /// `ts_ms` as RFC 3339 UTC with milliseconds (`None` only outside years 1..9999).
    pub ts: Option<String>,
    /// `source_ip`.
    pub ip: Option<&'a str>,
    /// `account_created_ms` as RFC 3339 UTC with milliseconds.
    pub account_created: Option<String>,
    /// The request body, when kept in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'a RawValue>,
    /// Tokens as settled, in the trace's `{"input_tokens", "output_tokens"}` shape.
    pub response: Option<&'a Usage>,
    /// Every field of the record.
    #[serde(flatten)]
    pub record: &'a AuditRecord,
}

impl AuditRecord {
    /// This record as an export line's fields.
    pub fn export(&self) -> Export<'_> {
        Export {
            ts: format_rfc3339_ms(self.ts_ms),
            ip: self.source_ip.as_deref(),
            account_created: self.account_created_ms.and_then(format_rfc3339_ms),
            request: self.request_body.as_full(),
            response: self.usage.as_ref(),
            record: self,
        }
    }

    /// This record as one line of JSON (no newline); see [`Export`] for which lines replay.
    pub fn to_export_line(&self) -> String {
        // Serializing a record cannot fail: every map key is a string.
        serde_json::to_string(&self.export()).unwrap_or_default()
    }
}

/// Formats ms since the Unix epoch as RFC 3339 UTC with milliseconds, as the trace format does.
pub fn format_rfc3339_ms(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).ok()
}
