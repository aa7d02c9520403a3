//! Key scope: whether a valid key may make this request, now, from here.

use crate::keys::KeyRecord;
use std::net::IpAddr;

/// Why a key may not make a request. The first three are authentication failures (401), the rest
/// authorization failures (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Unknown key or wrong secret.
    #[error("invalid API key")]
    InvalidKey,
    /// The key's expiry has passed.
    #[error("API key {id} expired")]
    Expired {
        /// Public id of the key.
        id: String,
    },
    /// The key was revoked.
    #[error("API key {id} has been revoked")]
    Revoked {
        /// Public id of the key.
        id: String,
    },
    /// The key may not call this model.
    #[error("API key {id} is not allowed to use model '{model}'")]
    ModelNotAllowed {
        /// Public id of the key.
        id: String,
        /// The model asked for.
        model: String,
    },
    /// The request comes from outside the key's networks.
    #[error("API key {id} may not be used from {source_ip}")]
    SourceNotAllowed {
        /// Public id of the key.
        id: String,
        /// The client's address.
        source_ip: IpAddr,
    },
}

impl ScopeError {
    /// 401 for authentication failures, 403 for authorization failures.
    pub fn status(&self) -> u16 {
        match self {
            ScopeError::InvalidKey | ScopeError::Expired { .. } | ScopeError::Revoked { .. } => 401,
            ScopeError::ModelNotAllowed { .. } | ScopeError::SourceNotAllowed { .. } => 403,
        }
    }
}

/// Checks a key that matched its hash against the request: revocation and expiry first (401), then the
/// source address and the model (403). `model` is `None` for routes that name no model.
pub fn authorize(
    key: &KeyRecord,
    model: Option<&str>,
    source: IpAddr,
    now_secs: i64,
) -> Result<(), ScopeError> {
    if key.revoked_at.is_some_and(|at| at <= now_secs) {
        return Err(ScopeError::Revoked { id: key.id.clone() });
    }
    if key.expires_at.is_some_and(|at| at <= now_secs) {
        return Err(ScopeError::Expired { id: key.id.clone() });
    }
    // An IPv4 client reaching a dual-stack listener shows up as ::ffff:a.b.c.d; scope it as IPv4.
    let source = match source {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
        v4 => v4,
    };
    if !key.cidrs.is_empty() && !key.cidrs.iter().any(|net| net.contains(&source)) {
        return Err(ScopeError::SourceNotAllowed {
            id: key.id.clone(),
            source_ip: source,
        });
    }
    if let Some(model) = model {
        if !may_use_model(key, model) {
            return Err(ScopeError::ModelNotAllowed {
                id: key.id.clone(),
                model: model.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether the key's model list allows `model` (an empty list allows all).
pub fn may_use_model(key: &KeyRecord, model: &str) -> bool {
    key.models.is_empty() || key.models.iter().any(|m| m == model)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::keys::hash_key;

    fn key() -> KeyRecord {
        KeyRecord {
            id: "abc".into(),
            hash: hash_key("k"),
            account: "acme".into(),
            workflow: None,
            models: vec!["gpt-4o".into()],
            cidrs: vec!["10.0.0.0/8".parse().unwrap()],
            created_at: 0,
            expires_at: Some(100),
            revoked_at: None,
            previous: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn in_scope_request_passes() {
        assert_eq!(
            authorize(&key(), Some("gpt-4o"), ip("10.1.2.3"), 99),
            Ok(())
        );
        assert_eq!(authorize(&key(), None, ip("::ffff:10.1.2.3"), 99), Ok(()));
    }

    #[test]
    fn each_rule_refuses_with_its_status() {
        let e = authorize(&key(), Some("gpt-4o"), ip("10.1.2.3"), 100).unwrap_err();
        assert_eq!((e.status(), e.to_string().contains("expired")), (401, true));
        let mut revoked = key();
        revoked.revoked_at = Some(50);
        assert_eq!(
            authorize(&revoked, Some("gpt-4o"), ip("10.0.0.1"), 60)
                .unwrap_err()
                .status(),
            401
        );
        let e = authorize(&key(), Some("claude"), ip("10.1.2.3"), 1).unwrap_err();
        assert!(matches!(e, ScopeError::ModelNotAllowed { .. }));
        assert_eq!(e.status(), 403);
        let e = authorize(&key(), Some("gpt-4o"), ip("192.168.1.1"), 1).unwrap_err();
        assert!(matches!(e, ScopeError::SourceNotAllowed { .. }));
        assert_eq!(e.status(), 403);
    }

    #[test]
    fn empty_lists_mean_unrestricted() {
        let mut open = key();
        open.models.clear();
        open.cidrs.clear();
        open.expires_at = None;
        assert_eq!(
            authorize(&open, Some("anything"), ip("8.8.8.8"), i64::MAX),
            Ok(())
        );
    }
}
