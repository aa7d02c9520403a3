//! [`PostgresStore`]: the pool, how it is opened, and how a call gets a connection.

use crate::error::{Db, PostgresError};
use crate::migrations::migrate;
use crate::schema::Schema;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use moat_store::StoreError;
use std::time::Duration;
use tokio_postgres::NoTls;

/// How a [`PostgresStore`] connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema every table lives in (created at open).
    pub schema: Schema,
    /// Most connections the pool keeps open.
    pub max_connections: usize,
    /// Longest wait for a connection: to open one, or for a busy pool to free one. A call that
    /// waits longer fails with a store error instead of hanging.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: Schema::default(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Keys, spend, workflows, admin keys and the audit log in a PostgreSQL schema, over a pool of
/// connections.
///
/// Every connection starts with `search_path` set to the schema and `application_name` set to
/// `moat/<schema>`, so statements name tables bare and an operator can tell the store's
/// sessions apart in `pg_stat_activity`. Clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    schema: Schema,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        write!(f, "PostgresStore({})", self.schema.name())
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`), creates the schema
    /// if needed and brings it up to date. Fails if the server cannot be reached.
    pub async fn open(url: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(PostgresError::Url)?;
        let schema = options.schema.clone();
        config
            .options(format!("-c search_path={}", schema.name()))
            .application_name(format!("moat/{}", schema.name()))
            .connect_timeout(options.connect_timeout);
        // `Fast` recycling drops a connection whose socket has closed (a restarted server, a
        // terminated backend) when it comes back to the pool, without a round trip per call.
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| PostgresError::Pool(e.to_string()))?;
        let store = Self { pool, schema };
        let mut client = store.client().await?;
        migrate(&mut client, &store.schema).await?;
        Ok(store)
    }

    /// The schema this store lives in.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// A pooled connection; an error (not a wait without end) while the server is away.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.db()
    }
}
