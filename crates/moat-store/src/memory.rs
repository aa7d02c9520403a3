//! An in-memory store for tests and throwaway runs.

use crate::{KeyStore, SpendRow, SpendStore, StoreError, WorkflowSpec, WorkflowStore};
use async_trait::async_trait;
use moat_core::Money;
use moat_policy::budget::Period;
use moat_policy::limits::Scope;
use moat_policy::{KeyHash, KeyRecord, PreviousSecret};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

mod admin_keys;
mod audit;

/// Keeps everything in memory behind mutexes; gone when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    keys: Mutex<Vec<KeyRecord>>,
    spend: Mutex<BTreeMap<SpendKey, Money>>,
    workflows: Mutex<BTreeMap<String, WorkflowSpec>>,
    audit: Mutex<audit::AuditLog>,
    admin_keys: Mutex<Vec<crate::AdminKeyRecord>>,
}

/// What a spend row is upserted by.
type SpendKey = (Scope, Arc<str>, Period, i64);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> Result<std::sync::MutexGuard<'_, Vec<KeyRecord>>, StoreError> {
        self.keys
            .lock()
            .map_err(|_| StoreError::Worker("memory store lock poisoned".into()))
    }

    fn spend(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<SpendKey, Money>>, StoreError> {
        self.spend
            .lock()
            .map_err(|_| StoreError::Worker("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let mut keys = self.keys()?;
        if keys.iter().any(|k| k.id == key.id) {
            return Err(StoreError::Duplicate(key.id.clone()));
        }
        keys.push(key.clone());
        Ok(())
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.keys()?.iter().find(|k| k.id == id).cloned())
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = self.keys()?.clone();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let mut keys = self.keys()?;
        match keys.iter_mut().find(|k| k.id == id) {
            Some(k) => {
                k.revoked_at.get_or_insert(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn rotate_key(
        &self,
        id: &str,
        new_hash: &KeyHash,
        grace_until: i64,
    ) -> Result<bool, StoreError> {
        let mut keys = self.keys()?;
        match keys
            .iter_mut()
            .find(|k| k.id == id && k.revoked_at.is_none())
        {
            Some(k) => {
                k.previous = Some(PreviousSecret {
                    hash: k.hash,
                    valid_until: grace_until,
                });
                k.hash = *new_hash;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.keys().map(|_| ())
    }
}

#[async_trait]
impl SpendStore for MemoryStore {
    async fn save_spend(&self, rows: &[SpendRow]) -> Result<(), StoreError> {
        let mut spend = self.spend()?;
        for row in rows {
            let key = (
                row.scope,
                Arc::clone(&row.id),
                row.period,
                row.window_start_ms,
            );
            spend.insert(key, row.spent);
        }
        Ok(())
    }

    async fn load_spend(&self, since_ms: i64) -> Result<Vec<SpendRow>, StoreError> {
        Ok(self
            .spend()?
            .iter()
            .filter(|((_, _, _, start), _)| *start >= since_ms)
            .map(|((scope, id, period, start), spent)| SpendRow {
                scope: *scope,
                id: Arc::clone(id),
                period: *period,
                window_start_ms: *start,
                spent: *spent,
            })
            .collect())
    }

    async fn prune_spend(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut spend = self.spend()?;
        let before = spend.len();
        spend.retain(|(_, _, _, start), _| *start >= before_ms);
        Ok((before - spend.len()) as u64)
    }
}

#[async_trait]
impl WorkflowStore for MemoryStore {
    async fn put_workflow(&self, spec: &WorkflowSpec, _at: i64) -> Result<(), StoreError> {
        self.workflows()?.insert(spec.name.clone(), spec.clone());
        Ok(())
    }

    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.workflows()?.remove(name).is_some())
    }

    async fn list_workflows(&self) -> Result<Vec<WorkflowSpec>, StoreError> {
        Ok(self.workflows()?.values().cloned().collect())
    }
}

impl MemoryStore {
    fn workflows(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, WorkflowSpec>>, StoreError> {
        self.workflows
            .lock()
            .map_err(|_| StoreError::Worker("memory store lock poisoned".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    #[tokio::test]
    async fn memory_store_passes_the_conformance_suite() {
        let store = super::MemoryStore::new();
        crate::conformance::key_store(&store).await;
        crate::conformance::spend_store(&store).await;
        crate::conformance::workflow_store(&store).await;
        crate::conformance::audit_store(&store).await;
        crate::conformance::admin_key_store(&store).await;
    }
}
