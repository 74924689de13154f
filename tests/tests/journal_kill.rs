//! Slack events a `threadsmith serve` process on SQLite acknowledged from its journal, and was
//! killed (SIGKILL) before it could move into the inbox, are moved in and handled by the next
//! process, each once: the real binary against the fake Slack, the database held locked so that
//! the first process can acknowledge (journal) but not store.

use std::time::Duration;

use sqlx::Connection;
use threadsmith_bot::store::journal;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{env, serve_env};

const CHANNEL: &str = "C111";
const ALICE: &str = "U222";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acknowledged_by_a_killed_process_are_handled_by_the_next_once() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    std::fs::write(
        env.dir.path().join("threadsmith.toml"),
        format!("attempts = 1\ndefault_repo = \"{}\"\n", repo.display()),
    )
    .unwrap();
    let url = env.svc.config.database_url();
    // The journal is relative to the process's directory when the URL is.
    let dir = env
        .dir
        .path()
        .join(journal::dir_for(&url).expect("a SQLite file"));

    let first = serve_env(&env, &slack);
    slack.wait_connected().await;
    // From here on the database takes no write: SQLite's write lock is held (WAL: reads go on).
    let mut lock = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();

    let parent = slack.post_as_user(CHANNEL, ALICE, "a thread", None);
    let mut sent = Vec::new();
    for text in ["<@UBOT> help", "<@UBOT> help again"] {
        let ts = slack.post_as_user(CHANNEL, ALICE, text, Some(&parent));
        let payload = slack.app_mention(CHANNEL, ALICE, text, &ts, Some(&parent));
        sent.push(
            slack
                .send_envelope("events_api", payload.clone(), false)
                .await,
        );
        if sent.len() == 1 {
            // Delivered twice, as Slack does when an ack is late.
            sent.push(slack.send_envelope("events_api", payload, false).await);
        }
    }
    for id in &sent {
        slack.ack(id).await;
    }
    // Acknowledged, and durable: in the journal, not in the inbox.
    assert!(
        journal::holds_events(&dir),
        "the acked events are journaled"
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(&mut lock)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the database took no write");

    drop(first); // SIGKILL
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    assert!(
        journal::holds_events(&dir),
        "the killed process's journal is left"
    );

    let mut second = serve_env(&env, &slack);
    let replies = |s: &threadsmith_tests::fake_slack::SlackState| {
        s.thread(CHANNEL, &parent)
            .iter()
            .filter(|m| m.is_bot())
            .count()
    };
    slack
        .wait_until("a reply to each of the two events", |s| replies(s) >= 2)
        .await;
    // Another process's writes to SQLite wake no watcher here (`settle`): polled.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while env.svc.store.inbox_pending().await.unwrap() > 0 || journal::holds_events(&dir) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events left unhandled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        env.svc.store.inbox_len().await.unwrap(),
        2,
        "the redelivery dropped"
    );
    assert_eq!(slack.read(|s| replies(s)), 2, "one reply each");
    assert!(!journal::holds_events(&dir));

    second.terminate();
    assert!(second.wait_exit(Duration::from_secs(60)).await.success());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "both journals are gone: the killed one's recovered, the stopped one's removed"
    );
}
