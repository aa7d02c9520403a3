//! The store conformance suite, the same bodies the SQLite and memory backends run, against a
//! real PostgreSQL server; plus what only this backend has (schemas, migrations at open).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestSchema;
use moat_store::{conformance, KeyStore, SpendStore, StoreError};
use moat_store_postgres::{PostgresOptions, PostgresStore, Schema};

#[tokio::test]
async fn postgres_store_passes_the_key_store_suite() {
    let t = TestSchema::new().await;
    conformance::key_store(&t.open().await).await;
}

#[tokio::test]
async fn postgres_store_passes_the_spend_store_suite() {
    let t = TestSchema::new().await;
    conformance::spend_store(&t.open().await).await;
}

#[tokio::test]
async fn postgres_store_passes_the_workflow_store_suite() {
    let t = TestSchema::new().await;
    conformance::workflow_store(&t.open().await).await;
}

#[tokio::test]
async fn postgres_store_passes_the_admin_key_store_suite() {
    let t = TestSchema::new().await;
    conformance::admin_key_store(&t.open().await).await;
}

#[tokio::test]
async fn postgres_store_passes_the_audit_store_suite() {
    let t = TestSchema::new().await;
    conformance::audit_store(&t.open().await).await;
}

#[tokio::test]
async fn all_suites_pass_on_one_store_as_for_sqlite() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    conformance::key_store(&store).await;
    conformance::spend_store(&store).await;
    conformance::workflow_store(&store).await;
    conformance::audit_store(&store).await;
    conformance::admin_key_store(&store).await;
}

#[tokio::test]
async fn reopening_keeps_the_data_and_reruns_no_migration() {
    let t = TestSchema::new().await;
    let key = conformance::sample_key("reopen1", 10);
    t.open().await.insert_key(&key).await.unwrap();
    let rows = conformance::sample_spend();
    t.open().await.save_spend(&rows).await.unwrap();
    let store = t.open().await;
    assert_eq!(store.get_key("reopen1").await.unwrap(), Some(key));
    assert_eq!(
        conformance::sorted(store.load_spend(i64::MIN).await.unwrap()),
        conformance::sorted(rows)
    );
}

#[tokio::test]
async fn two_schemas_in_one_database_do_not_see_each_other() {
    let (a, b) = (TestSchema::new().await, TestSchema::new().await);
    let (sa, sb) = (a.open().await, b.open().await);
    sa.insert_key(&conformance::sample_key("only-in-a", 1))
        .await
        .unwrap();
    assert_eq!(sb.get_key("only-in-a").await.unwrap(), None);
    assert_eq!(sa.list_keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let t = TestSchema::new().await;
    t.open().await;
    common::admin()
        .await
        .batch_execute(&format!(
            "UPDATE \"{}\".schema_version SET version = 99",
            t.name()
        ))
        .await
        .unwrap();
    let refused = PostgresStore::open(&common::url(), &t.options()).await;
    assert!(
        matches!(refused, Err(StoreError::SchemaTooNew { found: 99, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    common::admin()
        .await
        .batch_execute(&format!(
            "INSERT INTO \"{s}\".keys (id, hash, account, created_at) VALUES ('bad', 'nothex', 'a', 0);
             INSERT INTO \"{s}\".spend VALUES ('galaxy', 'w', 'day', 0, 5);",
            s = t.name()
        ))
        .await
        .unwrap();
    assert!(matches!(
        store.get_key("bad").await,
        Err(StoreError::Corrupt { .. })
    ));
    let err = store.load_spend(0).await.unwrap_err();
    assert!(
        err.to_string().contains("spend galaxy w: unknown scope"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_at_open() {
    // Port 1 on loopback: nothing listens, so the connection is refused at once.
    let options = PostgresOptions {
        schema: Schema::new("moat_unreachable").unwrap(),
        ..PostgresOptions::default()
    };
    let err = PostgresStore::open("postgres://postgres@127.0.0.1:1/test", &options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(
        err.to_string().contains("no PostgreSQL connection"),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_url_is_an_error() {
    let err = PostgresStore::open("postgres://[::1", &PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid PostgreSQL URL"), "{err}");
}
