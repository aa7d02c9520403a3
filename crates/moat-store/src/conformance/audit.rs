//! What every [`AuditStore`] must do: continue the chain or refuse, atomically; find records by
//! seq and by every filter; page with the cursor; keep documents byte for byte; drop behind
//! checkpoints.

use crate::{
    AuditBounds, AuditQuery, AuditStore, AuditTail, ChainBreak, PageBudget, StoreError,
    StoredAudit, StoredCheckpoint,
};

/// 2026-05-01T00:00:00Z in Unix milliseconds; record `seq` is made `seq` seconds later.
const T0: i64 = 1_777_593_600_000;

/// The `prev_hash` of record 1 (the store does not check it).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A made-up hash for record `seq` (the store only compares hashes, never computes them).
fn fake_hash(seq: u64) -> String {
    format!("{:064x}", seq.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Record `seq`, linked to `prev_hash`, with fields that vary by seq so that every filter picks
/// some records and not others.
pub fn audit_record(seq: u64, prev_hash: &str) -> StoredAudit {
    let pick = |options: &[&str]| options[(seq % options.len() as u64) as usize].to_string();
    let decisions = match seq % 6 {
        0 => vec![],
        1 => vec!["filter:deny".into()],
        2 => vec!["limits:deny".into(), "detection:throttle".into()],
        3 => vec!["filter:allow".into(), "limits:allow".into()],
        4 => vec!["detection:throttle".into()],
        _ => vec!["filter:deny-all".into(), "routing:fallback".into()],
    };
    let key_id = match seq % 7 {
        0 => None,
        _ => Some(pick(&["k1", "k2", "k3"])),
    };
    let workflow = match seq % 4 {
        0 => None,
        _ => Some(pick(&["triage", "support-bot"])),
    };
    StoredAudit {
        seq,
        ts_ms: T0 + seq as i64 * 1000,
        kind: pick(&["read", "request", "request", "request", "request"]),
        request_id: format!("req-{seq}"),
        key_id,
        account: Some(pick(&["acme", "globex", "initech"])),
        workflow,
        status: [200, 429, 200, 403, 502][(seq % 5) as usize],
        decisions,
        prev_hash: prev_hash.to_string(),
        hash: fake_hash(seq),
        json: format!(r#"{{"seq":{seq},"kind":"request","note":"record {seq}"}}"#),
    }
}

/// `n` records from seq `from`, the first linked to `prev_hash`, each to the one before.
pub fn audit_chain(from: u64, n: u64, prev_hash: &str) -> Vec<StoredAudit> {
    let mut prev = prev_hash.to_string();
    (from..from + n)
        .map(|seq| {
            let record = audit_record(seq, &prev);
            prev = record.hash.clone();
            record
        })
        .collect()
}

fn checkpoint(record: &StoredAudit) -> StoredCheckpoint {
    StoredCheckpoint {
        seq: record.seq,
        hash: record.hash.clone(),
        ts_ms: record.ts_ms + 1,
        json: format!(
            r#"{{"seq":{},"hash":"{}","sig":"hmac:…"}}"#,
            record.seq, record.hash
        ),
    }
}

fn tail_of(record: &StoredAudit) -> Option<AuditTail> {
    Some(AuditTail {
        seq: record.seq,
        hash: record.hash.clone(),
    })
}

fn seqs(records: &[StoredAudit]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

/// Runs the audit-store conformance suite on an empty store; panics (it is a test) on the first
/// deviation.
pub async fn audit_store(store: &dyn AuditStore) {
    empty_log(store).await;
    let all = append_and_refuse(store).await;
    ranges(store, &all).await;
    queries(store, &all).await;
    cursor(store, &all).await;
    let all = documents_byte_for_byte(store, all).await;
    retention(store, &all).await;
}

async fn empty_log(store: &dyn AuditStore) {
    assert_eq!(store.audit_tail().await.unwrap(), None);
    assert_eq!(store.audit_bounds().await.unwrap(), None);
    assert!(store.audit_checkpoints().await.unwrap().is_empty());
    assert!(store.audit_range(0, u64::MAX, 10).await.unwrap().is_empty());
    assert!(store
        .query_audit(&AuditQuery::new(10))
        .await
        .unwrap()
        .is_empty());
    store.append_audit(&[]).await.unwrap();
    assert_eq!(store.audit_tail().await.unwrap(), None);
}

/// The state a refused write must leave untouched.
async fn snapshot(store: &dyn AuditStore) -> (Option<AuditTail>, Option<AuditBounds>, usize) {
    (
        store.audit_tail().await.unwrap(),
        store.audit_bounds().await.unwrap(),
        store
            .audit_range(0, u64::MAX, usize::MAX)
            .await
            .unwrap()
            .len(),
    )
}

async fn refused(store: &dyn AuditStore, batch: &[StoredAudit], why: ChainBreak) {
    let before = snapshot(store).await;
    match store.append_audit(batch).await {
        Err(StoreError::AuditChain(got)) => assert_eq!(got, why),
        other => panic!("expected {why:?}, got {other:?}"),
    }
    assert_eq!(
        snapshot(store).await,
        before,
        "a refused batch changes nothing"
    );
}

/// Appends records 1..=60 in uneven batches, checking every refusal on the way; returns them.
async fn append_and_refuse(store: &dyn AuditStore) -> Vec<StoredAudit> {
    let all = audit_chain(1, 60, GENESIS);
    // An empty log starts at 1.
    refused(
        store,
        &all[1..3],
        ChainBreak::Gap {
            expected: 1,
            found: 2,
        },
    )
    .await;
    for batch in [&all[0..1], &all[1..10], &all[10..40]] {
        store.append_audit(batch).await.unwrap();
    }
    assert_eq!(store.audit_tail().await.unwrap(), tail_of(&all[39]));

    // A gap, a replay (a second writer's fork), and a gap inside a batch.
    refused(
        store,
        &all[41..43],
        ChainBreak::Gap {
            expected: 41,
            found: 42,
        },
    )
    .await;
    refused(
        store,
        &all[39..42],
        ChainBreak::Gap {
            expected: 41,
            found: 40,
        },
    )
    .await;
    let holed = [all[40].clone(), all[41].clone(), all[43].clone()];
    refused(
        store,
        &holed,
        ChainBreak::Gap {
            expected: 43,
            found: 44,
        },
    )
    .await;
    // Atomicity: a duplicate seq deep in an otherwise good batch leaves nothing of it behind.
    let mut duplicated = all[40..50].to_vec();
    duplicated.insert(5, all[44].clone());
    refused(
        store,
        &duplicated,
        ChainBreak::Gap {
            expected: 46,
            found: 45,
        },
    )
    .await;
    // Right seqs, wrong links: to the tail, and inside the batch.
    let mut unlinked = all[40..43].to_vec();
    unlinked[0].prev_hash = fake_hash(999);
    refused(store, &unlinked, ChainBreak::Link { seq: 41 }).await;
    let mut unlinked = all[40..43].to_vec();
    unlinked[2].prev_hash = fake_hash(999);
    refused(store, &unlinked, ChainBreak::Link { seq: 43 }).await;

    store.append_audit(&all[40..60]).await.unwrap();
    assert_eq!(store.audit_tail().await.unwrap(), tail_of(&all[59]));
    assert_eq!(
        store.audit_bounds().await.unwrap(),
        Some(AuditBounds {
            first_seq: 1,
            last_seq: 60,
            count: 60
        })
    );
    all
}

async fn ranges(store: &dyn AuditStore, all: &[StoredAudit]) {
    assert_eq!(store.audit_range(1, 60, 1000).await.unwrap(), all);
    assert_eq!(store.audit_range(0, u64::MAX, 1000).await.unwrap(), all);
    assert_eq!(
        seqs(&store.audit_range(10, 20, 5).await.unwrap()),
        [10, 11, 12, 13, 14]
    );
    assert_eq!(seqs(&store.audit_range(20, 20, 5).await.unwrap()), [20]);
    assert_eq!(
        seqs(&store.audit_range(58, u64::MAX, 5).await.unwrap()),
        [58, 59, 60]
    );
    assert!(store.audit_range(20, 10, 5).await.unwrap().is_empty());
    assert!(store.audit_range(1, 60, 0).await.unwrap().is_empty());
    assert!(store.audit_range(61, 100, 5).await.unwrap().is_empty());
}

/// Compares the store's answer with the reference semantics, and checks the filter is selective
/// (some records but not all), so a backend ignoring it cannot pass.
async fn same_as_reference(store: &dyn AuditStore, all: &[StoredAudit], q: AuditQuery) {
    let q = AuditQuery {
        limit: usize::MAX,
        ..q
    };
    let expected: Vec<StoredAudit> = all.iter().filter(|r| q.matches(r)).cloned().collect();
    assert!(
        !expected.is_empty() && expected.len() < all.len(),
        "{q:?} is not selective"
    );
    assert_eq!(store.query_audit(&q).await.unwrap(), expected, "{q:?}");
}

async fn queries(store: &dyn AuditStore, all: &[StoredAudit]) {
    let q = AuditQuery::default;
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        store.query_audit(&AuditQuery::new(1000)).await.unwrap(),
        all
    );
    assert_eq!(
        seqs(&store.query_audit(&AuditQuery::new(3)).await.unwrap()),
        [1, 2, 3]
    );
    assert!(store.query_audit(&q()).await.unwrap().is_empty(), "limit 0");

    // Time bounds: from inclusive, to exclusive.
    let at = |seq: i64| Some(T0 + seq * 1000);
    let window = AuditQuery {
        from_ms: at(10),
        to_ms: at(13),
        limit: 100,
        ..q()
    };
    assert_eq!(
        seqs(&store.query_audit(&window).await.unwrap()),
        [10, 11, 12]
    );

    for single in [
        AuditQuery {
            from_ms: at(45),
            ..q()
        },
        AuditQuery {
            to_ms: at(7),
            ..q()
        },
        AuditQuery {
            key_id: s("k2"),
            ..q()
        },
        AuditQuery {
            account: s("globex"),
            ..q()
        },
        AuditQuery {
            workflow: s("triage"),
            ..q()
        },
        AuditQuery {
            status: Some(429),
            ..q()
        },
        AuditQuery {
            decision: s("filter:deny"),
            ..q()
        },
        AuditQuery {
            decision: s("detection:throttle"),
            ..q()
        },
        AuditQuery {
            kind: s("read"),
            ..q()
        },
        AuditQuery {
            after_seq: Some(50),
            ..q()
        },
        AuditQuery {
            account: s("initech"),
            decision: s("detection:throttle"),
            from_ms: at(5),
            to_ms: at(50),
            ..q()
        },
        AuditQuery {
            workflow: s("support-bot"),
            status: Some(200),
            kind: s("request"),
            ..q()
        },
    ] {
        same_as_reference(store, all, single).await;
    }

    // A decision matches whole tags only: not a prefix, not another case, not a LIKE pattern.
    let filter_deny = AuditQuery {
        decision: s("filter:deny"),
        limit: 100,
        ..q()
    };
    let found = store.query_audit(&filter_deny).await.unwrap();
    assert!(
        found.iter().all(|r| r.decisions == ["filter:deny"]),
        "not filter:deny-all"
    );
    for near_miss in [
        "filter",
        "Filter:deny",
        "filter:%",
        "%deny%",
        "filter:deny,",
        "\"filter:deny\"",
    ] {
        let q = AuditQuery {
            decision: s(near_miss),
            limit: 100,
            ..q()
        };
        assert!(
            store.query_audit(&q).await.unwrap().is_empty(),
            "{near_miss}"
        );
    }
    // Filters on absent values match nothing; they do not match records lacking the field.
    let nobody = AuditQuery {
        account: s(""),
        limit: 100,
        ..q()
    };
    assert!(store.query_audit(&nobody).await.unwrap().is_empty());
    let contradictory = AuditQuery {
        status: Some(429),
        kind: s("read"),
        limit: 100,
        ..q()
    };
    assert!(store.query_audit(&contradictory).await.unwrap().is_empty());
}

/// Pages through everything, and through one account, seven at a time: each record exactly once.
async fn cursor(store: &dyn AuditStore, all: &[StoredAudit]) {
    for filter in [
        AuditQuery::default(),
        AuditQuery {
            account: Some("initech".into()),
            ..AuditQuery::default()
        },
    ] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let q = AuditQuery {
                after_seq: after,
                limit: 7,
                ..filter.clone()
            };
            let page = store.query_audit(&q).await.unwrap();
            assert!(page.len() <= 7);
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            seen.extend(page);
        }
        let expected: Vec<StoredAudit> =
            all.iter().filter(|r| filter.matches(r)).cloned().collect();
        assert_eq!(seen, expected, "{filter:?}");
    }
}

/// Documents come back exactly as written, whatever they hold; returns `all` with them appended.
async fn documents_byte_for_byte(
    store: &dyn AuditStore,
    mut all: Vec<StoredAudit>,
) -> Vec<StoredAudit> {
    let odd = [
        "{\"b\":1,  \"a\":2}\n".to_string(),
        "{\"text\":\"o'brien \\\"q\\\" 100%_off naïve 日本 🚀 \u{2028}\u{feff}\"}".into(),
        "{\"escaped\":\"\\u00e9\\u0000\\ud83d\\ude80\",\"dup\":1,\"dup\":2}\r\n".into(),
        "not json at all: \0 nul and \t tab".into(),
        String::new(),
        format!("{{\"body\":\"{}\"}}", "x".repeat(1 << 20)),
    ];
    let mut prev = all.last().map(|r| r.hash.clone()).unwrap_or_default();
    let mut batch = Vec::new();
    for (i, json) in odd.into_iter().enumerate() {
        let mut record = audit_record(all.len() as u64 + 1 + i as u64, &prev);
        record.json = json;
        record.request_id = "req 'odd' \u{0}".into();
        record.decisions = vec!["a,b".into(), "quote\"d".into(), String::new()];
        prev = record.hash.clone();
        batch.push(record);
    }
    store.append_audit(&batch).await.unwrap();
    let first = batch[0].seq;
    let back = store.audit_range(first, u64::MAX, 100).await.unwrap();
    assert_eq!(back, batch);
    assert_eq!(
        back[5].json.len(),
        (1 << 20) + 11,
        "the 1 MB document is whole"
    );
    let by_tag = AuditQuery {
        decision: Some("a,b".into()),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(store.query_audit(&by_tag).await.unwrap(), batch);
    all.extend(batch);
    all
}

async fn retention(store: &dyn AuditStore, all: &[StoredAudit]) {
    let last = &all[all.len() - 1];
    let n = all.len() as u64;

    // A checkpoint must name a kept record and carry its hash.
    let mut wrong = checkpoint(&all[9]);
    wrong.hash = fake_hash(999);
    let unknown = StoredCheckpoint {
        seq: n + 5,
        ..checkpoint(last)
    };
    for (cp, why) in [
        (&wrong, ChainBreak::CheckpointMismatch { seq: 10 }),
        (&unknown, ChainBreak::UnknownCheckpoint { seq: n + 5 }),
    ] {
        let before = snapshot(store).await;
        match store.drop_audit_through(cp).await {
            Err(StoreError::AuditChain(got)) => assert_eq!(got, why),
            other => panic!("expected {why:?}, got {other:?}"),
        }
        assert_eq!(snapshot(store).await, before);
        assert!(store.audit_checkpoints().await.unwrap().is_empty());
    }

    // Drop the first ten.
    let cp10 = checkpoint(&all[9]);
    assert_eq!(store.drop_audit_through(&cp10).await.unwrap(), 10);
    assert_eq!(
        store.audit_checkpoints().await.unwrap(),
        std::slice::from_ref(&cp10)
    );
    assert_eq!(
        store.audit_bounds().await.unwrap(),
        Some(AuditBounds {
            first_seq: 11,
            last_seq: n,
            count: n - 10
        })
    );
    assert_eq!(
        store.audit_range(0, u64::MAX, 1000).await.unwrap(),
        all[10..]
    );
    assert_eq!(store.audit_tail().await.unwrap(), tail_of(last));
    // A retry of the same checkpoint is harmless; one through a dropped record is refused.
    assert_eq!(store.drop_audit_through(&cp10).await.unwrap(), 0);
    assert_eq!(
        store.audit_checkpoints().await.unwrap(),
        std::slice::from_ref(&cp10)
    );
    let stale = checkpoint(&all[4]);
    assert!(matches!(
        store.drop_audit_through(&stale).await,
        Err(StoreError::AuditChain(ChainBreak::UnknownCheckpoint {
            seq: 5
        }))
    ));

    // Drop everything: the tail is the checkpoint's, and the chain continues from it.
    let cp_last = checkpoint(last);
    assert_eq!(store.drop_audit_through(&cp_last).await.unwrap(), n - 10);
    assert_eq!(store.audit_bounds().await.unwrap(), None);
    assert_eq!(store.audit_tail().await.unwrap(), tail_of(last));
    assert_eq!(
        store.audit_checkpoints().await.unwrap(),
        [cp10, cp_last.clone()]
    );
    assert!(store
        .query_audit(&AuditQuery::new(100))
        .await
        .unwrap()
        .is_empty());
    refused(
        store,
        &audit_chain(1, 2, GENESIS),
        ChainBreak::Gap {
            expected: n + 1,
            found: 1,
        },
    )
    .await;
    refused(
        store,
        &audit_chain(n + 1, 2, &fake_hash(999)),
        ChainBreak::Link { seq: n + 1 },
    )
    .await;
    let next = audit_chain(n + 1, 3, &cp_last.hash);
    store.append_audit(&next).await.unwrap();
    assert_eq!(store.audit_tail().await.unwrap(), tail_of(&next[2]));
    assert_eq!(
        store.audit_bounds().await.unwrap(),
        Some(AuditBounds {
            first_seq: n + 1,
            last_seq: n + 3,
            count: 3
        })
    );
    assert_eq!(
        store.query_audit(&AuditQuery::new(100)).await.unwrap(),
        next
    );
}

/// Records 1..=n whose JSON carries a request body of `body_len` bytes (the chain's hashes are not
/// recomputed: stores check only seq and links).
pub fn audit_chain_with_bodies(n: u64, body_len: usize) -> Vec<StoredAudit> {
    let mut rows = audit_chain(1, n, GENESIS);
    for r in &mut rows {
        r.json = format!(
            r#"{{"seq":{},"request_body":{{"full":"{}"}},"response_body":{{"sha256":"ab"}},"status":200}}"#,
            r.seq,
            "x".repeat(body_len)
        );
    }
    rows
}

/// Runs the byte-budgeted page suite on an empty store: a page stops at its budget and its
/// cursor continues, the limit still applies, a record larger than the budget comes alone, and a
/// page is what `query_audit` returns.
pub async fn audit_pages(store: &dyn AuditStore) {
    store
        .append_audit(&audit_chain_with_bodies(10, 1000))
        .await
        .unwrap();
    let budget = PageBudget {
        max_bytes: 3500,
        bodies: true,
    };
    let mut q = AuditQuery::new(100);
    let mut seen = Vec::new();
    loop {
        let page = store.audit_page(&q, budget).await.unwrap();
        assert!(page.rows.len() <= 3, "{} rows", page.rows.len());
        seen.extend(page.rows.iter().map(|r| r.seq));
        assert!(page.rows.iter().all(|r| r.json.len() > 1000));
        match page.next_after_seq {
            Some(after) => q.after_seq = Some(after),
            None => break,
        }
    }
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    let tiny = PageBudget {
        max_bytes: 10,
        bodies: true,
    };
    let page = store.audit_page(&AuditQuery::new(5), tiny).await.unwrap();
    assert_eq!((page.rows.len(), page.next_after_seq), (1, Some(1)));
    let wide = PageBudget {
        max_bytes: usize::MAX,
        bodies: true,
    };
    let page = store.audit_page(&AuditQuery::new(4), wide).await.unwrap();
    assert_eq!((page.rows.len(), page.next_after_seq), (4, Some(4)));
    let mut last = AuditQuery::new(4);
    last.after_seq = Some(8);
    let page = store.audit_page(&last, wide).await.unwrap();
    assert_eq!((page.rows.len(), page.next_after_seq), (2, None));
    assert!(store
        .audit_page(&AuditQuery::new(0), wide)
        .await
        .unwrap()
        .rows
        .is_empty());
    let all = store.query_audit(&AuditQuery::new(100)).await.unwrap();
    let page = store.audit_page(&AuditQuery::new(100), wide).await.unwrap();
    assert_eq!(page.rows, all);
}

/// Runs the without-bodies page check on an empty store: the records come without their body
/// fields.
pub async fn audit_pages_without_bodies(store: &dyn AuditStore) {
    store
        .append_audit(&audit_chain_with_bodies(3, 1000))
        .await
        .unwrap();
    let budget = PageBudget {
        max_bytes: usize::MAX,
        bodies: false,
    };
    let page = store
        .audit_page(&AuditQuery::new(10), budget)
        .await
        .unwrap();
    let docs: Vec<&str> = page.rows.iter().map(|r| r.json.as_str()).collect();
    assert_eq!(
        docs,
        [
            r#"{"seq":1,"status":200}"#,
            r#"{"seq":2,"status":200}"#,
            r#"{"seq":3,"status":200}"#
        ]
    );
}
