//! The behaviour every store backend must show, as one suite each backend's tests call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{KeyStore, StoreError};
use moat_policy::{hash_key, KeyRecord};

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
}
