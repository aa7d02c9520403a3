//! Authentication: finding the client's key in its headers, and counting the failures per
//! address. Checking it against the store, through a cache, is `moat_store::KeyCache`'s job.

use crate::error::GatewayError;
use http::HeaderMap;
use moat_policy::ScopeError;
use std::net::IpAddr;
use std::time::Duration;

/// The credential a client presented: `Authorization: Bearer`, `x-api-key` or Azure-style `api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !token.is_empty() {
            return Some(token);
        }
    }
    ["x-api-key", "api-key"]
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .find(|v| !v.is_empty())
}

/// Per-address limits on failed authentications (`server.auth_failures_per_minute`), so refusals
/// stay cheap: past the limit an address's failures are answered 429 without an audit record
/// and with one log line per 10 s for all of them.
///
/// On the data plane only failures count and a valid key is always checked (virtual keys are
/// too long to guess, and a client sharing an address with a prober keeps working). On the
/// admin API an address over its limit is refused before its credential is checked, so the
/// limit bounds guesses and a 429 says nothing about the credential.
pub(crate) struct Refusals {
    data: Option<moat_listen::AddressThrottle>,
    admin: Option<moat_listen::AddressThrottle>,
    data_log: moat_listen::LogEvery,
    admin_log: moat_listen::LogEvery,
}

impl Refusals {
    /// `per_minute` failures per address on each plane; 0: no limit.
    pub(crate) fn new(per_minute: u32) -> Self {
        let every = Duration::from_secs(10);
        Self {
            data: moat_listen::AddressThrottle::per_minute(per_minute),
            admin: moat_listen::AddressThrottle::per_minute(per_minute),
            data_log: moat_listen::LogEvery::new(every),
            admin_log: moat_listen::LogEvery::new(every),
        }
    }

    /// A data-plane failure of `client`: `error` itself, or `AuthThrottled` once the address is
    /// over its limit. Other failures pass through untouched.
    pub(crate) fn data_plane(&self, client: IpAddr, error: GatewayError) -> GatewayError {
        if !matches!(
            error,
            GatewayError::MissingKey | GatewayError::Scope(ScopeError::InvalidKey)
        ) {
            return error;
        }
        metrics::counter!("moat_auth_failures_total", "plane" => "data").increment(1);
        let Some(Err(wait)) = self.data.as_ref().map(|t| t.strike(client)) else {
            return error;
        };
        metrics::counter!("moat_auth_throttled_total", "plane" => "data").increment(1);
        if let Some(suppressed) = self.data_log.ready() {
            tracing::warn!(%client, suppressed, "requests without a valid key throttled: answered 429 without audit records");
        }
        GatewayError::AuthThrottled {
            retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// How long `client` must wait before the admin API checks its credential again, when it
    /// is over its limit now (counted and logged as a failure).
    pub(crate) fn admin_blocked(&self, client: IpAddr) -> Option<Duration> {
        let wait = self.admin.as_ref()?.blocked(client)?;
        self.admin_failed(client, true);
        Some(wait)
    }

    /// Records a failed admin authentication of `client`: `Some(wait)` when that put it over
    /// its limit.
    pub(crate) fn admin_failure(&self, client: IpAddr) -> Option<Duration> {
        let over = self.admin.as_ref().and_then(|t| t.strike(client).err());
        self.admin_failed(client, over.is_some());
        over
    }

    fn admin_failed(&self, client: IpAddr, throttled: bool) {
        metrics::counter!("moat_auth_failures_total", "plane" => "admin").increment(1);
        if throttled {
            metrics::counter!("moat_auth_throttled_total", "plane" => "admin").increment(1);
        }
        if let Some(suppressed) = self.admin_log.ready() {
            tracing::warn!(%client, throttled, suppressed, "admin API authentication failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_missing_and_invalid_keys_count_and_past_the_limit_become_429() {
        let r = Refusals::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let expired = || GatewayError::Scope(ScopeError::Expired { id: "k".into() });
        for _ in 0..5 {
            assert!(matches!(r.data_plane(a, expired()), GatewayError::Scope(_)));
        }
        assert!(matches!(
            r.data_plane(a, GatewayError::MissingKey),
            GatewayError::MissingKey
        ));
        assert!(matches!(
            r.data_plane(a, ScopeError::InvalidKey.into()),
            GatewayError::Scope(ScopeError::InvalidKey)
        ));
        let e = r.data_plane(a, GatewayError::MissingKey);
        assert_eq!(e.status(), 429);
        assert!(matches!(e, GatewayError::AuthThrottled { retry_after_ms } if retry_after_ms > 0));
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(matches!(
            r.data_plane(b, GatewayError::MissingKey),
            GatewayError::MissingKey
        ));
        // No limit at 0.
        let off = Refusals::new(0);
        for _ in 0..100 {
            assert!(matches!(
                off.data_plane(a, GatewayError::MissingKey),
                GatewayError::MissingKey
            ));
            assert_eq!(off.admin_failure(a), None);
        }
    }

    #[test]
    fn credentials_are_found_in_every_accepted_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("api-key", HeaderValue::from_static("k3"));
        assert_eq!(presented_key(&h), Some("k3"));
        h.insert("x-api-key", HeaderValue::from_static("k2"));
        assert_eq!(presented_key(&h), Some("k2"));
        h.insert("authorization", HeaderValue::from_static("Bearer k1"));
        assert_eq!(presented_key(&h), Some("k1"));
    }
}
