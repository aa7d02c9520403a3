//! Admin keys in SQLite: table `admin_keys` (migration 5).

use super::SqliteStore;
use crate::{AdminKeyRecord, AdminKeyStore, AdminRole, StoreError};
use async_trait::async_trait;
use moat_policy::KeyHash;
use rusqlite::params;

const COLUMNS: &str = "id, hash, name, role, created_at, revoked_at";

#[async_trait]
impl AdminKeyStore for SqliteStore {
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.with_conn(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO admin_keys (id, hash, name, role, created_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING",
                params![
                    key.id,
                    key.hash.to_hex(),
                    key.name,
                    key.role.as_str(),
                    key.created_at,
                    key.revoked_at,
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Duplicate(key.id));
            }
            Ok(())
        })
        .await
    }

    async fn get_admin_key(&self, id: &str) -> Result<Option<AdminKeyRecord>, StoreError> {
        let id = id.to_string();
        self.with_reader(super::Read::Lookup, move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM admin_keys WHERE id = ?1");
            super::one_row(conn, &sql, &id, from_row)
        })
        .await
    }

    async fn list_admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError> {
        self.with_reader(super::Read::Query, |conn| {
            let sql = format!("SELECT {COLUMNS} FROM admin_keys ORDER BY created_at, id");
            super::all_rows(conn, &sql, from_row)
        })
        .await
    }

    async fn revoke_admin_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn| super::revoke(conn, "admin_keys", &id, at))
            .await
    }
}

fn from_row(row: &rusqlite::Row<'_>) -> Result<AdminKeyRecord, StoreError> {
    let id: String = row.get(0)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: format!("admin key {id}"),
        reason,
    };
    let hash: String = row.get(1)?;
    let hash =
        KeyHash::from_hex(&hash).ok_or_else(|| corrupt("hash is not 64 hex digits".into()))?;
    let role: String = row.get(3)?;
    let role = AdminRole::parse(&role).ok_or_else(|| corrupt(format!("unknown role {role:?}")))?;
    Ok(AdminKeyRecord {
        hash,
        name: row.get(2)?,
        role,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
        id,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_role_is_a_corrupt_row_not_a_panic() {
        let store = SqliteStore::open_in_memory().unwrap();
        let hash = moat_policy::hash_key("x").to_hex();
        store
            .with_conn(move |c| {
                c.execute(
                    "INSERT INTO admin_keys VALUES ('bad', ?1, 'mallory', 'root', 0, NULL)",
                    [hash],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let err = store.get_admin_key("bad").await.unwrap_err();
        assert!(err.to_string().contains("unknown role \"root\""), "{err}");
    }

    #[tokio::test]
    async fn admin_keys_survive_reopen_and_never_share_the_virtual_keys_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        let g = crate::generate_admin_key("alice", AdminRole::Security, 10);
        SqliteStore::open(&path)
            .unwrap()
            .insert_admin_key(&g.record)
            .await
            .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.get_admin_key(&g.record.id).await.unwrap(),
            Some(g.record.clone())
        );
        use crate::KeyStore;
        assert_eq!(store.get_key(&g.record.id).await.unwrap(), None);
    }
}
