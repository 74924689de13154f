//! Events recorded as Slack's adapters record them: journaled (the test store is a SQLite
//! file), moved into the inbox, woken and handled by the loop; a stop moves what is left and
//! removes the journal.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_events_are_handled_and_the_journal_removed_on_stop() {
    let w = World::new().await;
    let dir = w
        .services
        .svc
        .store
        .inbox_journal_dir()
        .expect("a SQLite file has a journal");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(w.bot.clone().run(shutdown.clone()));
    let thread = w.thread("journaled", "hello");
    let help = World::mention(&thread, "help");
    // Delivered twice, as Slack may: one reply.
    w.bot.record("ev-help", &help).await.unwrap();
    w.bot.record("ev-help", &help).await.unwrap();
    let journals = || std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(journals(), 1, "this process's journal");
    let replied = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| matches!(c, Call::Post { thread: t, .. } if t == &thread))
            .count()
    };
    assert!(
        w.port
            .wait_until(PATIENCE, |calls| replied(calls) >= 1)
            .await,
        "the recorded event was handled: {:?}",
        w.port.calls()
    );
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, run).await.unwrap().unwrap();
    w.bot.drain_inbox(PATIENCE).await;
    assert_eq!(journals(), 0, "removed once everything was moved");
    assert_eq!(w.inbox_row("ev-help").await.0, "done");
    assert_eq!(replied(&w.port.calls()), 1, "one reply for two deliveries");
    assert_eq!(w.services.svc.store.inbox_len().await.unwrap(), 1);
}
