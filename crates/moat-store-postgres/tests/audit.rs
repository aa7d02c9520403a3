//! What the shared audit suite does not cover: concurrent writers, the schema's append-only
//! triggers and corrupt rows; and the byte-budgeted page this backend implements itself, through
//! the shared page checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestSchema;
use moat_store::conformance::{audit_chain, audit_pages, audit_pages_without_bodies, GENESIS};
use moat_store::{AuditQuery, AuditStore, ChainBreak, StoreError, StoredAudit};
use moat_store_postgres::PostgresStore;
use std::sync::Arc;
use tokio::sync::Barrier;

/// A store whose pool has room for `writers` connections at once.
async fn store_for(t: &TestSchema, writers: usize) -> PostgresStore {
    let mut options = t.options();
    options.max_connections = writers;
    PostgresStore::open(&common::url(), &options).await.unwrap()
}

/// `n` records from `from`, linked to `prev`, whose hashes are writer `w`'s own: two writers'
/// batches for the same seqs differ, as two forks would.
fn fork(w: u64, from: u64, n: u64, prev: &str) -> Vec<StoredAudit> {
    let mut rows = audit_chain(from, n, prev);
    let mut prev = prev.to_string();
    for r in &mut rows {
        r.prev_hash = prev;
        r.hash = format!("{w:016x}{:048x}", r.seq);
        prev = r.hash.clone();
    }
    rows
}

/// Every record links to the one before it, and seqs run 1, 2, 3, ... without a gap.
fn assert_one_chain(rows: &[StoredAudit]) {
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        if i > 0 {
            assert_eq!(r.prev_hash, rows[i - 1].hash, "record {} forks", r.seq);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_of_the_same_seqs_cannot_fork_the_chain() {
    const WRITERS: u64 = 8;
    let t = TestSchema::new().await;
    let store = store_for(&t, WRITERS as usize).await;
    let prefix = audit_chain(1, 10, GENESIS);
    store.append_audit(&prefix).await.unwrap();
    let tip = prefix[9].hash.clone();
    let barrier = Arc::new(Barrier::new(WRITERS as usize));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, barrier, batch) = (store.clone(), barrier.clone(), fork(w, 11, 10, &tip));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (w, store.append_audit(&batch).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (w, Ok(())) => winners.push(w),
            // Refused by the chain check, not by a unique-key violation: the loser saw the
            // winner's records before it wrote.
            (
                _,
                Err(StoreError::AuditChain(ChainBreak::Gap {
                    expected: 21,
                    found: 11,
                })),
            ) => {}
            (w, Err(e)) => panic!("writer {w}: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins: {winners:?}");
    let stored = store.audit_range(0, u64::MAX, 1000).await.unwrap();
    let mut expected = prefix;
    expected.extend(fork(winners[0], 11, 10, &tip));
    assert_eq!(stored, expected);
    assert_one_chain(&stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_reread_the_tail_serialise_into_one_chain() {
    const WRITERS: u64 = 4;
    const EACH: u64 = 25;
    let t = TestSchema::new().await;
    let store = store_for(&t, WRITERS as usize).await;
    let barrier = Arc::new(Barrier::new(WRITERS as usize));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let (mut written, mut refused) = (0, 0);
            while written < EACH {
                let (seq, prev) = match store.audit_tail().await.unwrap() {
                    Some(tail) => (tail.seq + 1, tail.hash),
                    None => (1, GENESIS.to_string()),
                };
                match store.append_audit(&fork(w, seq, 1, &prev)).await {
                    Ok(()) => written += 1,
                    Err(StoreError::AuditChain(_)) => refused += 1,
                    Err(e) => panic!("writer {w}: {e:?}"),
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += task.await.unwrap();
    }
    let stored = store.audit_range(0, u64::MAX, 1000).await.unwrap();
    assert_eq!(stored.len() as u64, WRITERS * EACH, "{refused} refusals");
    assert_one_chain(&stored);
}

#[tokio::test]
async fn a_page_stops_at_its_byte_budget_and_the_cursor_continues() {
    let t = TestSchema::new().await;
    audit_pages(&t.open().await).await;
}

#[tokio::test]
async fn without_bodies_the_records_carry_none() {
    let t = TestSchema::new().await;
    audit_pages_without_bodies(&t.open().await).await;
}

#[tokio::test]
async fn the_schema_refuses_edits_and_uncovered_deletes() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    store
        .append_audit(&audit_chain(1, 3, GENESIS))
        .await
        .unwrap();
    let admin = common::admin().await;
    // Names qualified, from a session whose search_path is not the store's: the triggers (and
    // the table the delete trigger reads) do not depend on the caller's search_path.
    for statement in [
        "UPDATE {s}.audit SET status = 200 WHERE seq = 2",
        "DELETE FROM {s}.audit WHERE seq = 1",
        "INSERT INTO {s}.audit_checkpoints VALUES (1, 'h', 0, '');
         UPDATE {s}.audit_checkpoints SET hash = 'x'",
        "INSERT INTO {s}.audit_checkpoints VALUES (1, 'h', 0, '');
         DELETE FROM {s}.audit_checkpoints",
    ] {
        let statement = statement.replace("{s}", &format!("\"{}\"", t.name()));
        let sql = format!("BEGIN; SET LOCAL search_path = public; {statement}; COMMIT");
        let err = format!("{:?}", admin.batch_execute(&sql).await.unwrap_err());
        assert!(
            err.contains("append-only") || err.contains("dropped only behind a checkpoint"),
            "{statement}: {err}"
        );
        admin.batch_execute("ROLLBACK").await.unwrap();
    }
    // Behind a checkpoint, a delete is allowed.
    let allowed = format!(
        "BEGIN; SET LOCAL search_path = public;
         INSERT INTO \"{s}\".audit_checkpoints VALUES (1, 'h', 0, '');
         DELETE FROM \"{s}\".audit WHERE seq = 1; ROLLBACK",
        s = t.name()
    );
    admin.batch_execute(&allowed).await.unwrap();
    assert_eq!(store.audit_range(1, 3, 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_corrupt_audit_row_is_an_error_not_a_panic() {
    for (column, value) in [
        ("status", "70000"),
        ("json", "'\\xff'::bytea"),
        ("seq", "-1"),
    ] {
        let t = TestSchema::new().await;
        let store = t.open().await;
        // Written behind the no-update trigger, as a hand edit would be.
        common::admin()
            .await
            .batch_execute(&format!(
                "SET search_path = \"{s}\";
                 ALTER TABLE audit DISABLE TRIGGER audit_no_update;
                 INSERT INTO audit VALUES (1, 0, 'request', 'r', NULL, NULL, NULL, 200,
                     '{{}}', 'p', 'h', '{{}}');
                 UPDATE audit SET {column} = {value};",
                s = t.name()
            ))
            .await
            .unwrap();
        let err = store.audit_range(0, u64::MAX, 1).await;
        let err = match err {
            // A negative seq is below every range: read it through a query instead.
            Ok(rows) if rows.is_empty() => store.query_audit(&AuditQuery::new(1)).await,
            other => other,
        }
        .unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { .. }),
            "{column}: {err}"
        );
    }
}

#[tokio::test]
async fn a_version_5_schema_is_migrated_and_gains_the_audit_log() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    moat_store::KeyStore::insert_key(&store, &moat_store::conformance::sample_key("old", 7))
        .await
        .unwrap();
    // Take the schema back to before migration 6, as a store written by the previous release.
    common::admin()
        .await
        .batch_execute(&format!(
            "SET search_path = \"{s}\";
             DROP TABLE audit, audit_checkpoints;
             DROP FUNCTION audit_refuse, audit_refuse_uncovered_delete;
             UPDATE schema_version SET version = 5;",
            s = t.name()
        ))
        .await
        .unwrap();
    let store = t.open().await;
    let key = moat_store::KeyStore::get_key(&store, "old").await.unwrap();
    assert_eq!(key.map(|k| k.created_at), Some(7));
    moat_store::conformance::audit_store(&store).await;
}

/// Prints how long a 1,000-record batch of ~1 KB records takes to append.
/// `cargo test -p moat-store-postgres --test audit -- --ignored --nocapture append_timing`
#[tokio::test]
#[ignore = "a timing report, not a check"]
async fn append_timing() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    let body = format!(",\"body\":\"{}\"}}", "x".repeat(900));
    let mut prev = GENESIS.to_string();
    let mut times = Vec::new();
    for round in 0..20u64 {
        let mut batch = audit_chain(round * 1000 + 1, 1000, &prev);
        for r in &mut batch {
            r.json.pop();
            r.json.push_str(&body);
        }
        prev = batch[999].hash.clone();
        let start = std::time::Instant::now();
        store.append_audit(&batch).await.unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "1,000 records of ~1 KB: median {:.1} ms, max {:.1} ms (20 batches)",
        ms(times[10]),
        ms(times[19])
    );
}

#[tokio::test]
async fn a_failing_insert_mid_batch_leaves_nothing() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    let admin = common::admin().await;
    admin
        .batch_execute(&format!(
            "SET search_path = \"{s}\";
             CREATE FUNCTION fail_at_7() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.seq = 7 THEN RAISE EXCEPTION 'disk full, say'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER fail_at_7 BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION fail_at_7();",
            s = t.name()
        ))
        .await
        .unwrap();
    let records = audit_chain(1, 10, GENESIS);
    let err = store.append_audit(&records).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert_eq!(store.audit_bounds().await.unwrap(), None);
    assert_eq!(store.audit_tail().await.unwrap(), None);
    admin
        .batch_execute(&format!("DROP TRIGGER fail_at_7 ON \"{}\".audit", t.name()))
        .await
        .unwrap();
    // The pool's connections are usable after the aborted COPY.
    for _ in 0..4 {
        assert_eq!(store.audit_tail().await.unwrap(), None);
    }
    store.append_audit(&records).await.unwrap();
    assert_eq!(store.audit_range(1, 10, 100).await.unwrap(), records);
}
