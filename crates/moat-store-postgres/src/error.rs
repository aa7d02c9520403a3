//! This crate's error, and how driver errors become [`StoreError`]s.

use moat_store::StoreError;

/// What can go wrong opening or using a PostgreSQL store. It reaches callers inside
/// [`StoreError::Backend`], so the rest of moat sees one store error type.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The connection URL could not be parsed.
    #[error("invalid PostgreSQL URL: {}", describe(.0))]
    Url(#[source] tokio_postgres::Error),
    /// The schema name is not a plain lowercase identifier.
    #[error("invalid PostgreSQL schema name {0:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit")]
    Schema(String),
    /// The connection pool could not be built.
    #[error("cannot build the PostgreSQL pool: {0}")]
    Pool(String),
    /// No connection could be had: the server is down, refused us, or the pool timed out.
    #[error("no PostgreSQL connection: {0}")]
    Connect(String),
    /// A statement failed (including a connection lost mid-statement).
    #[error("PostgreSQL: {}", describe(.0))]
    Query(#[source] tokio_postgres::Error),
}

impl From<PostgresError> for StoreError {
    fn from(e: PostgresError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// The driver's message with its cause (the server's own words for a database error), which the
/// driver's `Display` leaves out.
fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Turns driver and pool results into store results (`.db()?`), since neither side's crate
/// lets the other's error convert by `From`.
pub(crate) trait Db<T> {
    /// The result with its error as a [`StoreError`].
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|e| PostgresError::Query(e).into())
    }
}

impl<T> Db<T> for Result<T, deadpool_postgres::PoolError> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|e| {
            let message = match &e {
                deadpool_postgres::PoolError::Backend(pg) => describe(pg),
                other => other.to_string(),
            };
            PostgresError::Connect(message).into()
        })
    }
}
