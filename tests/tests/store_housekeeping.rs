//! Housekeeping on both stores: handled events and old idempotency records are pruned; queued
//! and leased events never are, whatever their age; a pruned delivery key is free again.

use std::sync::Arc;
use std::time::Duration;

use threadsmith_bot::store::{self, Pruned, Store};

async fn prunes_only_what_is_handled(s: Arc<dyn Store>) {
    let lease = Duration::from_secs(30);
    let done = s.enqueue("done", "slack", "{}").await.unwrap().unwrap();
    let failed = s.enqueue("failed", "slack", "{}").await.unwrap().unwrap();
    s.enqueue("leased", "slack", "{}").await.unwrap().unwrap();
    let taken = s.claim_inbox("slack", "A", lease, 3).await.unwrap();
    assert_eq!(taken.len(), 3);
    s.enqueue("queued", "slack", "{}").await.unwrap().unwrap();
    s.finish_inbox(done, None).await.unwrap();
    s.finish_inbox(failed, Some("boom")).await.unwrap();
    assert!(s.record_effect("post:1", "ts1").await.unwrap());

    // Nothing is older than an hour ago.
    let hour = chrono::Duration::hours(1);
    let none = s.prune(chrono::Utc::now() - hour).await.unwrap();
    assert_eq!(none, Pruned::default());
    assert_eq!(s.inbox_len().await.unwrap(), 4);

    // Everything handled is older than an hour from now; queued and leased events stay.
    let pruned = s.prune(chrono::Utc::now() + hour).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            events: 2,
            effects: 1
        }
    );
    assert_eq!(s.inbox_len().await.unwrap(), 2);
    assert_eq!(s.inbox_pending().await.unwrap(), 2);
    assert_eq!(s.effect("post:1").await.unwrap(), None);
    // A pruned key is new again; a kept one is still a duplicate.
    assert!(s.enqueue("done", "slack", "{}").await.unwrap().is_some());
    assert!(s.enqueue("queued", "slack", "{}").await.unwrap().is_none());
    assert!(s.record_effect("post:1", "ts2").await.unwrap());
    // Pruning again finds nothing more to delete among the kept rows.
    let again = s.prune(chrono::Utc::now() - hour).await.unwrap();
    assert_eq!(again, Pruned::default());
}

#[tokio::test]
async fn on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    prunes_only_what_is_handled(store::open(&url).await.expect("open SQLite")).await;
}

#[tokio::test]
async fn on_postgres() {
    let url = threadsmith_tests::postgres::database().await;
    prunes_only_what_is_handled(store::open(&url).await.expect("open PostgreSQL")).await;
}
