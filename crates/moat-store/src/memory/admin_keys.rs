//! Admin keys in memory: a list behind one mutex.

use super::MemoryStore;
use crate::{AdminKeyRecord, AdminKeyStore, StoreError};
use async_trait::async_trait;
use std::sync::MutexGuard;

impl MemoryStore {
    fn admin_keys(&self) -> Result<MutexGuard<'_, Vec<AdminKeyRecord>>, StoreError> {
        self.admin_keys
            .lock()
            .map_err(|_| StoreError::Worker("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl AdminKeyStore for MemoryStore {
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> Result<(), StoreError> {
        let mut keys = self.admin_keys()?;
        if keys.iter().any(|k| k.id == key.id) {
            return Err(StoreError::Duplicate(key.id.clone()));
        }
        keys.push(key.clone());
        Ok(())
    }

    async fn get_admin_key(&self, id: &str) -> Result<Option<AdminKeyRecord>, StoreError> {
        Ok(self.admin_keys()?.iter().find(|k| k.id == id).cloned())
    }

    async fn list_admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError> {
        let mut keys = self.admin_keys()?.clone();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn revoke_admin_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let mut keys = self.admin_keys()?;
        match keys.iter_mut().find(|k| k.id == id) {
            Some(k) => {
                k.revoked_at.get_or_insert(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
