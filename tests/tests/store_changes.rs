//! The store's own signals (`store::Changes`): a write of the inbox, the effects, the
//! publications or the tasks wakes a waiter at once — this process's writes on both stores, and on PostgreSQL another process's
//! (change notices), which is what lets waits across processes do without polling.

#[macro_use]
mod store_common;
use store_common::*;

use tokio::sync::watch;

/// The time a signal may take: a local write moves it at once, a notice crosses a connection.
const PROMPT: Duration = Duration::from_secs(10);

async fn moves(rx: &mut watch::Receiver<u64>, what: &str) {
    tokio::time::timeout(PROMPT, rx.changed())
        .await
        .unwrap_or_else(|_| panic!("no signal after {what}"))
        .expect("the store is open");
}

async fn local_writes_wake_waiters(s: Arc<dyn Store>) {
    let (mut inbox, mut effects) = (s.inbox_changes(), s.effect_changes());
    let id = s.enqueue("k1", "slack", "{}").await.unwrap().unwrap();
    moves(&mut inbox, "storing an event").await;
    assert_eq!(
        s.claim_inbox("slack", "w", Duration::from_secs(30), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    moves(&mut inbox, "taking an event").await;
    s.finish_inbox(id, None).await.unwrap();
    moves(&mut inbox, "handling an event").await;
    assert_eq!(s.inbox_pending().await.unwrap(), 0);

    assert!(s.record_effect("posted:1", "ts-1").await.unwrap());
    moves(&mut effects, "recording an effect").await;
    assert!(s.claim_request("posting:2", "w").await.unwrap());
    moves(&mut effects, "claiming a post").await;
    s.release_request("posting:2", "w").await.unwrap();
    moves(&mut effects, "giving a post back").await;
    assert!(s.replace_effect("posted:1", "ts-2").await.unwrap());
    moves(&mut effects, "replacing an effect").await;

    let (mut publications, mut tasks) = (s.publication_changes(), s.task_changes());
    s.create_task(&new_task("t1", "U1", "acme/api", 1, "w"))
        .await
        .unwrap();
    moves(&mut tasks, "storing a task").await;
    s.set_task_state("t1", TaskState::Done, None).await.unwrap();
    moves(&mut tasks, "ending a task").await;
    s.approve("t1", 1, "U1").await.unwrap();
    let lease = PublicationLease {
        task_id: "t1",
        rollout: 1,
        branch: "b1",
        attempt: "a1",
        lease_until: chrono::Utc::now().timestamp_millis() + 60_000,
        retry_failed: false,
    };
    assert!(s.lease_publication(&lease).await.unwrap().is_some());
    assert!(
        s.fail_publication("t1", "a1", "the push failed", true)
            .await
            .unwrap()
    );
    moves(&mut publications, "a publication failed").await;
    s.approve("t1", 1, "U1").await.unwrap();
    let retry = PublicationLease {
        attempt: "a2",
        retry_failed: true,
        ..lease
    };
    assert!(s.lease_publication(&retry).await.unwrap().is_some());
    s.complete_publication("t1", "c0ffee", "https://example.com/pull/1", Some(1))
        .await
        .unwrap();
    moves(&mut publications, "a publication completed").await;
}

/// Nothing written, nothing signalled (SQLite: no notice can arrive late from elsewhere).
#[tokio::test]
async fn a_refused_write_signals_nothing_on_sqlite() {
    let (s, _dir) = sqlite().await;
    assert!(s.record_effect("posted:1", "ts-1").await.unwrap());
    assert!(s.enqueue("k1", "slack", "{}").await.unwrap().is_some());
    let (inbox, effects) = (s.inbox_changes(), s.effect_changes());
    assert!(!s.record_effect("posted:1", "again").await.unwrap());
    assert!(!s.replace_effect("posted:1", "ts-1").await.unwrap());
    assert_eq!(s.enqueue("k1", "slack", "{}").await.unwrap(), None);
    assert!(
        s.claim_inbox("other", "w", Duration::from_secs(30), 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!effects.has_changed().unwrap(), "a refused effect");
    assert!(
        !inbox.has_changed().unwrap(),
        "a duplicate or nothing taken"
    );
}

/// Two stores on one database stand for two processes: one's writes wake the other's waiters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_processs_writes_wake_waiters_on_postgres() {
    let url = threadsmith_tests::postgres::database().await;
    let (a, b) = (
        store::open(&url).await.unwrap(),
        store::open(&url).await.unwrap(),
    );
    let (mut inbox, mut effects) = (b.inbox_changes(), b.effect_changes());
    let id = a.enqueue("k1", "slack", "{}").await.unwrap().unwrap();
    moves(&mut inbox, "the other process stored an event").await;
    a.finish_inbox(id, None).await.unwrap();
    moves(&mut inbox, "the other process handled an event").await;
    assert_eq!(b.inbox_pending().await.unwrap(), 0);
    assert!(a.record_effect("posted:1", "ts-1").await.unwrap());
    moves(&mut effects, "the other process recorded a post").await;
    let mut tasks = b.task_changes();
    a.create_task(&new_task("t1", "U1", "acme/api", 1, "w"))
        .await
        .unwrap();
    moves(&mut tasks, "the other process stored a task").await;
    assert_eq!(b.effect("posted:1").await.unwrap().as_deref(), Some("ts-1"));
}

check!(local_writes_wake_waiters);
