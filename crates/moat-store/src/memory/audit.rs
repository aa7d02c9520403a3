//! The in-memory audit log: records by seq and checkpoints, behind one mutex so that a batch
//! (or a drop with its checkpoint) is checked and applied as one step.

use super::MemoryStore;
use crate::audit::{check_batch, check_checkpoint};
use crate::{
    AuditBounds, AuditQuery, AuditStore, AuditTail, StoreError, StoredAudit, StoredCheckpoint,
};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::MutexGuard;

/// The log: kept records by seq, and every checkpoint by seq.
#[derive(Debug, Default)]
pub(super) struct AuditLog {
    records: BTreeMap<u64, StoredAudit>,
    checkpoints: BTreeMap<u64, StoredCheckpoint>,
}

impl AuditLog {
    fn tail(&self) -> Option<AuditTail> {
        let last = self.records.values().next_back().map(|r| (r.seq, &r.hash));
        let anchor = self
            .checkpoints
            .values()
            .next_back()
            .map(|c| (c.seq, &c.hash));
        last.max(anchor).map(|(seq, hash)| AuditTail {
            seq,
            hash: hash.clone(),
        })
    }
}

impl MemoryStore {
    fn audit_log(&self) -> Result<MutexGuard<'_, AuditLog>, StoreError> {
        self.audit
            .lock()
            .map_err(|_| StoreError::Worker("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, batch: &[StoredAudit]) -> Result<(), StoreError> {
        let mut log = self.audit_log()?;
        check_batch(log.tail().as_ref(), batch)?;
        log.records.extend(batch.iter().map(|r| (r.seq, r.clone())));
        Ok(())
    }

    async fn audit_tail(&self) -> Result<Option<AuditTail>, StoreError> {
        Ok(self.audit_log()?.tail())
    }

    async fn audit_range(
        &self,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredAudit>, StoreError> {
        if from_seq > to_seq {
            return Ok(Vec::new());
        }
        Ok(self
            .audit_log()?
            .records
            .range(from_seq..=to_seq)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredAudit>, StoreError> {
        let log = self.audit_log()?;
        let start = q.after_seq.map_or(0, |a| a.saturating_add(1));
        Ok(log
            .records
            .range(start..)
            .map(|(_, r)| r)
            .filter(|r| q.matches(r))
            .take(q.limit)
            .cloned()
            .collect())
    }

    async fn drop_audit_through(&self, checkpoint: &StoredCheckpoint) -> Result<u64, StoreError> {
        let mut log = self.audit_log()?;
        let kept = log.records.get(&checkpoint.seq).map(|r| r.hash.as_str());
        let existing = log
            .checkpoints
            .get(&checkpoint.seq)
            .map(|c| c.hash.as_str());
        if !check_checkpoint(checkpoint, kept, existing)? {
            return Ok(0);
        }
        let kept = log.records.split_off(&checkpoint.seq.saturating_add(1));
        let dropped = std::mem::replace(&mut log.records, kept);
        log.checkpoints.insert(checkpoint.seq, checkpoint.clone());
        Ok(dropped.len() as u64)
    }

    async fn audit_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        Ok(self.audit_log()?.checkpoints.values().cloned().collect())
    }

    async fn audit_bounds(&self) -> Result<Option<AuditBounds>, StoreError> {
        let log = self.audit_log()?;
        let (Some(first), Some(last)) = (log.records.keys().next(), log.records.keys().next_back())
        else {
            return Ok(None);
        };
        Ok(Some(AuditBounds {
            first_seq: *first,
            last_seq: *last,
            count: log.records.len() as u64,
        }))
    }
}
