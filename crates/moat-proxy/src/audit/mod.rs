//! The audit log on the request path: a finished request's record built for the log
//! (`record.rs`), and the log itself, whose runtime (writer task, health and admission, witness,
//! resume checks, retention) is the `moat-audit-log` crate, re-exported here.

mod record;

pub(crate) use record::{build, keeps_bodies, AuditInput};
pub use record::{Capture, CAPTURE_MAX};

pub use moat_audit_log::{retention, witness, AuditError, AuditLog, HeadPoster};

use crate::upstream::HttpClient;
use std::time::Duration;

impl From<AuditError> for crate::error::GatewayError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Unavailable(why) => crate::error::GatewayError::AuditUnavailable(why),
        }
    }
}

/// Posts the witness's heads with the gateway's upstream client (connecting within 5 s).
pub(crate) struct WitnessPoster(HttpClient);

impl WitnessPoster {
    /// A poster with a client of its own, as the witness has always had.
    pub(crate) fn new() -> WitnessPoster {
        WitnessPoster(crate::upstream::client(Duration::from_secs(5)))
    }
}

impl HeadPoster for WitnessPoster {
    fn post<'a>(&'a self, url: &'a str, body: Vec<u8>) -> moat_audit_log::witness::PostFuture<'a> {
        Box::pin(async move {
            let request = http::Request::post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::USER_AGENT, "moat-audit-witness")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            match self.0.request(request).await {
                Err(e) => Err(e.to_string()),
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("answered {}", response.status())),
            }
        })
    }
}
