//! Cancel: stops a running task (the requester's or a maintainer's click), said once.

use super::*;
use crate::store::TaskState;

fn cancel(thread: &ThreadRef, user: &str, task_id: &str) -> ChatEvent {
    World::button(
        thread,
        user,
        ButtonAction::Cancel {
            task_id: task_id.into(),
        },
    )
}

#[tokio::test]
async fn cancel_stops_a_running_task() {
    let w = World::new().await;
    w.tasks.push(Script::UntilCancelled);
    let thread = w.thread("1", "<@UBOT> fix this");
    let handler = w
        .deliver_in_background("ev", World::mention(&thread, "fix this"))
        .await;
    let task_id = w.wait_cancellable().await;
    assert_eq!(
        w.tasks.wait_running(1, PATIENCE).await,
        Some(vec![task_id.clone()])
    );

    // Someone else's click changes nothing.
    w.deliver("other", cancel(&thread, OTHER, &task_id)).await;
    assert!(says(&w.port.ephemerals_to(OTHER)[0], &["can cancel it"]));
    assert!(!handler.is_finished());

    w.deliver("mine", cancel(&thread, REQUESTER, &task_id))
        .await;
    tokio::time::timeout(PATIENCE, handler)
        .await
        .expect("the task stops")
        .unwrap();
    let task = w.bot.svc.store.task(&task_id).await.unwrap().unwrap();
    assert_eq!(task.state, TaskState::Cancelled);
    assert_eq!(
        w.port
            .shown_texts()
            .iter()
            .filter(|t| *t == &format!("Cancelled by <@{REQUESTER}>."))
            .count(),
        1
    );
    let status_ts = w.link(&task_id).await.status_ts.unwrap();
    let status = w.port.shown().into_iter().find(|(ts, _)| *ts == status_ts);
    assert!(
        matches!(&status, Some((_, OutMessage::Status(s))) if s.headline.starts_with("Cancelled") && !s.running),
        "{status:?}"
    );

    // Cancel again: the task is not running any more.
    w.deliver("late", cancel(&thread, REQUESTER, &task_id))
        .await;
    assert_eq!(
        w.port.ephemerals_to(REQUESTER),
        vec!["This task is not running.".to_string()]
    );
    w.settled().await;
}

#[tokio::test]
async fn cancel_of_an_unknown_task_is_answered() {
    let w = World::new().await;
    let thread = w.thread("1", "hello");
    w.deliver("x", cancel(&thread, REQUESTER, "0123abcd")).await;
    assert_eq!(
        w.port.ephemerals_to(REQUESTER),
        vec!["I don't know that task any more.".to_string()]
    );
    w.settled().await;
}
