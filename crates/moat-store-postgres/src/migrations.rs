//! Versioned schema migrations, run at open inside the store's own schema and tracked in its
//! `schema_version` table.
//!
//! Append new migrations at the end; never edit one that has shipped. The numbering is this
//! backend's own (SQLite's migration 4, the audit log, is this one's 6).

use crate::error::Db;
use crate::schema::Schema;
use moat_store::StoreError;

/// Migration `i` takes the schema from version `i` to `i + 1`. Names are unqualified: every
/// connection's `search_path` is the store's schema.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: virtual keys, stored as SHA-256 hashes with their scope. Ids sort bytewise ("C"), as in
    // the other backends.
    "CREATE TABLE keys (
        id          TEXT COLLATE \"C\" PRIMARY KEY,
        hash        TEXT NOT NULL,
        account     TEXT NOT NULL,
        workflow    TEXT,
        models      TEXT[] NOT NULL DEFAULT '{}',
        cidrs       TEXT[] NOT NULL DEFAULT '{}',
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT,
        revoked_at  BIGINT
    );
    CREATE INDEX keys_account ON keys(account);",
    // 2: settled budget spend, one running total per principal and calendar window, in
    // micro-units. The id is BYTEA because ids are opaque and TEXT cannot hold a NUL byte.
    "CREATE TABLE spend (
        scope           TEXT NOT NULL,
        id              BYTEA NOT NULL,
        period          TEXT NOT NULL,
        window_start_ms BIGINT NOT NULL,
        spent_micros    BIGINT NOT NULL,
        PRIMARY KEY (scope, id, period, window_start_ms)
    );
    CREATE INDEX spend_window ON spend(window_start_ms);",
    // 3: workflows registered at run time, as the JSON spec the admin API takes (TEXT, not
    // JSONB, so the spec comes back as written).
    "CREATE TABLE workflows (
        name        TEXT COLLATE \"C\" PRIMARY KEY,
        spec        TEXT NOT NULL,
        updated_at  BIGINT NOT NULL
    );",
    // 4: admin keys (the admin API's credentials, each with one role), stored as SHA-256 hashes;
    // apart from `keys` so a virtual key can never be looked up as an admin key.
    "CREATE TABLE admin_keys (
        id          TEXT COLLATE \"C\" PRIMARY KEY,
        hash        TEXT NOT NULL,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        revoked_at  BIGINT
    );",
    // 5: key rotation: the hash of the secret a rotation replaced, and until when (Unix seconds,
    // exclusive) it is still accepted. Both NULL, or both set.
    "ALTER TABLE keys ADD COLUMN previous_hash TEXT;
    ALTER TABLE keys ADD COLUMN previous_valid_until BIGINT;",
    // 6: the hash-chained audit log, as SQLite's migration 4. `json` is the sealed record byte for
    // byte: BYTEA, since TEXT cannot hold NUL and JSONB would rewrite it. The free-form strings
    // (request id, key, account, workflow, decision tags) are BYTEA too, so no value can make an
    // append fail; kind and the hex hashes are moat's own, TEXT. Records are never updated, and
    // deleted only behind a checkpoint at or above their seq; checkpoints are never updated or
    // deleted. (The triggers stop moat's own bugs; the hash chain catches anyone else.)
    "CREATE TABLE audit (
        seq         BIGINT PRIMARY KEY,
        ts_ms       BIGINT NOT NULL,
        kind        TEXT NOT NULL,
        request_id  BYTEA NOT NULL,
        key_id      BYTEA,
        account     BYTEA,
        workflow    BYTEA,
        status      INTEGER NOT NULL,
        decisions   BYTEA[] NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL,
        json        BYTEA NOT NULL
    );
    CREATE INDEX audit_ts ON audit(ts_ms);
    CREATE INDEX audit_account ON audit(account, seq);
    CREATE INDEX audit_workflow ON audit(workflow, seq);
    CREATE INDEX audit_key ON audit(key_id, seq);
    CREATE TABLE audit_checkpoints (
        seq     BIGINT PRIMARY KEY,
        hash    TEXT NOT NULL,
        ts_ms   BIGINT NOT NULL,
        json    BYTEA NOT NULL
    );
    CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        RAISE EXCEPTION '%', TG_ARGV[0];
    END $$;
    CREATE FUNCTION audit_refuse_uncovered_delete() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        IF OLD.seq > (SELECT coalesce(max(seq), 0) FROM audit_checkpoints) THEN
            RAISE EXCEPTION 'audit records are dropped only behind a checkpoint';
        END IF;
        RETURN OLD;
    END $$;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_refuse('audit records are append-only');
    CREATE TRIGGER audit_delete_behind_checkpoint BEFORE DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_uncovered_delete();
    CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
        FOR EACH ROW EXECUTE FUNCTION audit_refuse('audit checkpoints are append-only');",
];

/// Creates the schema if needed and applies every migration past its version, all in one
/// transaction under an advisory lock, so replicas opening the same schema at once take turns
/// and a failed migration leaves nothing behind.
pub(crate) async fn migrate(
    client: &mut deadpool_postgres::Client,
    schema: &Schema,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.db()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('moat-migrate:' || $1))",
        &[&schema.name()],
    )
    .await
    .db()?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {q};
         CREATE TABLE IF NOT EXISTS {q}.schema_version (version BIGINT NOT NULL);",
        q = schema.quoted()
    ))
    .await
    .db()?;
    let table = format!("{}.schema_version", schema.quoted());
    let current: i64 = match tx
        .query_opt(&format!("SELECT version FROM {table}"), &[])
        .await
        .db()?
    {
        Some(row) => row.try_get(0).db()?,
        None => {
            tx.execute(&format!("INSERT INTO {table} VALUES (0)"), &[])
                .await
                .db()?;
            0
        }
    };
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        tx.rollback().await.db()?;
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for sql in MIGRATIONS.iter().skip(current.max(0) as usize) {
        tx.batch_execute(sql).await.db()?;
    }
    tx.execute(&format!("UPDATE {table} SET version = $1"), &[&supported])
        .await
        .db()?;
    tx.commit().await.db()
}
