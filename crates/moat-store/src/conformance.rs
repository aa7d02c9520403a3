//! The behaviour every store backend must show, as one suite each backend's tests call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{KeyStore, SpendRow, SpendStore, StoreError};

mod admin_keys;
mod audit;
pub use admin_keys::admin_key_store;
pub use audit::{
    audit_chain, audit_chain_with_bodies, audit_pages, audit_pages_without_bodies, audit_record,
    audit_store, GENESIS,
};
use moat_core::Money;
use moat_policy::budget::Period;
use moat_policy::limits::Scope;
use moat_policy::{hash_key, KeyRecord, PreviousSecret};

/// A key record for tests.
pub fn sample_key(id: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        id: id.to_string(),
        hash: hash_key(id),
        account: "acme".into(),
        workflow: Some("support-bot".into()),
        models: vec!["gpt-4o".into(), "claude-sonnet".into()],
        cidrs: vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        created_at,
        expires_at: Some(created_at + 3600),
        revoked_at: None,
        previous: None,
    }
}

/// Runs the key-store conformance suite; panics (it is a test) on the first deviation.
pub async fn key_store(store: &dyn KeyStore) {
    store.ping().await.unwrap();
    assert_eq!(store.get_key("k1").await.unwrap(), None);
    let k1 = sample_key("k1", 100);
    let mut k2 = sample_key("k2", 200);
    k2.workflow = None;
    k2.models.clear();
    k2.cidrs.clear();
    k2.expires_at = None;
    store.insert_key(&k2).await.unwrap();
    store.insert_key(&k1).await.unwrap();
    assert!(matches!(store.insert_key(&k1).await, Err(StoreError::Duplicate(id)) if id == "k1"));

    assert_eq!(store.get_key("k1").await.unwrap(), Some(k1.clone()));
    assert_eq!(store.get_key("k2").await.unwrap(), Some(k2.clone()));
    let listed: Vec<String> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, ["k1", "k2"], "list is oldest first");

    assert!(store.revoke_key("k1", 500).await.unwrap());
    assert!(store.revoke_key("k1", 900).await.unwrap());
    assert_eq!(
        store.get_key("k1").await.unwrap().unwrap().revoked_at,
        Some(500),
        "first revocation wins"
    );
    assert!(!store.revoke_key("nope", 1).await.unwrap());

    // Rotation: the old hash becomes the previous one, the rest of the record stays.
    let h1 = hash_key("k2-second");
    assert!(store.rotate_key("k2", &h1, 1_000).await.unwrap());
    let rotated = store.get_key("k2").await.unwrap().unwrap();
    assert_eq!(rotated.hash, h1);
    assert_eq!(
        rotated.previous,
        Some(PreviousSecret {
            hash: k2.hash,
            valid_until: 1_000
        })
    );
    assert_eq!(
        KeyRecord {
            hash: k2.hash,
            previous: None,
            ..rotated.clone()
        },
        k2,
        "a rotation changes only the secret"
    );
    // A second rotation within the grace replaces the previous secret.
    let h2 = hash_key("k2-third");
    assert!(store.rotate_key("k2", &h2, 2_000).await.unwrap());
    let twice = store.get_key("k2").await.unwrap().unwrap();
    assert_eq!((twice.hash, twice.previous.map(|p| p.hash)), (h2, Some(h1)));
    assert_eq!(twice.previous.map(|p| p.valid_until), Some(2_000));
    assert_eq!(
        store.list_keys().await.unwrap()[1],
        twice,
        "list reads the rotation too"
    );
    // Neither a missing nor a revoked key rotates.
    assert!(!store.rotate_key("nope", &h1, 1).await.unwrap());
    assert!(!store.rotate_key("k1", &h1, 1).await.unwrap());
    assert_eq!(store.get_key("k1").await.unwrap().unwrap().hash, k1.hash);

    // A record inserted with a previous secret reads back whole.
    let mut k3 = sample_key("k3", 300);
    k3.previous = Some(PreviousSecret {
        hash: hash_key("k3-old"),
        valid_until: 400,
    });
    store.insert_key(&k3).await.unwrap();
    assert_eq!(store.get_key("k3").await.unwrap(), Some(k3));
}

/// 2026-05-01T00:00:00Z, the start of a month (and of a day) in Unix milliseconds.
const MAY: i64 = 1_777_593_600_000;
/// 2026-05-25T00:00:00Z, a Monday.
const MONDAY: i64 = 1_779_667_200_000;
const DAY: i64 = 86_400_000;

/// A spend row for tests.
pub fn spend(scope: Scope, id: &str, period: Period, window_start_ms: i64, spent: i64) -> SpendRow {
    SpendRow {
        scope,
        id: id.into(),
        period,
        window_start_ms,
        spent: Money(spent),
    }
}

/// Spend rows over every scope and period, a few windows apart.
pub fn sample_spend() -> Vec<SpendRow> {
    vec![
        spend(Scope::Key, "k1", Period::Day, MAY + 27 * DAY, 1_500),
        spend(Scope::Key, "k1", Period::Day, MAY + 26 * DAY, 700),
        spend(Scope::Workflow, "triage", Period::Week, MONDAY, 42_000),
        spend(Scope::Workflow, "triage", Period::Month, MAY, 9_000_000),
        spend(Scope::Account, "acme", Period::Month, MAY, i64::MAX),
    ]
}

/// Rows in a fixed order, for comparing what two stores return.
pub fn sorted(mut rows: Vec<SpendRow>) -> Vec<SpendRow> {
    rows.sort_by(|a, b| {
        (a.scope, &a.id, a.period, a.window_start_ms).cmp(&(
            b.scope,
            &b.id,
            b.period,
            b.window_start_ms,
        ))
    });
    rows
}

/// Runs the spend-store conformance suite on an empty store; panics (it is a test) on the first
/// deviation.
pub async fn spend_store(store: &dyn SpendStore) {
    let all = i64::MIN;
    assert_eq!(store.load_spend(all).await.unwrap(), vec![]);
    store.save_spend(&[]).await.unwrap();
    assert_eq!(store.prune_spend(i64::MAX).await.unwrap(), 0);

    // Round trip, and saving again is idempotent.
    let rows = sample_spend();
    store.save_spend(&rows).await.unwrap();
    store.save_spend(&rows).await.unwrap();
    assert_eq!(
        sorted(store.load_spend(all).await.unwrap()),
        sorted(rows.clone())
    );

    // A save overwrites a window's running total (up or down), and touches no other row.
    let grown = spend(Scope::Key, "k1", Period::Day, MAY + 27 * DAY, 2_250);
    store
        .save_spend(std::slice::from_ref(&grown))
        .await
        .unwrap();
    let mut expected = rows.clone();
    expected[0] = grown;
    assert_eq!(
        sorted(store.load_spend(all).await.unwrap()),
        sorted(expected.clone())
    );
    let shrunk = spend(Scope::Key, "k1", Period::Day, MAY + 27 * DAY, 10);
    store
        .save_spend(std::slice::from_ref(&shrunk))
        .await
        .unwrap();
    expected[0] = shrunk;
    assert_eq!(
        sorted(store.load_spend(all).await.unwrap()),
        sorted(expected.clone())
    );

    // Only windows starting at or after `since`.
    let since = MONDAY;
    let recent: Vec<SpendRow> = expected
        .iter()
        .filter(|r| r.window_start_ms >= since)
        .cloned()
        .collect();
    assert_eq!(recent.len(), 3, "the boundary row is included");
    assert_eq!(
        sorted(store.load_spend(since).await.unwrap()),
        sorted(recent.clone())
    );
    assert_eq!(store.load_spend(i64::MAX).await.unwrap(), vec![]);

    // Pruning deletes strictly before, and says how many.
    assert_eq!(store.prune_spend(since).await.unwrap(), 2);
    assert_eq!(store.prune_spend(since).await.unwrap(), 0);
    assert_eq!(
        sorted(store.load_spend(all).await.unwrap()),
        sorted(recent.clone())
    );

    // Ids are opaque: case, quotes, SQL wildcards, separators, Unicode, the empty string, and the
    // same id under another scope or period are all different rows.
    let odd: Vec<SpendRow> = [
        "Triage",
        "triage ",
        "",
        "o'brien \"quoted\"",
        "100%_off",
        "a/b:c|d",
        "naïve 日本 🚀",
        "line\nbreak",
        "nul\0byte",
    ]
    .iter()
    .enumerate()
    .map(|(i, id)| spend(Scope::Workflow, id, Period::Week, MONDAY, i as i64 + 1))
    .chain([
        spend(Scope::Key, "triage", Period::Week, MONDAY, 77),
        spend(Scope::Account, "triage", Period::Week, MONDAY, 78),
        spend(Scope::Workflow, "triage", Period::Day, MONDAY, 79),
        spend(Scope::Key, &"x".repeat(4096), Period::Day, MONDAY, 80),
    ])
    .collect();
    store.save_spend(&odd).await.unwrap();
    let mut expected = recent;
    expected.extend(odd);
    assert_eq!(
        sorted(store.load_spend(all).await.unwrap()),
        sorted(expected.clone())
    );

    // Windows before 1970 (a clock set wrong) are rows like any other.
    let ancient = spend(Scope::Key, "k1", Period::Day, -DAY, 3);
    store
        .save_spend(std::slice::from_ref(&ancient))
        .await
        .unwrap();
    assert_eq!(
        store.load_spend(-DAY).await.unwrap().len(),
        expected.len() + 1
    );
    assert_eq!(store.prune_spend(0).await.unwrap(), 1);
    assert_eq!(
        sorted(store.load_spend(all).await.unwrap()),
        sorted(expected)
    );
}

/// A workflow spec for the conformance tests.
pub fn sample_workflow(name: &str, owner: &str) -> crate::WorkflowSpec {
    crate::WorkflowSpec {
        name: name.into(),
        owner: owner.into(),
        description: Some("drafts replies".into()),
        criticality: "high".into(),
        sensitivity: "confidential".into(),
        models: vec!["gpt-4.1".into()],
        writes: true,
        limits: moat_config::LimitsSpec {
            requests_per_minute: Some(60),
            ..Default::default()
        },
        budget: moat_config::BudgetSpec {
            daily: Some("25.5".into()),
            ..Default::default()
        },
        objectives: Default::default(),
    }
}

/// What every [`crate::WorkflowStore`] must do: put, replace, list by name, delete.
pub async fn workflow_store(store: &dyn crate::WorkflowStore) {
    assert!(store.list_workflows().await.unwrap().is_empty());
    let a = sample_workflow("support-replies", "support@x.example");
    let b = sample_workflow("claims 'triage' \u{e9}", "claims@x.example");
    store.put_workflow(&a, 1).await.unwrap();
    store.put_workflow(&b, 2).await.unwrap();
    let names: Vec<String> = store
        .list_workflows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    let mut expected = vec![a.name.clone(), b.name.clone()];
    expected.sort();
    assert_eq!(names, expected);
    // Putting again replaces the spec.
    let mut a2 = a.clone();
    a2.owner = "new-owner@x.example".into();
    store.put_workflow(&a2, 3).await.unwrap();
    let listed = store.list_workflows().await.unwrap();
    assert_eq!(listed.iter().find(|w| w.name == a.name), Some(&a2));
    assert_eq!(listed.len(), 2);
    assert!(store.delete_workflow(&a.name).await.unwrap());
    assert!(!store.delete_workflow(&a.name).await.unwrap());
    assert_eq!(store.list_workflows().await.unwrap(), vec![b]);
}
