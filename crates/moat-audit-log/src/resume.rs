//! What the gateway checks before it continues a stored chain, so that tampering with the store
//! at rest never becomes the start of new evidence:
//!
//! - every retention checkpoint must be signed by the audit key (a row inserted by hand, behind
//!   which `DELETE FROM audit` would otherwise pass the delete trigger, is refused);
//! - with `[audit.witness]`, the store must still hold the last witnessed head: its seq with the
//!   witnessed hash (or have dropped it behind a checkpoint), else records were cut from its end
//!   or rewritten.
//!
//! A refusal stops the start with a `StoreError::Corrupt` naming what is wrong.

use moat_audit::{AuditKeys, Checkpoint};
use moat_config::WitnessConfig;
use moat_store::{AuditStore, StoreError};

/// Checks `store`'s checkpoints against `keys` and its tail against the witness.
pub(crate) async fn check(
    store: &dyn AuditStore,
    keys: &AuditKeys,
    witness: Option<&WitnessConfig>,
) -> Result<(), StoreError> {
    let public = keys.verifying_key();
    for row in store.audit_checkpoints().await? {
        let corrupt = |reason: String| StoreError::Corrupt {
            id: format!("audit checkpoint {}", row.seq),
            reason,
        };
        let checkpoint: Checkpoint = serde_json::from_str(&row.json).map_err(|e| {
            corrupt(format!(
                "not a signed checkpoint ({e}); refusing to continue the chain from it"
            ))
        })?;
        if checkpoint.seq != row.seq || checkpoint.hash != row.hash {
            return Err(corrupt(
                "its columns do not match its signed document; refusing to continue the chain"
                    .into(),
            ));
        }
        if !checkpoint.verify(&public) {
            return Err(corrupt(format!(
                "not signed by this store's audit key (public key {}): forged, unsigned or \
                 another key's; refusing to continue the chain from it (`moat audit verify`)",
                keys.public_hex()
            )));
        }
    }
    let Some(witness) = witness else {
        return Ok(());
    };
    // Only a file witness can be read back here; an HTTP witness is checked by its owner.
    let Some(file) = witness.file.clone() else {
        return Ok(());
    };
    let shown = file.display().to_string();
    let last = tokio::task::spawn_blocking(move || super::witness::last_head(&file))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(|e| StoreError::Corrupt {
            id: format!("audit witness {shown}"),
            reason: format!("its last head cannot be read: {e}"),
        })?;
    let Some(head) = last else {
        return Ok(());
    };
    let behind = |reason: String| StoreError::Corrupt {
        id: format!("audit log (witness {shown})"),
        reason,
    };
    if !head.verify(&public) {
        return Err(behind(format!(
            "the witness's last head (seq {}) is not signed by this store's audit key",
            head.seq
        )));
    }
    let tail = store.audit_tail().await?;
    let tail_seq = tail.as_ref().map_or(0, |t| t.seq);
    if tail_seq < head.seq {
        return Err(behind(format!(
            "the log ends at seq {tail_seq} but the witness saw seq {}: records were cut from its \
             end; refusing to continue the chain (`moat audit verify --witness`)",
            head.seq
        )));
    }
    let stored = store.audit_range(head.seq, head.seq, 1).await?;
    let hash = match stored.first() {
        Some(record) => Some(record.hash.clone()),
        // Dropped by retention: only a checkpoint at that very seq still says its hash.
        None => store
            .audit_checkpoints()
            .await?
            .into_iter()
            .find(|c| c.seq == head.seq)
            .map(|c| c.hash),
    };
    if hash.is_some_and(|h| h != head.hash) {
        return Err(behind(format!(
            "record {} does not carry the hash the witness saw: the log was rewritten; refusing \
             to continue the chain (`moat audit verify --witness`)",
            head.seq
        )));
    }
    Ok(())
}
