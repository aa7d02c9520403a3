//! Versioned schema migrations for the SQLite store, tracked in `PRAGMA user_version`.
//!
//! Append new migrations at the end; never edit one that has shipped.

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: virtual keys, stored as SHA-256 hashes with their scope.
    "CREATE TABLE keys (
        id          TEXT PRIMARY KEY,
        hash        TEXT NOT NULL,
        account     TEXT NOT NULL,
        workflow    TEXT,
        models      TEXT NOT NULL DEFAULT '[]',
        cidrs       TEXT NOT NULL DEFAULT '[]',
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        revoked_at  INTEGER
    ) STRICT;
    CREATE INDEX keys_account ON keys(account);",
];
