//! Signed checkpoints: what remains of the records retention dropped, so the kept log still
//! verifies, and what a third party can hold to anchor it.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::record::AuditRecord;

type HmacSha256 = Hmac<Sha256>;

/// The seq and hash of the last record dropped (or of any record, to anchor a log at that point),
/// signed with HMAC-SHA256 under a key from the config. Every record up to `seq` is covered: the
/// record after it must carry `seq + 1` and `prev_hash == hash`.
///
/// The signature is over the line-separated string
/// `moat-audit-checkpoint/v1\n{seq}\n{hash}\n{ts_ms}`, as lower-case hex. HMAC is symmetric: the
/// signature proves the checkpoint came from a holder of the key; a third party without the key
/// anchors on `seq` and `hash` as received (JSON, [`Checkpoint`] serializes as its fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Seq of the last record covered.
    pub seq: u64,
    /// Hash of that record, hex.
    pub hash: String,
    /// When the checkpoint was made, ms since the Unix epoch.
    pub ts_ms: i64,
    /// HMAC-SHA256 of the canonical string, lower-case hex.
    pub signature: String,
}

impl Checkpoint {
    /// A checkpoint at `seq` / `hash`, signed with `key`.
    pub fn new(seq: u64, hash: impl Into<String>, ts_ms: i64, key: &[u8]) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            seq,
            hash: hash.into(),
            ts_ms,
            signature: String::new(),
        };
        checkpoint.sign(key);
        checkpoint
    }

    /// A checkpoint covering `record` and everything before it.
    pub fn covering(record: &AuditRecord, ts_ms: i64, key: &[u8]) -> Checkpoint {
        Checkpoint::new(record.seq, record.hash.clone(), ts_ms, key)
    }

    /// Signs (or re-signs) the checkpoint with `key`.
    pub fn sign(&mut self, key: &[u8]) {
        self.signature = crate::hex::encode(&self.mac(key).finalize().into_bytes());
    }

    /// Whether the signature is `key`'s over these fields, compared in constant time.
    pub fn verify(&self, key: &[u8]) -> bool {
        crate::hex::decode(&self.signature)
            .is_some_and(|signature| self.mac(key).verify_slice(&signature).is_ok())
    }

    /// The string the signature covers.
    pub fn canonical(&self) -> String {
        format!(
            "moat-audit-checkpoint/v1\n{}\n{}\n{}",
            self.seq, self.hash, self.ts_ms
        )
    }

    fn mac(&self, key: &[u8]) -> HmacSha256 {
        #[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(self.canonical().as_bytes());
        mac
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let cp = Checkpoint::new(41, "ab".repeat(32), 1_700_000_000_000, b"key");
        assert!(cp.verify(b"key"));
        assert!(!cp.verify(b"other key"));
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
            assert!(!tampered.verify(b"key"), "{tampered:?}");
        }
    }

    #[test]
    fn matches_openssl() {
        // HMAC-SHA256("key", "moat-audit-checkpoint/v1\n1\nab\n0"), computed independently with
        // `printf 'moat-audit-checkpoint/v1\n1\nab\n0' | openssl dgst -sha256 -hmac key`.
        let cp = Checkpoint::new(1, "ab", 0, b"key");
        assert_eq!(cp.signature, REFERENCE);
    }

    const REFERENCE: &str = "4fe8376ad6b3cb471d05849eb71c9bc03e5a0b9e4f41f26cc72bc02c5014e9a2";

    #[test]
    fn json_round_trip() {
        let cp = Checkpoint::new(7, "00".repeat(32), 5, b"k");
        let text = serde_json::to_string(&cp).unwrap();
        assert!(text.starts_with(r#"{"seq":7,"hash":"#));
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), cp);
    }
}
