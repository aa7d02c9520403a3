//! The key service: creating, listing, rotating and revoking virtual keys, once for the admin
//! API and the CLI alike.

use crate::view::KeyView;
use ipnet::IpNet;
use moat_core::{Clock, Secret};
use moat_policy::{generate_key, generate_secret_for, KeyRecord};
use moat_store::{KeyStore, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// The grace window of a rotation that names none: a day, time to roll the new key out.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The longest grace window: 30 days. An old secret that must live longer is a second key.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why a key operation failed; each maps to one HTTP status in [`crate::keys`].
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The request itself is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// No key has this id (404).
    #[error("no key with id {0}")]
    NotFound(String),
    /// The key is revoked, so it cannot be rotated (409).
    #[error("key {0} is revoked; create a new key instead")]
    Revoked(String),
    /// The store failed (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key to create.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// The owning account (required, not blank).
    pub account: String,
    /// The workflow, checked as a workflow name.
    pub workflow: Option<String>,
    /// Models it may call; empty: all. Empty names are dropped.
    pub models: Vec<String>,
    /// Networks it may be used from; empty: anywhere.
    pub cidrs: Vec<IpNet>,
    /// Lifetime from now; `None`: no expiry.
    pub expires_in: Option<Duration>,
}

/// A key just created or rotated: the secret, shown to its owner once, and the key's view.
#[derive(Debug)]
pub struct IssuedKey {
    /// The whole key, `moat_<id>_<secret>`.
    pub key: Secret<String>,
    /// The key as listed after the change.
    pub view: KeyView,
    /// For a rotation: when the previous secret stops working (Unix seconds, exclusive).
    pub old_valid_until: Option<i64>,
}

/// Called with a key's id after it changed, so caches drop it.
pub type OnChange = Arc<dyn Fn(&str) + Send + Sync>;

/// Creates, lists, rotates and revokes virtual keys in a [`KeyStore`].
#[derive(Clone)]
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    on_change: Option<OnChange>,
}

impl KeyService {
    /// A service over `store`, with time from `clock`.
    pub fn new(store: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            on_change: None,
        }
    }

    /// Calls `hook` with the id of every key this service rotates or revokes.
    pub fn on_change(mut self, hook: OnChange) -> Self {
        self.on_change = Some(hook);
        self
    }

    /// Creates a key with a new id.
    pub async fn create(&self, new: NewKey) -> Result<IssuedKey, KeyError> {
        let account = new.account.trim();
        if account.is_empty() {
            return Err(KeyError::Invalid("'account' must not be blank".into()));
        }
        if let Some(workflow) = &new.workflow {
            moat_config::check_workflow_name(workflow)
                .map_err(|why| KeyError::Invalid(format!("'workflow' {why}")))?;
        }
        let now = self.clock.now_secs();
        let expires_at = match new.expires_in {
            Some(d) => Some(
                i64::try_from(d.as_secs())
                    .ok()
                    .and_then(|s| now.checked_add(s))
                    .ok_or_else(|| KeyError::Invalid("'expires_in' is too long".into()))?,
            ),
            None => None,
        };
        let generated = generate_key();
        let record = KeyRecord {
            workflow: new.workflow,
            models: new.models.into_iter().filter(|m| !m.is_empty()).collect(),
            cidrs: new.cidrs,
            expires_at,
            ..generated.record(account, now)
        };
        self.store.insert_key(&record).await?;
        Ok(IssuedKey {
            key: generated.key,
            view: KeyView::of(&record, now),
            old_valid_until: None,
        })
    }

    /// Every key, oldest first, as listed now.
    pub async fn list(&self) -> Result<Vec<KeyView>, KeyError> {
        let now = self.clock.now_secs();
        let keys = self.store.list_keys().await?;
        Ok(keys.iter().map(|k| KeyView::of(k, now)).collect())
    }

    /// Gives the key `id` a new secret; the old one keeps working for `grace` (at most
    /// [`MAX_GRACE`]; zero: it stops at once). A second rotation within a grace window ends the
    /// window of the secret before: only the secret just replaced keeps working.
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<IssuedKey, KeyError> {
        if grace > MAX_GRACE {
            return Err(KeyError::Invalid(format!(
                "'grace' may be at most {}",
                humantime::format_duration(MAX_GRACE)
            )));
        }
        let current = self.get(id).await?;
        if current.revoked_at.is_some() {
            return Err(KeyError::Revoked(id.to_string()));
        }
        let generated =
            generate_secret_for(id).ok_or_else(|| KeyError::NotFound(id.to_string()))?;
        let now = self.clock.now_secs();
        // At most 30 days in seconds: the cast and the sum cannot overflow.
        let until = now.saturating_add(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
        if !self.store.rotate_key(id, &generated.hash, until).await? {
            // Revoked (or deleted) between the read and the write.
            return Err(self
                .get(id)
                .await
                .map_or_else(|e| e, |_| KeyError::Revoked(id.into())));
        }
        self.changed(id);
        let record = self.get(id).await?;
        Ok(IssuedKey {
            key: generated.key,
            view: KeyView::of(&record, now),
            old_valid_until: Some(until),
        })
    }

    /// Revokes the key `id` now (a second revocation keeps the first time).
    pub async fn revoke(&self, id: &str) -> Result<KeyView, KeyError> {
        let now = self.clock.now_secs();
        if !self.store.revoke_key(id, now).await? {
            return Err(KeyError::NotFound(id.to_string()));
        }
        self.changed(id);
        Ok(KeyView::of(&self.get(id).await?, now))
    }

    async fn get(&self, id: &str) -> Result<KeyRecord, KeyError> {
        self.store
            .get_key(id)
            .await?
            .ok_or_else(|| KeyError::NotFound(id.to_string()))
    }

    fn changed(&self, id: &str) {
        if let Some(hook) = &self.on_change {
            hook(id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::view::KeyState;
    use moat_core::ManualClock;
    use moat_policy::{hash_key, parse_key};
    use moat_store::MemoryStore;
    use std::sync::Mutex;

    fn service() -> (KeyService, Arc<MemoryStore>, Arc<Mutex<Vec<String>>>) {
        let store = Arc::new(MemoryStore::new());
        let changed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&changed);
        let clock = Arc::new(ManualClock::new(1_000_000));
        let svc = KeyService::new(store.clone(), clock).on_change(Arc::new(move |id| {
            seen.lock().unwrap().push(id.to_string())
        }));
        (svc, store, changed)
    }

    fn new_key(account: &str) -> NewKey {
        NewKey {
            account: account.into(),
            ..NewKey::default()
        }
    }

    #[tokio::test]
    async fn create_stores_only_the_hash_and_checks_its_input() {
        let (svc, store, _) = service();
        let made = svc
            .create(NewKey {
                models: vec!["gpt-4o".into(), String::new()],
                expires_in: Some(Duration::from_secs(60)),
                ..new_key(" acme ")
            })
            .await
            .unwrap();
        let id = parse_key(made.key.expose()).unwrap();
        let stored = store.get_key(id).await.unwrap().unwrap();
        assert!(stored.hash.matches(&hash_key(made.key.expose())));
        assert_eq!(stored.account, "acme");
        assert_eq!(stored.models, ["gpt-4o"]);
        assert_eq!(stored.expires_at, Some(1_060));
        assert_eq!(made.view.state, KeyState::Active);
        assert!(matches!(
            svc.create(new_key(" ")).await,
            Err(KeyError::Invalid(_))
        ));
        let bad_workflow = NewKey {
            workflow: Some("no spaces".into()),
            ..new_key("a")
        };
        assert!(matches!(
            svc.create(bad_workflow).await,
            Err(KeyError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn rotate_keeps_the_id_and_reports_the_window_revoke_is_final() {
        let (svc, store, changed) = service();
        let made = svc.create(new_key("acme")).await.unwrap();
        let id = made.view.id.clone();
        let rotated = svc.rotate(&id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(parse_key(rotated.key.expose()), Some(id.as_str()));
        assert_eq!(rotated.old_valid_until, Some(1_060));
        assert_eq!(rotated.view.grace_until, Some(1_060));
        let stored = store.get_key(&id).await.unwrap().unwrap();
        assert!(stored
            .accepts(&hash_key(made.key.expose()), 1_059)
            .is_some());
        assert!(stored
            .accepts(&hash_key(made.key.expose()), 1_060)
            .is_none());
        assert!(stored
            .accepts(&hash_key(rotated.key.expose()), 1_059)
            .is_some());
        assert!(matches!(
            svc.rotate(&id, MAX_GRACE + Duration::from_secs(1)).await,
            Err(KeyError::Invalid(_))
        ));
        assert!(matches!(
            svc.rotate("nosuchkey123", Duration::ZERO).await,
            Err(KeyError::NotFound(_))
        ));
        assert_eq!(svc.revoke(&id).await.unwrap().state, KeyState::Revoked);
        assert!(matches!(
            svc.rotate(&id, Duration::ZERO).await,
            Err(KeyError::Revoked(_))
        ));
        assert!(matches!(
            svc.revoke("nosuchkey123").await,
            Err(KeyError::NotFound(_))
        ));
        assert_eq!(*changed.lock().unwrap(), [id.clone(), id]);
        assert_eq!(svc.list().await.unwrap().len(), 1);
    }
}
