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
    // 2: settled budget spend, one running total per principal and calendar window, in
    // micro-units; the window start (Unix ms) both names the window and finds old ones to prune.
    "CREATE TABLE spend (
        scope           TEXT NOT NULL,
        id              TEXT NOT NULL,
        period          TEXT NOT NULL,
        window_start_ms INTEGER NOT NULL,
        spent_micros    INTEGER NOT NULL,
        PRIMARY KEY (scope, id, period, window_start_ms)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX spend_window ON spend(window_start_ms);",
    // 3: workflows registered at run time, as the JSON spec the admin API takes.
    "CREATE TABLE workflows (
        name        TEXT PRIMARY KEY,
        spec        TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    ) STRICT;",
];
