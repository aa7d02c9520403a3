//! The chain against every kind of tampering, retention checkpoints, and exports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_audit::{
    chain::compute_hash, verify, verify_fallible, verify_witnessed, Anchor, AuditKeys, AuditRecord,
    Body, Broken, BrokenReason, Chain, Checkpoint, Decision, Head, ReadInfo, Route, SeqRange,
    Usage, VerifyingKey,
};

fn keys() -> AuditKeys {
    AuditKeys::from_seed([9; 32])
}

fn record(i: u64) -> AuditRecord {
    let mut r = AuditRecord::request(1_773_279_920_000 + i as i64 * 1000, format!("req_{i}"), 200);
    r.key_id = Some("k1abcdefghij".into());
    r.account = Some("acct_1".into());
    r.source_ip = Some("10.0.0.7".into());
    r.api = Some("openai.chat".into());
    r.model = Some("gpt-4o-mini".into());
    r.route = Some(Route {
        provider: "openai".into(),
        response_model: "gpt-4o-mini-2024-07-18".into(),
        attempts: 1,
    });
    r.decisions = vec![Decision {
        stage: "policy".into(),
        outcome: "allow".into(),
        reason: None,
    }];
    r.usage = Some(Usage {
        input_tokens: 10 + i,
        output_tokens: 20,
    });
    r.cost_micros = 42;
    let body = format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"question {i}: caf\u00e9?"}}],"temperature":0.7}}"#
    );
    r.request_body = Body::full(body.as_bytes());
    r.response_body = Body::digest(b"{\"choices\":[]}");
    r
}

fn log(n: u64) -> Vec<AuditRecord> {
    let mut chain = Chain::start();
    (1..=n).map(|i| chain.seal(record(i))).collect()
}

fn anchored<'a>(checkpoint: &'a Checkpoint, key: &'a VerifyingKey) -> Option<Anchor<'a>> {
    Some(Anchor { checkpoint, key })
}

fn first_bad(records: Vec<AuditRecord>) -> Broken {
    verify(records, None)
        .first_bad
        .expect("tampering goes unnoticed")
}

fn bad(seq: u64, position: u64, reason: BrokenReason) -> Broken {
    Broken {
        seq: Some(seq),
        position,
        reason,
    }
}

#[test]
fn untouched_log_passes() {
    let records = log(10);
    let report = verify(records.clone(), None);
    assert!(report.is_ok(), "{:?}", report.first_bad);
    assert_eq!(report.checked, 10);
    assert_eq!(report.head.unwrap().hash, records[9].hash);
    assert!(verify(Vec::new(), None).is_ok());
}

#[test]
fn edit_without_rehash_is_named() {
    let mut records = log(10);
    records[3].status = 500;
    assert_eq!(first_bad(records), bad(4, 4, BrokenReason::Edited));

    let mut records = log(10);
    records[6].request_body = Body::full(br#"{"model":"gpt-4o-mini","messages":[]}"#);
    assert_eq!(first_bad(records), bad(7, 7, BrokenReason::Edited));
}

#[test]
fn edit_with_rehash_breaks_the_next_link() {
    let mut records = log(10);
    records[3].cost_micros = 0;
    records[3].hash = compute_hash(&records[3]);
    assert_eq!(first_bad(records), bad(5, 5, BrokenReason::PrevMismatch));
}

#[test]
fn deletion_is_named() {
    let mut records = log(10);
    records.remove(3);
    assert_eq!(
        first_bad(records),
        bad(5, 4, BrokenReason::Deleted { expected: 4 })
    );

    let mut records = log(10);
    records.remove(0);
    assert_eq!(
        first_bad(records),
        bad(2, 1, BrokenReason::Deleted { expected: 1 })
    );
}

#[test]
fn truncation_shows_only_in_the_head() {
    let full = log(10);
    let mut records = full.clone();
    records.pop();
    let report = verify(records, None);
    assert!(report.is_ok());
    assert_ne!(report.head.unwrap().hash, full[9].hash);
}

#[test]
fn forged_insertions_are_named() {
    // Forged with a made-up hash.
    let mut records = log(10);
    let mut forged = record(99);
    forged.seq = 5;
    forged.prev_hash = records[3].hash.clone();
    forged.hash = "ab".repeat(32);
    records.insert(4, forged);
    assert_eq!(first_bad(records), bad(5, 5, BrokenReason::Edited));

    // Forged and correctly chained after record 4: the genuine record 5 then repeats its seq.
    let mut records = log(10);
    let mut chain = Chain::resume(4, records[3].hash.clone());
    records.insert(4, chain.seal(record(99)));
    assert_eq!(first_bad(records), bad(5, 6, BrokenReason::Inserted));
}

#[test]
fn reordering_is_named() {
    let mut records = log(10);
    records.swap(3, 4);
    assert_eq!(
        first_bad(records),
        bad(5, 4, BrokenReason::Reordered { expected: 4 })
    );

    let mut records = log(10);
    records.swap(2, 6);
    assert_eq!(
        first_bad(records),
        bad(7, 3, BrokenReason::Reordered { expected: 3 })
    );

    // Moved earlier: the skipped seqs follow it.
    let mut records = log(10);
    let moved = records.remove(7);
    records.insert(2, moved);
    assert_eq!(
        first_bad(records),
        bad(8, 3, BrokenReason::Reordered { expected: 3 })
    );

    // Moved later by more than one place: where it went missing, it reads as deleted, since
    // verification looks only one record ahead.
    let mut records = log(10);
    let moved = records.remove(1);
    records.insert(5, moved);
    assert_eq!(
        first_bad(records),
        bad(3, 2, BrokenReason::Deleted { expected: 2 })
    );
}

#[test]
fn retention_keeps_verification_with_a_signed_checkpoint() {
    let mut records = log(10);
    let checkpoint = Checkpoint::covering(&records[4], 1_773_300_000_000, &keys());
    records.drain(..5);
    let public = keys().verifying_key();
    let wrong = AuditKeys::from_seed([1; 32]).verifying_key();
    let anchor = |key| anchored(&checkpoint, key);
    let (public, wrong) = (&public, &wrong);

    let report = verify(records.clone(), anchor(public));
    assert!(report.is_ok(), "{:?}", report.first_bad);
    assert_eq!(report.checked, 5);

    assert_eq!(
        verify(records.clone(), anchor(wrong)).first_bad,
        Some(Broken {
            seq: Some(5),
            position: 0,
            reason: BrokenReason::BadCheckpointSignature
        })
    );
    // Without the checkpoint, the dropped head reads as a deletion.
    assert_eq!(
        first_bad(records.clone()),
        bad(6, 1, BrokenReason::Deleted { expected: 1 })
    );
    // The first kept record deleted too.
    let mut cut = records.clone();
    cut.remove(0);
    assert_eq!(
        verify(cut, anchor(public)).first_bad,
        Some(bad(7, 1, BrokenReason::AnchorMismatch { expected: 6 }))
    );

    // Writing continues from the checkpoint after an empty log.
    let mut chain = Chain::after(&checkpoint);
    let fresh: Vec<_> = (6..=7).map(|i| chain.seal(record(i))).collect();
    assert!(verify(fresh, anchor(public)).is_ok());
}

#[test]
fn read_records_chain_like_requests() {
    let mut chain = Chain::start();
    let r = chain.seal(record(1));
    let read = chain.seal(AuditRecord::read(
        1_773_279_999_000,
        "req_admin",
        ReadInfo {
            reader: "admin_k".into(),
            role: "auditor".into(),
            query: "/admin/v1/audit?account=acct_1".into(),
            records: SeqRange::runs([1]),
        },
    ));
    let text = serde_json::to_string(&read).unwrap();
    assert!(text.contains(r#""kind":"read""#), "{text}");
    assert!(verify([r, read], None).is_ok());
}

#[test]
fn exports_verify_and_replay() {
    let records = log(5);
    let lines: Vec<String> = records.iter().map(AuditRecord::to_export_line).collect();
    assert!(lines.iter().all(|l| !l.contains('\n')));

    // An export reads back as the log and verifies.
    let back = lines.iter().map(|l| serde_json::from_str::<AuditRecord>(l));
    let report = verify_fallible(back, None);
    assert!(report.is_ok(), "{:?}", report.first_bad);
    assert_eq!(report.checked, 5);

    // The trace keys are there, in the detector's shapes, and the detector reads the line.
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["ts"], "2026-03-12T01:45:21.000Z");
    assert_eq!(v["ip"], "10.0.0.7");
    assert_eq!(v["request"]["temperature"], 0.7);
    assert_eq!(v["request_body"]["full"], v["request"]);
    assert_eq!(v["response"]["input_tokens"], 11);
    let extractor = moat_detect::Extractor::new();
    let replayed = moat_detect::trace::Record::parse(&lines[0], &extractor).unwrap();
    assert_eq!(replayed.account, "acct_1");
    assert_eq!(replayed.input_tokens, 11);
    assert_eq!(replayed.ts_ms, records[0].ts_ms);

    // A damaged line is named.
    let mut damaged = lines.clone();
    damaged[2] = String::from("{not json");
    let report = verify_fallible(
        damaged
            .iter()
            .map(|l| serde_json::from_str::<AuditRecord>(l)),
        None,
    );
    let broken = report.first_bad.unwrap();
    assert_eq!((broken.seq, broken.position), (None, 3));
    assert!(matches!(broken.reason, BrokenReason::Unreadable(_)));
    assert!(
        broken.to_string().starts_with("line 3: not a record"),
        "{broken}"
    );
}

#[test]
fn an_export_without_the_body_is_not_replayable_but_verifies() {
    let mut chain = Chain::start();
    let mut r = record(1);
    r.request_body = Body::digest(b"{}");
    let line = chain.seal(r).to_export_line();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(v.get("request").is_none());
    assert!(moat_detect::trace::Record::parse(&line, &moat_detect::Extractor::new()).is_err());
    let back: AuditRecord = serde_json::from_str(&line).unwrap();
    assert!(verify([back], None).is_ok());
}

#[test]
fn messages_name_the_record() {
    let mut records = log(3);
    records[1].status = 418;
    assert_eq!(
        first_bad(records).to_string(),
        "record 2 (line 2): edited: its hash does not match its content"
    );
}

#[test]
fn a_checkpoint_forged_by_hand_is_refused() {
    // What a hand-inserted row holds: the right seq and hash, a signature made up (or none).
    let records = log(10);
    for signature in [String::new(), "00".repeat(64), "ab".repeat(32)] {
        let forged = Checkpoint {
            seq: 10,
            hash: records[9].hash.clone(),
            ts_ms: 1,
            signature,
        };
        let anchor = Anchor {
            checkpoint: &forged,
            key: &keys().verifying_key(),
        };
        assert_eq!(
            verify(Vec::new(), Some(anchor)).first_bad,
            Some(Broken {
                seq: Some(10),
                position: 0,
                reason: BrokenReason::BadCheckpointSignature
            })
        );
    }
}

#[test]
fn a_witness_catches_truncation_and_a_consistent_rewrite() {
    let records = log(10);
    let head = |i: usize| Head {
        seq: records[i].seq,
        hash: records[i].hash.clone(),
    };
    let ok = |r: Vec<AuditRecord>, heads: &[Head]| {
        verify_witnessed(r.into_iter().map(Ok::<_, String>), None, heads)
    };
    let report = ok(records.clone(), &[head(3), head(9)]);
    assert!(report.is_ok(), "{:?}", report.first_bad);
    assert_eq!(report.witnessed, 2);
    // A head written twice (a retried write) is still one head.
    let report = ok(records.clone(), &[head(9), head(3), head(3)]);
    assert!(report.is_ok(), "{:?}", report.first_bad);

    // Tail truncation: the chain of what is left is fine; only the witness knows better.
    let cut = records[..7].to_vec();
    assert!(verify(cut.clone(), None).is_ok());
    assert_eq!(
        ok(cut, &[head(3), head(9)]).first_bad,
        Some(bad(10, 8, BrokenReason::Truncated { last: 7 }))
    );
    // Everything deleted.
    assert_eq!(
        ok(Vec::new(), &[head(9)]).first_bad,
        Some(bad(10, 1, BrokenReason::Truncated { last: 0 }))
    );

    // A consistent rewrite: record 5 edited and every hash from it recomputed.
    let mut chain = Chain::start();
    let rewritten: Vec<AuditRecord> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r.seq == 5 {
                r.status = 403;
            }
            chain.seal(r)
        })
        .collect();
    assert!(verify(rewritten.clone(), None).is_ok());
    assert_eq!(
        ok(rewritten.clone(), &[head(9)]).first_bad,
        Some(bad(10, 10, BrokenReason::WitnessMismatch))
    );
    assert_eq!(
        ok(rewritten, &[head(3), head(6)]).first_bad,
        Some(bad(7, 7, BrokenReason::WitnessMismatch))
    );

    // A head dropped by retention is covered by the checkpoint; one at its seq is compared.
    let checkpoint = Checkpoint::covering(&records[4], 0, &keys());
    let public = keys().verifying_key();
    let anchor = Anchor {
        checkpoint: &checkpoint,
        key: &public,
    };
    let kept = records[5..].iter().cloned().map(Ok::<_, String>);
    let report = verify_witnessed(kept.clone(), Some(anchor), &[head(2), head(4), head(9)]);
    assert!(report.is_ok(), "{:?}", report.first_bad);
    assert_eq!(report.witnessed, 2);
    let other = Head {
        seq: 5,
        hash: "00".repeat(32),
    };
    assert_eq!(
        verify_witnessed(kept, Some(anchor), &[other]).first_bad,
        Some(Broken {
            seq: Some(5),
            position: 0,
            reason: BrokenReason::WitnessMismatch
        })
    );
}
