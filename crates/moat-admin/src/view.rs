//! How a key is shown to operators (admin API list, CLI list): its scope and state, never its
//! hash or secret.

use moat_policy::KeyRecord;
use serde::Serialize;

/// Where a key stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Accepted.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl KeyState {
    /// The state of `key` at `now` (Unix seconds).
    pub fn of(key: &KeyRecord, now: i64) -> KeyState {
        if key.revoked_at.is_some() {
            KeyState::Revoked
        } else if key.expires_at.is_some_and(|e| e <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }

    /// `active`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Expired => "expired",
            KeyState::Revoked => "revoked",
        }
    }
}

/// A key as listed. Holds no hash and no secret by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    /// Public id.
    pub id: String,
    /// Owning account.
    pub account: String,
    /// Workflow, if any.
    pub workflow: Option<String>,
    /// Models it may call; empty: all.
    pub models: Vec<String>,
    /// Networks it may be used from; empty: anywhere.
    pub cidrs: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
    /// Active, expired or revoked.
    pub state: KeyState,
    /// When the secret replaced by the last rotation stops working (Unix seconds), while it
    /// still works; `null` otherwise.
    pub grace_until: Option<i64>,
}

impl KeyView {
    /// The view of `key` at `now` (Unix seconds).
    pub fn of(key: &KeyRecord, now: i64) -> KeyView {
        KeyView {
            id: key.id.clone(),
            account: key.account.clone(),
            workflow: key.workflow.clone(),
            models: key.models.clone(),
            cidrs: key.cidrs.iter().map(ToString::to_string).collect(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            state: KeyState::of(key, now),
            grace_until: key.grace_until(now),
        }
    }
}
