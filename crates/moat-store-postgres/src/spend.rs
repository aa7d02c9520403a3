//! Settled budget spend: table `spend` (migration 2).

use crate::error::Db;
use crate::PostgresStore;
use async_trait::async_trait;
use moat_core::Money;
use moat_policy::budget::Period;
use moat_policy::limits::Scope;
use moat_store::{SpendRow, SpendStore, StoreError};
use std::collections::BTreeMap;
use tokio_postgres::Row;

#[async_trait]
impl SpendStore for PostgresStore {
    async fn save_spend(&self, rows: &[SpendRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        // One statement over arrays: one round trip, all rows or none. A row named twice keeps
        // its last total, as a sequence of upserts would (one statement may not touch a row twice).
        let mut last = BTreeMap::new();
        for row in rows {
            last.insert(
                (row.scope, &*row.id, row.period, row.window_start_ms),
                row.spent.0,
            );
        }
        let mut scopes = Vec::with_capacity(last.len());
        let mut ids = Vec::with_capacity(last.len());
        let mut periods = Vec::with_capacity(last.len());
        let mut starts = Vec::with_capacity(last.len());
        let mut spent = Vec::with_capacity(last.len());
        for ((scope, id, period, start), micros) in last {
            scopes.push(scope.as_str());
            ids.push(id.as_bytes());
            periods.push(period.as_str());
            starts.push(start);
            spent.push(micros);
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO spend (scope, id, period, window_start_ms, spent_micros)
                 SELECT * FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::int8[], $5::int8[])
                 ON CONFLICT (scope, id, period, window_start_ms)
                 DO UPDATE SET spent_micros = excluded.spent_micros",
            )
            .await
            .db()?;
        client
            .execute(&stmt, &[&scopes, &ids, &periods, &starts, &spent])
            .await
            .db()?;
        Ok(())
    }

    async fn load_spend(&self, since_ms: i64) -> Result<Vec<SpendRow>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT scope, id, period, window_start_ms, spent_micros FROM spend
                 WHERE window_start_ms >= $1",
            )
            .await
            .db()?;
        let rows = client.query(&stmt, &[&since_ms]).await.db()?;
        rows.iter().map(from_row).collect()
    }

    async fn prune_spend(&self, before_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM spend WHERE window_start_ms < $1")
            .await
            .db()?;
        client.execute(&stmt, &[&before_ms]).await.db()
    }
}

fn from_row(row: &Row) -> Result<SpendRow, StoreError> {
    let scope: String = row.try_get(0).db()?;
    let id: Vec<u8> = row.try_get(1).db()?;
    let period: String = row.try_get(2).db()?;
    let shown = String::from_utf8_lossy(&id).into_owned();
    let corrupt = |reason: String| StoreError::Corrupt {
        id: format!("spend {scope} {shown}"),
        reason,
    };
    // The names are the ones `as_str` writes, so reading back cannot drift from writing.
    let parsed_scope = [Scope::Key, Scope::Workflow, Scope::Account]
        .into_iter()
        .find(|s| s.as_str() == scope)
        .ok_or_else(|| corrupt(format!("unknown scope {scope:?}")))?;
    let parsed_period = [Period::Day, Period::Week, Period::Month]
        .into_iter()
        .find(|p| p.as_str() == period)
        .ok_or_else(|| corrupt(format!("unknown period {period:?}")))?;
    let id = String::from_utf8(id).map_err(|_| corrupt("id is not UTF-8".into()))?;
    Ok(SpendRow {
        scope: parsed_scope,
        id: id.into(),
        period: parsed_period,
        window_start_ms: row.try_get(3).db()?,
        spent: Money(row.try_get(4).db()?),
    })
}
