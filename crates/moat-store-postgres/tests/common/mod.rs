//! A throwaway schema per test on the PostgreSQL server at `MOAT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). The database need not be empty: each test gets
//! `moat_test_<unix seconds>_<random>`, dropped when the guard drops (also when the test
//! panics), and schemas such a test left behind over an hour ago are swept at the next start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use moat_store_postgres::{PostgresOptions, PostgresStore, Schema};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The server the tests use.
pub fn url() -> String {
    std::env::var("MOAT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A direct connection, outside any store, for setting up and inspecting.
pub async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is needed for these tests: {e}", url()));
    tokio::spawn(conn);
    client
}

/// A schema of one test's own; dropped with everything in it when this goes.
pub struct TestSchema {
    pub schema: Schema,
}

impl TestSchema {
    /// A fresh schema name (not yet created), after sweeping stale ones.
    pub async fn new() -> Self {
        sweep_stale().await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let name = format!("moat_test_{}_{:016x}", now.as_secs(), rand::random::<u64>());
        Self {
            schema: Schema::new(&name).unwrap(),
        }
    }

    /// Store options for this schema, with a short connect timeout.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            schema: self.schema.clone(),
            max_connections: 4,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// A store opened in this schema.
    pub async fn open(&self) -> PostgresStore {
        PostgresStore::open(&url(), &self.options()).await.unwrap()
    }

    /// The bare schema name.
    pub fn name(&self) -> &str {
        self.schema.name()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside a runtime: clean up on a thread of its own.
        // The test's runtime is blocked below, so its store's connections cannot finish what
        // they hold (an aborted transaction's rollback): end them first, so the drop cannot
        // wait on their locks.
        let sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'moat/{s}';
             SET lock_timeout = '10s';
             DROP SCHEMA IF EXISTS \"{s}\" CASCADE",
            s = self.name()
        );
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Drops `moat_test_<secs>_*` schemas created over an hour ago (left by a killed test run).
async fn sweep_stale() {
    let client = admin().await;
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'moat\\_test\\_%'",
            &[],
        )
        .await
        .unwrap();
    let cutoff = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_sub(3600);
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .strip_prefix("moat_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|secs| secs < cutoff) {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}
