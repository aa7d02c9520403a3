//! The pool survives its connections being killed (a server restart, a failover, an operator's
//! `pg_terminate_backend`): the call that meets a dead connection may fail, as an error, and the
//! next one succeeds on a fresh connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestSchema;
use moat_store::{conformance, KeyStore, StoreError};
use std::time::Duration;

/// Terminates every session of the store in `schema` and waits until the server has ended them.
async fn kill_sessions(schema: &str) -> i64 {
    let admin = common::admin().await;
    let app = format!("moat/{schema}");
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    for _ in 0..100 {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            return killed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sessions of {schema} outlived pg_terminate_backend");
}

#[tokio::test]
async fn the_pool_recovers_after_its_connections_are_killed() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    let key = conformance::sample_key("survivor", 1);
    store.insert_key(&key).await.unwrap();

    for round in 0..3 {
        let killed = kill_sessions(t.name()).await;
        assert!(
            killed >= 1,
            "round {round}: the store held no connection to kill"
        );
        // The first call may meet the dead connection: an error, never a panic.
        match store.get_key("survivor").await {
            Ok(found) => assert_eq!(found.as_ref(), Some(&key)),
            Err(e) => assert!(matches!(e, StoreError::Backend(_)), "{e:?}"),
        }
        // The next call is served by a fresh connection.
        assert_eq!(store.get_key("survivor").await.unwrap(), Some(key.clone()));
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn concurrent_callers_all_recover_after_a_kill() {
    let t = TestSchema::new().await;
    let store = t.open().await;
    store
        .insert_key(&conformance::sample_key("k", 1))
        .await
        .unwrap();
    // Fill the pool with several connections, then kill them all.
    let warm: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.list_keys().await })
        })
        .collect();
    for w in warm {
        w.await.unwrap().unwrap();
    }
    kill_sessions(t.name()).await;
    // Each dead connection fails at most one call; after the pool's worth of calls all succeed.
    let mut failures = 0;
    for _ in 0..8 {
        if store.get_key("k").await.is_err() {
            failures += 1;
        }
    }
    assert!(failures <= 4, "{failures} calls failed after the kill");
    for _ in 0..4 {
        assert!(store.get_key("k").await.unwrap().is_some());
    }
}
