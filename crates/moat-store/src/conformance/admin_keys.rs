//! What every [`AdminKeyStore`] must do: keep admin keys by id with their role, refuse duplicates,
//! list oldest first, revoke once.

use crate::{AdminKeyRecord, AdminKeyStore, AdminRole, StoreError};
use moat_policy::hash_key;

fn sample(id: &str, role: AdminRole, created_at: i64) -> AdminKeyRecord {
    AdminKeyRecord {
        id: id.to_string(),
        hash: hash_key(id),
        name: format!("holder of {id}"),
        role,
        created_at,
        revoked_at: None,
    }
}

/// Runs the admin-key-store conformance suite; panics (it is a test) on the first deviation.
pub async fn admin_key_store(store: &dyn AdminKeyStore) {
    assert_eq!(store.get_admin_key("a1").await.unwrap(), None);
    assert!(store.list_admin_keys().await.unwrap().is_empty());
    let records: Vec<AdminKeyRecord> = AdminRole::ALL
        .into_iter()
        .enumerate()
        .map(|(i, role)| sample(&format!("a{i}"), role, 400 - i as i64 * 100))
        .collect();
    for r in &records {
        store.insert_admin_key(r).await.unwrap();
    }
    assert!(matches!(
        store.insert_admin_key(&records[0]).await,
        Err(StoreError::Duplicate(id)) if id == "a0"
    ));
    for r in &records {
        assert_eq!(store.get_admin_key(&r.id).await.unwrap().as_ref(), Some(r));
    }
    let listed: Vec<String> = store
        .list_admin_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, ["a3", "a2", "a1", "a0"], "list is oldest first");

    assert!(store.revoke_admin_key("a2", 500).await.unwrap());
    assert!(store.revoke_admin_key("a2", 900).await.unwrap());
    assert_eq!(
        store.get_admin_key("a2").await.unwrap().unwrap().revoked_at,
        Some(500),
        "first revocation wins"
    );
    assert!(!store.revoke_admin_key("nope", 1).await.unwrap());
}
