//! Verification of a log, streaming: finds the first record that was edited, deleted, inserted or
//! moved, in constant memory (the previous record's seq and hash, and one record of lookahead).

use std::convert::Infallible;
use std::fmt;

use crate::chain::{hash_matches, GENESIS};
use crate::checkpoint::Checkpoint;
use crate::record::AuditRecord;
use ed25519_dalek::VerifyingKey;

/// Where the log is expected to start when it does not start at seq 1.
#[derive(Debug, Clone, Copy)]
pub struct Anchor<'a> {
    /// The checkpoint the first record must continue.
    pub checkpoint: &'a Checkpoint,
    /// The audit public key: a checkpoint it did not sign is refused, so a row inserted by hand
    /// cannot stand in for deleted records.
    pub key: &'a VerifyingKey,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records that passed.
    pub checked: u64,
    /// The last record that passed: compare it with a head kept elsewhere (the latest
    /// checkpoint, a monitoring copy) to catch records cut from the end, which no chain can see.
    pub head: Option<Head>,
    /// The first problem; verification stops there.
    pub first_bad: Option<Broken>,
    /// Witnessed heads found in the log with their witnessed hash (see [`verify_witnessed`]).
    pub witnessed: u64,
}

/// A position in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Seq of the offending record, when there is one and it could be read.
    pub seq: Option<u64>,
    /// 1-based position of the offending record in the input; 0 for the checkpoint itself.
    pub position: u64,
    /// What is wrong.
    pub reason: BrokenReason,
}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenReason {
    /// Its hash does not match its content: it was changed after sealing.
    Edited,
    /// Its seq skips records from `expected` on that do not show up next: they were deleted (or
    /// moved more than one place later; verification looks only one record ahead).
    Deleted {
        /// The seq that should have come here.
        expected: u64,
    },
    /// Its seq repeats the previous record's: one of the two was inserted.
    Inserted,
    /// Its seq is out of order: records were moved.
    Reordered {
        /// The seq that should have come here.
        expected: u64,
    },
    /// Its `prev_hash` is not the previous record's hash: a record before it was replaced (and
    /// re-hashed) or the link itself was changed.
    PrevMismatch,
    /// The first record does not continue the checkpoint (seq or hash).
    AnchorMismatch {
        /// `checkpoint.seq + 1`.
        expected: u64,
    },
    /// The checkpoint's signature is not the key's (unsigned, forged, or signed by another key).
    BadCheckpointSignature,
    /// The record at a witnessed seq has another hash than the witness saw: the log was
    /// rewritten (every hash recomputed) since.
    WitnessMismatch,
    /// The log ends before a witnessed seq: records were cut from its end.
    Truncated {
        /// The last seq the log keeps (0 for none).
        last: u64,
    },
    /// The input at this position is not a record.
    Unreadable(String),
}

/// Verifies `records`, in log order, from seq 1 or from `anchor`.
pub fn verify(
    records: impl IntoIterator<Item = AuditRecord>,
    anchor: Option<Anchor<'_>>,
) -> Report {
    verify_fallible(records.into_iter().map(Ok::<_, Infallible>), anchor)
}

/// [`verify`] over records read from somewhere that can fail (a JSON Lines export, a store
/// cursor): the first error is reported as [`BrokenReason::Unreadable`] at its position.
pub fn verify_fallible<E: fmt::Display>(
    records: impl IntoIterator<Item = Result<AuditRecord, E>>,
    anchor: Option<Anchor<'_>>,
) -> Report {
    verify_witnessed(records, anchor, &[])
}

/// [`verify_fallible`], and the log must hold every head in `witnessed` (from a witness
/// outside the store, each signature already checked): the record at each witnessed seq must
/// carry the witnessed hash ([`BrokenReason::WitnessMismatch`]), and the log must reach the
/// highest one ([`BrokenReason::Truncated`]). A head below the anchor was dropped by retention:
/// only one at the anchor's own seq can be compared (with the checkpoint's hash).
pub fn verify_witnessed<E: fmt::Display>(
    records: impl IntoIterator<Item = Result<AuditRecord, E>>,
    anchor: Option<Anchor<'_>>,
    witnessed: &[Head],
) -> Report {
    let mut heads: Vec<&Head> = witnessed.iter().collect();
    heads.sort_by_key(|h| h.seq);
    let mut heads = heads.into_iter().peekable();
    let mut report = Report {
        checked: 0,
        head: None,
        first_bad: None,
        witnessed: 0,
    };
    if let Some(Anchor { checkpoint, key }) = anchor {
        if !checkpoint.verify(key) {
            report.first_bad = Some(Broken {
                seq: Some(checkpoint.seq),
                position: 0,
                reason: BrokenReason::BadCheckpointSignature,
            });
            return report;
        }
    }
    let (mut expected, mut last_hash) = match anchor {
        Some(a) => (
            a.checkpoint.seq.saturating_add(1),
            a.checkpoint.hash.clone(),
        ),
        None => (1, GENESIS.to_string()),
    };
    if let Some(a) = anchor {
        while let Some(head) = heads.next_if(|h| h.seq <= a.checkpoint.seq) {
            if head.seq < a.checkpoint.seq {
                continue;
            }
            if head.hash != a.checkpoint.hash {
                report.first_bad = Some(Broken {
                    seq: Some(head.seq),
                    position: 0,
                    reason: BrokenReason::WitnessMismatch,
                });
                return report;
            }
            report.witnessed += 1;
        }
    }
    let mut records = records.into_iter().peekable();
    let mut position = 0u64;
    while let Some(item) = records.next() {
        position += 1;
        let mut record = match item {
            Ok(record) => record,
            Err(e) => {
                report.first_bad = Some(Broken {
                    seq: None,
                    position,
                    reason: BrokenReason::Unreadable(e.to_string()),
                });
                return report;
            }
        };
        let next_seq = records.peek().and_then(|r| r.as_ref().ok()).map(|r| r.seq);
        let first_after_anchor = position == 1 && anchor.is_some();
        // Every head at this seq (a witness may repeat one, and --expect-head may name it too).
        let (mut seen, mut differs) = (0u64, false);
        while let Some(h) = heads.next_if(|h| h.seq <= record.seq) {
            seen += 1;
            differs |= h.seq != record.seq || h.hash != record.hash;
        }
        let problem = if !hash_matches(&mut record) {
            Some(BrokenReason::Edited)
        } else if first_after_anchor && (record.seq != expected || record.prev_hash != last_hash) {
            Some(BrokenReason::AnchorMismatch { expected })
        } else if let Some(reason) = seq_problem(record.seq, expected, next_seq) {
            Some(reason)
        } else if record.prev_hash != last_hash {
            Some(BrokenReason::PrevMismatch)
        } else if differs {
            Some(BrokenReason::WitnessMismatch)
        } else {
            None
        };
        if let Some(reason) = problem {
            report.first_bad = Some(Broken {
                seq: Some(record.seq),
                position,
                reason,
            });
            return report;
        }
        report.checked += 1;
        report.witnessed += seen;
        expected = record.seq.saturating_add(1);
        last_hash = record.hash;
        report.head = Some(Head {
            seq: record.seq,
            hash: last_hash.clone(),
        });
    }
    if let Some(missing) = heads.next() {
        let last = report
            .head
            .as_ref()
            .map(|h| h.seq)
            .or(anchor.map(|a| a.checkpoint.seq))
            .unwrap_or(0);
        report.first_bad = Some(Broken {
            seq: Some(missing.seq),
            position: position + 1,
            reason: BrokenReason::Truncated { last },
        });
    }
    report
}

/// Judges a seq against the expected one, looking one record ahead to tell a move from a deletion.
fn seq_problem(seq: u64, expected: u64, next_seq: Option<u64>) -> Option<BrokenReason> {
    if seq == expected {
        None
    } else if seq > expected {
        // The skipped seqs turning up next means records were moved, not removed.
        if next_seq.is_some_and(|next| (expected..seq).contains(&next)) {
            Some(BrokenReason::Reordered { expected })
        } else {
            Some(BrokenReason::Deleted { expected })
        }
    } else if seq.checked_add(1) == Some(expected) && expected > 1 {
        Some(BrokenReason::Inserted)
    } else {
        Some(BrokenReason::Reordered { expected })
    }
}

impl Report {
    /// Whether every record passed.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.seq, self.position) {
            (_, 0) => write!(f, "checkpoint: {}", self.reason),
            (Some(seq), position) => write!(f, "record {seq} (line {position}): {}", self.reason),
            (None, position) => write!(f, "line {position}: {}", self.reason),
        }
    }
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenReason::Edited => f.write_str("edited: its hash does not match its content"),
            BrokenReason::Deleted { expected } => {
                write!(f, "deleted: records from seq {expected} are missing")
            }
            BrokenReason::Inserted => f.write_str("inserted: seq repeats the previous record's"),
            BrokenReason::Reordered { expected } => {
                write!(f, "reordered: seq out of order, expected {expected}")
            }
            BrokenReason::PrevMismatch => f.write_str(
                "prev_hash is not the previous record's hash: an earlier record was replaced",
            ),
            BrokenReason::AnchorMismatch { expected } => write!(
                f,
                "does not continue the checkpoint: expected seq {expected} linked to its hash"
            ),
            BrokenReason::BadCheckpointSignature => f.write_str(
                "bad signature: not signed by the audit key (unsigned, forged, or another key's)",
            ),
            BrokenReason::WitnessMismatch => f.write_str(
                "its hash is not the one witnessed: the log was rewritten since the witness saw it",
            ),
            BrokenReason::Truncated { last } => write!(
                f,
                "witnessed but missing: the log ends at seq {last}, records were cut from its end"
            ),
            BrokenReason::Unreadable(e) => write!(f, "not a record: {e}"),
        }
    }
}
