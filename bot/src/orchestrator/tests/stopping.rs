//! Stopping: once the loop says it takes no more events, an event stored is left in the
//! inbox for another process (the graceful shutdown closes the chat connection then).

use super::*;

/// Repeated, because the loop may be anywhere in its round when it is told to stop: waiting
/// for acknowledgements, claiming, or asleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stored_after_the_loop_stopped_taking_is_left_queued() {
    let w = World::new().await;
    for round in 0..50 {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let run = tokio::spawn(w.bot.clone().run(shutdown.clone()));
        // Keep the loop busy: events just stored, which it is woken to claim while it is told
        // to stop (none in every fifth round: the loop is idle then).
        for i in 0..(round % 5) {
            let thread = w.thread(&format!("{round}-{i}"), "hello");
            w.bot
                .submit(
                    &format!("busy-{round}-{i}"),
                    &World::button(
                        &thread,
                        REQUESTER,
                        ButtonAction::Cancel {
                            task_id: "no-such-task".into(),
                        },
                    ),
                )
                .await
                .unwrap();
        }
        shutdown.cancel();
        w.bot.stopped_taking().await;
        let key = format!("late-{round}");
        let thread = w.thread(&format!("late-{round}"), "hello");
        let event = serde_json::to_string(&World::mention(&thread, "fix this")).unwrap();
        w.bot
            .svc
            .store
            .enqueue(&key, "slack", &event)
            .await
            .unwrap()
            .expect("a new event");
        tokio::time::timeout(PATIENCE, run)
            .await
            .expect("the loop stops when asked")
            .unwrap();
        assert_eq!(
            w.inbox_row(&key).await,
            ("queued".to_string(), None),
            "round {round}: the stopping loop took an event stored after it said it stopped"
        );
    }
}
