//! Reads and updates the key tables share.

use crate::error::Db;
use crate::PostgresStore;
use moat_store::StoreError;
use tokio_postgres::Row;

impl PostgresStore {
    /// The row `sql` (with `$1` = `id`) selects, read by `from_row`.
    pub(crate) async fn one_row<T>(
        &self,
        sql: &str,
        id: &str,
        from_row: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.db()?;
        let row = client.query_opt(&stmt, &[&id]).await.db()?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every row `sql` selects, read by `from_row`.
    pub(crate) async fn all_rows<T>(
        &self,
        sql: &str,
        from_row: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.db()?;
        let rows = client.query(&stmt, &[]).await.db()?;
        rows.iter().map(from_row).collect()
    }

    /// Marks the key `id` of `table` (`keys` or `admin_keys`) revoked at `at`, keeping an earlier
    /// revocation; false if there is no such key.
    pub(crate) async fn revoke(
        &self,
        table: &'static str,
        id: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let sql = format!("UPDATE {table} SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1");
        let stmt = client.prepare_cached(&sql).await.db()?;
        Ok(client.execute(&stmt, &[&id, &at]).await.db()? > 0)
    }
}
