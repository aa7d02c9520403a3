//! The recorded-trace format (one JSON object per request, time-ordered), as read by
//! `moat detect replay` and written by the gateway's event export.
//!
//! ```json
//! {"ts": "2026-03-12T01:45:20.509Z", "request_id": "req_…", "account": "acct_…",
//!  "key_id": "key_…", "end_user": "u_…", "account_created": "2026-03-11T10:41:10.570Z",
//!  "ip": "163.2.128.69", "user_agent": "…", "api": "openai.chat" | "openai.responses" |
//!  "anthropic.messages", "model": "…", "request": {…the request body…},
//!  "response": {"input_tokens": 51, "output_tokens": 225}}
//! ```

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use moat_protocol::view::{RequestView, ViewApi};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::features::{Extractor, RequestFeatures};

/// Why a trace line could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Not a JSON object of the trace shape.
    #[error("not a trace record: {0}")]
    Json(#[from] serde_json::Error),
    /// A timestamp that is not RFC 3339 UTC.
    #[error("bad timestamp {0:?}")]
    Time(String),
    /// An `api` value the detector does not know.
    #[error("unknown api {0:?}")]
    Api(String),
    /// A request body that is not a chat request.
    #[error("request body: {0}")]
    Body(String),
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Cow<'a, str>,
    #[serde(borrow)]
    account: Cow<'a, str>,
    #[serde(borrow, default)]
    end_user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    account_created: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    api: Cow<'a, str>,
    #[serde(borrow)]
    request: &'a RawValue,
    #[serde(default)]
    response: Option<Usage>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// One request as the detector sees it, owned: a parsed trace line in `moat detect replay`, and
/// what the gateway queues to its detector worker.
#[derive(Debug, Clone)]
pub struct Record {
    /// Arrival, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Request id.
    pub request_id: Arc<str>,
    /// Account.
    pub account: String,
    /// End user, when the request names one.
    pub end_user: Option<String>,
    /// Account creation, ms since the Unix epoch.
    pub account_created_ms: Option<i64>,
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Features of the request body.
    pub features: RequestFeatures,
}

impl Record {
    /// Parses one line and extracts its features.
    pub fn parse(line: &str, extractor: &Extractor) -> Result<Record, TraceError> {
        let l: Line<'_> = serde_json::from_str(line)?;
        let api = match l.api.as_ref() {
            "openai.chat" => ViewApi::OpenAiChat,
            "openai.responses" => ViewApi::OpenAiResponses,
            "anthropic.messages" => ViewApi::AnthropicMessages,
            other => return Err(TraceError::Api(other.to_string())),
        };
        let view = RequestView::parse(api, l.request.get().as_bytes())
            .map_err(|e| TraceError::Body(e.to_string()))?;
        let features = extractor.extract(&view);
        let usage = l.response.unwrap_or_default();
        Ok(Record {
            ts_ms: parse_rfc3339_ms(&l.ts).ok_or_else(|| TraceError::Time(l.ts.to_string()))?,
            request_id: Arc::from(l.request_id.as_ref()),
            account: l.account.into_owned(),
            end_user: l
                .end_user
                .or(view.end_user)
                .map(|u| crate::end_users::end_user_id(&u).into_owned()),
            account_created_ms: l.account_created.as_deref().and_then(parse_rfc3339_ms),
            ip: l.ip.as_deref().and_then(|s| s.parse().ok()),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            features,
        })
    }

    /// The detector event for this record.
    pub fn event(&self) -> crate::Event<'_> {
        crate::Event {
            ts_ms: self.ts_ms,
            request_id: &self.request_id,
            account: &self.account,
            end_user: self.end_user.as_deref(),
            account_created_ms: self.account_created_ms,
            ip: self.ip,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            features: &self.features,
        }
    }
}

/// Formats ms since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339_ms(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).ok()
}

/// Parses an RFC 3339 timestamp to ms since the Unix epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_rfc3339_ms("2026-03-12T01:45:20.509Z"),
            Some(1_773_279_920_509)
        );
        assert_eq!(parse_rfc3339_ms("2026-13-12T01:45:20Z"), None);
        assert_eq!(parse_rfc3339_ms("garbage"), None);
        assert_eq!(
            format_rfc3339_ms(1_773_279_920_509).as_deref(),
            Some("2026-03-12T01:45:20.509Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2026-03-12T03:45:20.509+02:00"),
            Some(1_773_279_920_509)
        );
    }

    #[test]
    fn parses_a_trace_line() {
        let line = r#"{"ts":"2026-03-12T01:45:20.509Z","request_id":"req_1","account":"acct_1","key_id":"k","account_created":"2026-03-11T10:41:10.570Z","ip":"10.0.0.1","user_agent":"x","api":"anthropic.messages","model":"m","request":{"model":"m","max_tokens":5,"system":"be brief","messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u1"}},"response":{"text":"hey","input_tokens":3,"output_tokens":2}}"#;
        let r = Record::parse(line, &Extractor::new()).unwrap();
        assert_eq!(r.account, "acct_1");
        assert_eq!(r.end_user.as_deref(), Some("u1"));
        assert_eq!(r.output_tokens, 2);
        assert!(r.features.system.is_some());
        assert!(Record::parse("{}", &Extractor::new()).is_err());
        assert!(Record::parse(
            &line.replace("anthropic.messages", "x.y"),
            &Extractor::new()
        )
        .is_err());
    }
}
