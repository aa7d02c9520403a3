//! Workflows registered at run time: table `workflows` (migration 3).

use crate::error::Db;
use crate::PostgresStore;
use async_trait::async_trait;
use moat_store::{StoreError, WorkflowSpec, WorkflowStore};

#[async_trait]
impl WorkflowStore for PostgresStore {
    async fn put_workflow(&self, spec: &WorkflowSpec, at: i64) -> Result<(), StoreError> {
        let json = serde_json::to_string(spec).map_err(|e| StoreError::Corrupt {
            id: format!("workflow {}", spec.name),
            reason: e.to_string(),
        })?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO workflows (name, spec, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
            )
            .await
            .db()?;
        client
            .execute(&stmt, &[&spec.name, &json, &at])
            .await
            .db()?;
        Ok(())
    }

    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM workflows WHERE name = $1")
            .await
            .db()?;
        Ok(client.execute(&stmt, &[&name]).await.db()? > 0)
    }

    async fn list_workflows(&self) -> Result<Vec<WorkflowSpec>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT name, spec FROM workflows ORDER BY name")
            .await
            .db()?;
        let rows = client.query(&stmt, &[]).await.db()?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get(0).db()?;
                let json: String = row.try_get(1).db()?;
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                    id: format!("workflow {name}"),
                    reason: format!("spec is not a workflow: {e}"),
                })
            })
            .collect()
    }
}
