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
    // 4: the hash-chained audit log (issue 5). `json` is the sealed record, byte for byte; the
    // other columns copy what it says so it can be found. `decisions` is a JSON list of tags,
    // matched exactly through json_each. Records are never updated, and deleted only behind a
    // checkpoint naming a seq at or above theirs; checkpoints are never updated or deleted. (The
    // triggers stop moat's own bugs; the hash chain is what catches anyone else.)
    "CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY,
        ts_ms       INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        request_id  TEXT NOT NULL,
        key_id      TEXT,
        account     TEXT,
        workflow    TEXT,
        status      INTEGER NOT NULL,
        decisions   TEXT NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL,
        json        TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_ts ON audit(ts_ms);
    CREATE INDEX audit_account ON audit(account);
    CREATE INDEX audit_workflow ON audit(workflow);
    CREATE INDEX audit_key ON audit(key_id);
    CREATE TABLE audit_checkpoints (
        seq     INTEGER PRIMARY KEY,
        hash    TEXT NOT NULL,
        ts_ms   INTEGER NOT NULL,
        json    TEXT NOT NULL
    ) STRICT;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    CREATE TRIGGER audit_delete_behind_checkpoint BEFORE DELETE ON audit
    WHEN OLD.seq > (SELECT coalesce(max(seq), 0) FROM audit_checkpoints)
    BEGIN SELECT RAISE(ABORT, 'audit records are dropped only behind a checkpoint'); END;
    CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
    CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;",
    // 5: admin keys (the admin API's credentials, each with one role), stored as SHA-256 hashes;
    // apart from `keys` so a virtual key can never be looked up as an admin key.
    "CREATE TABLE admin_keys (
        id          TEXT PRIMARY KEY,
        hash        TEXT NOT NULL,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    ) STRICT;",
    // 6: key rotation (issue 13): the hash of the secret a rotation replaced, and until when
    // (Unix seconds, exclusive) it is still accepted. Both NULL, or both set.
    "ALTER TABLE keys ADD COLUMN previous_hash TEXT;
    ALTER TABLE keys ADD COLUMN previous_valid_until INTEGER;",
];
