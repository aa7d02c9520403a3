//! An in-memory store for tests and throwaway runs.

use crate::{KeyStore, StoreError};
use async_trait::async_trait;
use moat_policy::KeyRecord;
use std::sync::Mutex;

/// Keeps everything in a vector behind a mutex; gone when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    keys: Mutex<Vec<KeyRecord>>,
}

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

    async fn ping(&self) -> Result<(), StoreError> {
        self.keys().map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    #[tokio::test]
    async fn memory_store_passes_the_conformance_suite() {
        crate::conformance::key_store(&super::MemoryStore::new()).await;
    }
}
