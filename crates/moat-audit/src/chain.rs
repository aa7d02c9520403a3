//! The hash chain: how a record's hash is computed, and the writer's state that seals records.
//!
//! `hash = SHA-256(prev_hash || canonical)`, lower-case hex, where `prev_hash` is the previous
//! record's hash as its 64 ASCII hex digits (so `printf '%s%s' "$prev" "$canonical" | sha256sum`
//! reproduces it) and `canonical` is `serde_json::to_vec` of the record with `hash` set to `""`.
//! `serde_json` writes a struct's fields in declaration order with no whitespace, numbers and
//! strings in one spelling, so the same record always gives the same bytes; bodies are raw JSON
//! text kept byte for byte ([`crate::Body`]), so they do too. A store must therefore keep the
//! record's JSON text as written (a text column, not a re-normalising type such as PostgreSQL's
//! `jsonb`), or at least each body's text.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::record::AuditRecord;

/// `prev_hash` of the first record of a log: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The writer's end of the chain: the next seq and the hash to link to. One writer seals at a
/// time: replicas sharing a log must seal under the store's lock, resuming from its last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    next_seq: u64,
    last_hash: String,
}

impl Chain {
    /// A new, empty log.
    pub fn start() -> Chain {
        Chain::resume(0, GENESIS.to_string())
    }

    /// A log whose last record (or retention checkpoint) has `last_seq` and `last_hash`.
    pub fn resume(last_seq: u64, last_hash: String) -> Chain {
        Chain {
            next_seq: last_seq.saturating_add(1),
            last_hash,
        }
    }

    /// A log whose records up to the checkpoint's were dropped and none written since.
    pub fn after(checkpoint: &Checkpoint) -> Chain {
        Chain::resume(checkpoint.seq, checkpoint.hash.clone())
    }

    /// The seq the next sealed record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash the next sealed record links to.
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }

    /// Assigns `seq`, `prev_hash` and `hash`, and advances the chain.
    pub fn seal(&mut self, mut record: AuditRecord) -> AuditRecord {
        record.seq = self.next_seq;
        record.prev_hash = self.last_hash.clone();
        record.hash = String::new();
        record.hash = hash_unsealed(&record);
        self.next_seq = self.next_seq.saturating_add(1);
        self.last_hash.clone_from(&record.hash);
        record
    }
}

/// The hash `record` should carry, from its content and `prev_hash` (its `hash` field ignored).
pub fn compute_hash(record: &AuditRecord) -> String {
    if record.hash.is_empty() {
        return hash_unsealed(record);
    }
    let mut unsealed = record.clone();
    unsealed.hash = String::new();
    hash_unsealed(&unsealed)
}

/// The canonical bytes of `record`: its JSON with `hash` set to `""`.
pub fn canonical_bytes(record: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(record, &mut out);
    out
}

/// Whether `record`'s hash matches its content, without copying it.
pub(crate) fn hash_matches(record: &mut AuditRecord) -> bool {
    let claimed = std::mem::take(&mut record.hash);
    let ok = hash_unsealed(record) == claimed;
    record.hash = claimed;
    ok
}

/// Hashes a record whose `hash` field is already empty, streaming its JSON into the digest.
fn hash_unsealed(record: &AuditRecord) -> String {
    let mut digest = Sha256::new();
    digest.update(record.prev_hash.as_bytes());
    write_canonical(record, &mut digest);
    crate::hex::encode(&digest.finalize())
}

fn write_canonical(record: &AuditRecord, out: &mut impl Write) {
    if record.hash.is_empty() {
        // Serializing these types cannot fail (string keys, no maps with other keys), and
        // neither can writing to a Vec or a digest.
        let _ = serde_json::to_writer(out, record);
    } else {
        let mut unsealed = record.clone();
        unsealed.hash = String::new();
        let _ = serde_json::to_writer(out, &unsealed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::body::Body;

    fn rec(i: i64) -> AuditRecord {
        let mut r = AuditRecord::request(1_700_000_000_000 + i, format!("req_{i}"), 200);
        r.request_body = Body::full(br#"{"model":"m","messages":[{"role":"user","content":"caf\u00e9 1.0e2"}],"temperature":0.30000000000000004}"#);
        r
    }

    #[test]
    fn seals_in_order() {
        let mut chain = Chain::start();
        let a = chain.seal(rec(1));
        let b = chain.seal(rec(2));
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(chain.last_hash(), b.hash);
        assert_eq!(chain.next_seq(), 3);
        assert_eq!(compute_hash(&a), a.hash);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn hash_is_reproducible_by_hand_and_after_a_round_trip() {
        let r = Chain::start().seal(rec(1));
        let mut by_hand = Sha256::new();
        by_hand.update(GENESIS.as_bytes());
        by_hand.update(canonical_bytes(&r));
        assert_eq!(crate::hex::encode(&by_hand.finalize()), r.hash);
        assert!(String::from_utf8(canonical_bytes(&r))
            .unwrap()
            .ends_with(r#""hash":""}"#));

        let stored = serde_json::to_string(&r).unwrap();
        let mut back: AuditRecord = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, r);
        assert!(hash_matches(&mut back));
        assert_eq!(serde_json::to_string(&back).unwrap(), stored);
    }

    #[test]
    fn resumes() {
        let mut a = Chain::start();
        a.seal(rec(1));
        let mut b = Chain::resume(1, a.last_hash().to_string());
        assert_eq!(a.seal(rec(2)), b.seal(rec(2)));
    }
}
