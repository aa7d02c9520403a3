//! Admin keys: table `admin_keys` (migration 4).

use crate::error::Db;
use crate::PostgresStore;
use async_trait::async_trait;
use moat_policy::KeyHash;
use moat_store::{AdminKeyRecord, AdminKeyStore, AdminRole, StoreError};
use tokio_postgres::Row;

const COLUMNS: &str = "id, hash, name, role, created_at, revoked_at";

#[async_trait]
impl AdminKeyStore for PostgresStore {
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO admin_keys (id, hash, name, role, created_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .await
            .db()?;
        let inserted = client
            .execute(
                &stmt,
                &[
                    &key.id,
                    &key.hash.to_hex(),
                    &key.name,
                    &key.role.as_str(),
                    &key.created_at,
                    &key.revoked_at,
                ],
            )
            .await
            .db()?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(key.id.clone()));
        }
        Ok(())
    }

    async fn get_admin_key(&self, id: &str) -> Result<Option<AdminKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM admin_keys WHERE id = $1");
        self.one_row(&sql, id, from_row).await
    }

    async fn list_admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM admin_keys ORDER BY created_at, id");
        self.all_rows(&sql, from_row).await
    }

    async fn revoke_admin_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        self.revoke("admin_keys", id, at).await
    }
}

fn from_row(row: &Row) -> Result<AdminKeyRecord, StoreError> {
    let id: String = row.try_get(0).db()?;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: format!("admin key {id}"),
        reason,
    };
    let hash: String = row.try_get(1).db()?;
    let hash =
        KeyHash::from_hex(&hash).ok_or_else(|| corrupt("hash is not 64 hex digits".into()))?;
    let role: String = row.try_get(3).db()?;
    let role = AdminRole::parse(&role).ok_or_else(|| corrupt(format!("unknown role {role:?}")))?;
    Ok(AdminKeyRecord {
        hash,
        name: row.try_get(2).db()?,
        role,
        created_at: row.try_get(4).db()?,
        revoked_at: row.try_get(5).db()?,
        id,
    })
}
