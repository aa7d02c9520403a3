//! Signed statements about the chain, both Ed25519 under the store's audit key, so anyone with
//! the public key can check them and nobody without the private key can make them:
//!
//! - [`Checkpoint`]: what remains of the records retention dropped, so the kept log still
//!   verifies. Only a checkpoint may stand in for dropped records.
//! - [`SignedHead`]: the chain's head at a moment, written to a witness outside the database so
//!   a later truncation or rewrite of the log shows. A head is signed under another domain than a
//!   checkpoint, so a witnessed head cannot be replayed as a checkpoint to drop records.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::keys::{verify_signature, AuditKeys};
use crate::record::AuditRecord;

/// Domain of checkpoint signatures.
const CHECKPOINT_DOMAIN: &str = "moat-audit-checkpoint/v2";
/// Domain of head signatures.
const HEAD_DOMAIN: &str = "moat-audit-head/v1";

/// The seq and hash of the last record dropped, signed. Every record up to `seq` is covered: the
/// record after it must carry `seq + 1` and `prev_hash == hash`.
///
/// The signature is Ed25519 over the line-separated string
/// `moat-audit-checkpoint/v2\n{seq}\n{hash}\n{ts_ms}`, as lower-case hex (128 digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Seq of the last record covered.
    pub seq: u64,
    /// Hash of that record, hex.
    pub hash: String,
    /// When the checkpoint was made, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Ed25519 signature of the canonical string, lower-case hex.
    pub signature: String,
}

impl Checkpoint {
    /// A checkpoint at `seq` / `hash`, signed with `keys`.
    pub fn new(seq: u64, hash: impl Into<String>, ts_ms: i64, keys: &AuditKeys) -> Checkpoint {
        let hash = hash.into();
        let signature = keys.sign(canonical(CHECKPOINT_DOMAIN, seq, &hash, ts_ms).as_bytes());
        Checkpoint {
            seq,
            hash,
            ts_ms,
            signature,
        }
    }

    /// A checkpoint covering `record` and everything before it.
    pub fn covering(record: &AuditRecord, ts_ms: i64, keys: &AuditKeys) -> Checkpoint {
        Checkpoint::new(record.seq, record.hash.clone(), ts_ms, keys)
    }

    /// Whether the signature is `key`'s over these fields.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        verify_signature(key, self.canonical().as_bytes(), &self.signature)
    }

    /// The string the signature covers.
    pub fn canonical(&self) -> String {
        canonical(CHECKPOINT_DOMAIN, self.seq, &self.hash, self.ts_ms)
    }
}

/// The chain's head (`seq`, `hash`) at `ts_ms`, signed: one line of a witness file.
///
/// The signature is Ed25519 over `moat-audit-head/v1\n{seq}\n{hash}\n{ts_ms}`, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    /// Seq of the last record written.
    pub seq: u64,
    /// Its hash, hex.
    pub hash: String,
    /// When the head was signed, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Ed25519 signature of the canonical string, lower-case hex.
    pub signature: String,
}

impl SignedHead {
    /// The head `seq` / `hash`, signed with `keys` at `ts_ms`.
    pub fn new(seq: u64, hash: impl Into<String>, ts_ms: i64, keys: &AuditKeys) -> SignedHead {
        let hash = hash.into();
        let signature = keys.sign(canonical(HEAD_DOMAIN, seq, &hash, ts_ms).as_bytes());
        SignedHead {
            seq,
            hash,
            ts_ms,
            signature,
        }
    }

    /// Whether the signature is `key`'s over these fields.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        verify_signature(
            key,
            canonical(HEAD_DOMAIN, self.seq, &self.hash, self.ts_ms).as_bytes(),
            &self.signature,
        )
    }
}

fn canonical(domain: &str, seq: u64, hash: &str, ts_ms: i64) -> String {
    format!("{domain}\n{seq}\n{hash}\n{ts_ms}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn keys(n: u8) -> AuditKeys {
        AuditKeys::from_seed([n; 32])
    }

    #[test]
    fn signs_and_verifies() {
        let k = keys(1);
        let cp = Checkpoint::new(41, "ab".repeat(32), 1_700_000_000_000, &k);
        assert_eq!(cp.signature.len(), 128);
        assert!(cp.verify(&k.verifying_key()));
        assert!(!cp.verify(&keys(2).verifying_key()));
        for tampered in [
            Checkpoint {
                seq: 42,
                ..cp.clone()
            },
            Checkpoint {
                hash: "cd".repeat(32),
                ..cp.clone()
            },
            Checkpoint {
                ts_ms: 1,
                ..cp.clone()
            },
            Checkpoint {
                signature: "zz".into(),
                ..cp.clone()
            },
            Checkpoint {
                signature: String::new(),
                ..cp.clone()
            },
        ] {
            assert!(!tampered.verify(&k.verifying_key()), "{tampered:?}");
        }
    }

    #[test]
    fn a_head_is_not_a_checkpoint() {
        let k = keys(1);
        let head = SignedHead::new(9, "ab".repeat(32), 5, &k);
        assert!(head.verify(&k.verifying_key()));
        let replayed = Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            ts_ms: head.ts_ms,
            signature: head.signature.clone(),
        };
        assert!(!replayed.verify(&k.verifying_key()));
        let cp = Checkpoint::new(9, "ab".repeat(32), 5, &k);
        assert_ne!(cp.signature, head.signature);
    }

    #[test]
    fn verifies_with_the_reference_implementation() {
        // The signature is plain Ed25519 over the canonical string, so any Ed25519 library
        // verifies it; here ed25519-dalek's own verifier, from the public key's bytes alone.
        let k = keys(4);
        let cp = Checkpoint::new(1, "ab", 0, &k);
        let public = VerifyingKey::from_bytes(k.verifying_key().as_bytes()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&crate::hex::decode(&cp.signature).unwrap())
            .unwrap();
        public
            .verify_strict(b"moat-audit-checkpoint/v2\n1\nab\n0", &sig)
            .unwrap();
    }

    #[test]
    fn json_round_trip() {
        let cp = Checkpoint::new(7, "00".repeat(32), 5, &keys(1));
        let text = serde_json::to_string(&cp).unwrap();
        assert!(text.starts_with(r#"{"seq":7,"hash":"#));
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), cp);
        let head = SignedHead::new(7, "00".repeat(32), 5, &keys(1));
        let text = serde_json::to_string(&head).unwrap();
        assert_eq!(serde_json::from_str::<SignedHead>(&text).unwrap(), head);
    }
}
