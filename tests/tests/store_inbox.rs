//! The inbox on both stores: events stored in groups (group commit), deduplicated within a group
//! and against what was stored before; housekeeping prunes handled events and old idempotency
//! records, never queued or leased events, and a pruned delivery key is free again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use threadsmith_bot::store::inbox_writer::InboxWriter;
use threadsmith_bot::store::{self, NewEvent, Pruned, Store};

fn event(key: &str) -> NewEvent {
    NewEvent {
        dedupe_key: key.into(),
        platform: "slack".into(),
        event: format!("{{\"key\":\"{key}\"}}"),
    }
}

async fn groups_are_deduplicated(s: Arc<dyn Store>) {
    assert_eq!(
        s.enqueue_many(&[]).await.unwrap(),
        Vec::<Option<i64>>::new()
    );
    let before = s.enqueue("b", "slack", "{}").await.unwrap().unwrap();
    let ids = s
        .enqueue_many(&[event("a"), event("b"), event("c"), event("a")])
        .await
        .unwrap();
    assert!(ids[0].is_some() && ids[2].is_some(), "{ids:?}");
    assert_eq!(ids[1], None, "stored before");
    assert_eq!(ids[3], None, "earlier in the same group");
    assert!(ids[0] != ids[2] && ids[0] != Some(before));
    assert_eq!(s.inbox_len().await.unwrap(), 3);
    // Stored as given, oldest first.
    let taken = s
        .claim_inbox("slack", "A", Duration::from_secs(30), 10)
        .await
        .unwrap();
    let keys: Vec<_> = taken.iter().map(|i| i.event.clone()).collect();
    assert_eq!(keys, ["{}", "{\"key\":\"a\"}", "{\"key\":\"c\"}"]);

    // Through the writer: 200 concurrent submissions of 150 distinct keys (50 delivered twice),
    // each answered once its group is stored.
    let writer = InboxWriter::start(s.clone(), None);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let writer = writer.clone();
        let key = format!("w{}", i % 150);
        tasks.push(tokio::spawn(
            async move { writer.enqueue(event(&key)).await },
        ));
    }
    let mut new = HashSet::new();
    let mut duplicates = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Some(id) => assert!(new.insert(id), "id {id} given twice"),
            None => duplicates += 1,
        }
    }
    assert_eq!((new.len(), duplicates), (150, 50));
    assert_eq!(s.inbox_len().await.unwrap(), 153);
}

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

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (store::open(&url).await.expect("open SQLite"), dir)
}

async fn postgres() -> Arc<dyn Store> {
    let url = threadsmith_tests::postgres::database().await;
    store::open(&url).await.expect("open PostgreSQL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_on_sqlite() {
    let (s, _dir) = sqlite().await;
    groups_are_deduplicated(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_on_postgres() {
    groups_are_deduplicated(postgres().await).await;
}

#[tokio::test]
async fn pruning_on_sqlite() {
    let (s, _dir) = sqlite().await;
    prunes_only_what_is_handled(s).await;
}

#[tokio::test]
async fn pruning_on_postgres() {
    prunes_only_what_is_handled(postgres().await).await;
}
