//! Virtual keys: table `keys` (migration 1).

use crate::error::Db;
use crate::PostgresStore;
use async_trait::async_trait;
use moat_policy::{KeyHash, KeyRecord, PreviousSecret};
use moat_store::{KeyStore, StoreError};
use tokio_postgres::Row;

const COLUMNS: &str = "id, hash, account, workflow, models, cidrs, created_at, expires_at, \
     revoked_at, previous_hash, previous_valid_until";

#[async_trait]
impl KeyStore for PostgresStore {
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO keys (id, hash, account, workflow, models, cidrs, created_at, expires_at,
                                   revoked_at, previous_hash, previous_valid_until)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
            )
            .await
            .db()?;
        let cidrs: Vec<String> = key.cidrs.iter().map(ToString::to_string).collect();
        let previous_hash = key.previous.map(|p| p.hash.to_hex());
        let previous_valid_until = key.previous.map(|p| p.valid_until);
        let inserted = client
            .execute(
                &stmt,
                &[
                    &key.id,
                    &key.hash.to_hex(),
                    &key.account,
                    &key.workflow,
                    &key.models,
                    &cidrs,
                    &key.created_at,
                    &key.expires_at,
                    &key.revoked_at,
                    &previous_hash,
                    &previous_valid_until,
                ],
            )
            .await
            .db()?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(key.id.clone()));
        }
        Ok(())
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM keys WHERE id = $1");
        self.one_row(&sql, id, from_row).await
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM keys ORDER BY created_at, id");
        self.all_rows(&sql, from_row).await
    }

    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        self.revoke("keys", id, at).await
    }

    async fn rotate_key(
        &self,
        id: &str,
        new_hash: &KeyHash,
        grace_until: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        // One statement, so two rotations racing cannot both keep the same old secret.
        let stmt = client
            .prepare_cached(
                "UPDATE keys SET previous_hash = hash, previous_valid_until = $3, hash = $2
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .await
            .db()?;
        let changed = client
            .execute(&stmt, &[&id, &new_hash.to_hex(), &grace_until])
            .await
            .db()?;
        Ok(changed > 0)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client()
            .await?
            .simple_query("SELECT 1")
            .await
            .db()
            .map(|_| ())
    }
}

fn from_row(row: &Row) -> Result<KeyRecord, StoreError> {
    let id: String = row.try_get(0).db()?;
    let corrupt = |reason: &str| StoreError::Corrupt {
        id: format!("key {id}"),
        reason: reason.to_string(),
    };
    let hash: String = row.try_get(1).db()?;
    let hash = KeyHash::from_hex(&hash).ok_or_else(|| corrupt("hash is not 64 hex digits"))?;
    let cidrs: Vec<String> = row.try_get(5).db()?;
    let cidrs = cidrs
        .iter()
        .map(|c| c.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| corrupt("cidrs holds an invalid network"))?;
    let previous_hash: Option<String> = row.try_get(9).db()?;
    let previous_valid_until: Option<i64> = row.try_get(10).db()?;
    let previous = match (previous_hash, previous_valid_until) {
        (Some(hash), Some(valid_until)) => Some(PreviousSecret {
            hash: KeyHash::from_hex(&hash)
                .ok_or_else(|| corrupt("previous_hash is not 64 hex digits"))?,
            valid_until,
        }),
        (None, None) => None,
        _ => {
            return Err(corrupt(
                "previous_hash and previous_valid_until differ in presence",
            ))
        }
    };
    Ok(KeyRecord {
        hash,
        account: row.try_get(2).db()?,
        workflow: row.try_get(3).db()?,
        models: row.try_get(4).db()?,
        cidrs,
        created_at: row.try_get(6).db()?,
        expires_at: row.try_get(7).db()?,
        revoked_at: row.try_get(8).db()?,
        previous,
        id,
    })
}
