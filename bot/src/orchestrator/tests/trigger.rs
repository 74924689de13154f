//! A mention in a thread: acknowledgement, status message, task, summary.

use super::*;
use crate::chat::{Reaction, StatusView};
use crate::store::TaskState;

#[tokio::test]
async fn a_mention_runs_a_task_and_ends_with_a_ranked_summary() {
    let w = World::new().await;
    let (thread, task) = w.run_mention("1", "fix this").await;

    assert_eq!(task.state, TaskState::Done);
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].repo, "acme/api", "the configured default");
    assert_eq!(requests[0].attempts, 2);
    assert_eq!(requests[0].requester.as_deref(), Some(REQUESTER));
    assert_eq!(
        requests[0].task_id.as_ref().map(|t| t.as_str()),
        Some(task.id.as_str())
    );

    // The first thing posted is the status message; it ends saying the task is done.
    let posts = w.port.posts();
    assert!(
        matches!(
            &posts[0],
            OutMessage::Status(StatusView { running: false, .. })
        ),
        "{posts:?}"
    );
    let link = w.link(&task.id).await;
    let status_ts = link
        .status_ts
        .clone()
        .expect("the status message is linked");
    let shown: Vec<_> = w.port.shown();
    let (_, status) = shown.iter().find(|(ts, _)| *ts == status_ts).unwrap();
    match status {
        OutMessage::Status(s) => {
            assert_eq!(s.headline, "Done.");
            assert!(!s.running, "no Cancel on an ended task");
            assert_eq!(s.rollouts.len(), 2);
        }
        other => panic!("the status message became {other:?}"),
    }

    // The summary: ranked, linked, with the patches attached (no public URL is configured).
    let summaries = w.summaries();
    assert_eq!(summaries.len(), 1);
    let summary = &summaries[0];
    assert_eq!(summary.task_id, task.id);
    assert_eq!(summary.error, None);
    assert_eq!(summary.rollouts[0].rank, 1);
    assert_eq!(
        summary.rollouts[0].kind,
        crate::chat::RolloutKind::Succeeded,
        "the passing rollout ranks first"
    );
    assert_eq!(summary.rollouts[1].tests, Some(false));
    assert!(link.summary_ts.is_some());
    assert_eq!(
        w.port.count(|c| matches!(c, Call::Upload { .. })),
        2,
        "one patch per rollout that changed files"
    );

    // 👀 while working, then ✅ in its place.
    assert_eq!(w.port.reactions_on(&thread.thread), vec![Reaction::Done]);
    assert_eq!(w.bot.svc.store.inbox_pending().await.unwrap(), 0);
    w.settled().await;
}

#[tokio::test]
async fn a_redelivered_mention_has_one_effect() {
    let w = World::new().await;
    let thread = w.thread("2", "<@UBOT> fix this");
    let event = World::mention(&thread, "fix this");
    assert!(w.deliver("envelope-1", event.clone()).await);
    let calls = w.port.calls().len();
    // The same delivery again is not even stored.
    assert!(!w.deliver("envelope-1", event.clone()).await);
    // A new envelope for the same message is stored, and does nothing.
    assert!(w.deliver("envelope-2", event).await);
    assert_eq!(w.port.calls().len(), calls, "nothing more was said or done");
    assert_eq!(w.tasks_here().await.len(), 1);
    assert_eq!(w.tasks.requests().len(), 1);
    assert_eq!(w.inbox_row("envelope-2").await, ("done".to_string(), None));
    w.settled().await;
}

#[tokio::test]
async fn the_bots_own_messages_and_chatter_are_ignored() {
    let w = World::new().await;
    let thread = w.thread("3", "hello");
    let mut own = World::mention(&thread, "fix this");
    if let ChatEvent::Trigger { user, .. } = &mut own {
        *user = BOT_USER.into();
    }
    w.deliver("own", own).await;
    // A phrase that is not the trigger phrase.
    let chatter = ChatEvent::Trigger {
        thread: thread.clone(),
        message_ts: thread.thread.clone(),
        user: REQUESTER.into(),
        text: "could someone fix the build?".into(),
        via: Via::Phrase,
    };
    w.deliver("chatter", chatter).await;
    assert!(w.port.calls().is_empty(), "{:?}", w.port.calls());
    assert!(w.tasks_here().await.is_empty());
    w.settled().await;
}

#[tokio::test]
async fn a_refused_task_says_why_in_its_status_and_summary() {
    let w = World::new().await;
    w.tasks.push(Script::Refuse(
        "The repository has no `main` branch.".into(),
    ));
    let (thread, task) = w.run_mention("4", "fix this").await;
    assert_eq!(task.state, TaskState::Failed);
    let link = w.link(&task.id).await;
    let status_ts = link.status_ts.unwrap();
    let status = w
        .port
        .shown()
        .into_iter()
        .find(|(ts, _)| *ts == status_ts)
        .map(|(_, m)| m);
    assert!(
        matches!(&status, Some(OutMessage::Status(s)) if s.headline == "Failed: The repository has no `main` branch."),
        "{status:?}"
    );
    assert_eq!(
        w.summaries()[0].error.as_deref(),
        Some("The repository has no `main` branch.")
    );
    assert_eq!(w.port.reactions_on(&thread.thread), vec![Reaction::Failed]);
    w.settled().await;
}

#[tokio::test]
async fn a_mention_naming_an_unlisted_repository_is_refused_before_anything_is_read() {
    let w = World::new().await;
    let thread = w.thread("5", "<@UBOT> fix this repo=evil/thing");
    w.deliver("ev", World::mention(&thread, "fix this repo=evil/thing"))
        .await;
    let texts = w.port.shown_texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(says(
        &texts[0],
        &[
            "`evil/thing` is not one of them",
            "`acme/api`",
            "`acme/web`"
        ]
    ));
    assert_eq!(w.port.count(|c| matches!(c, Call::ReadThread { .. })), 0);
    assert!(w.tasks_here().await.is_empty());
    w.settled().await;
}

#[tokio::test]
async fn a_repository_the_thread_mentions_is_used() {
    let w = World::new().await;
    let thread = w.thread("6", "the login page at git.example/acme/web is broken");
    w.deliver("ev", World::mention(&thread, "fix this")).await;
    assert_eq!(w.tasks.requests()[0].repo, "acme/web");
    w.settled().await;
}

#[tokio::test]
async fn a_second_request_in_a_busy_thread_waits_and_then_runs() {
    let w = World::new().await;
    w.tasks.push(Script::UntilCancelled);
    let thread = w.thread("7", "<@UBOT> fix this");
    let first = w
        .deliver_in_background("first", World::mention(&thread, "fix this"))
        .await;
    let running = w.wait_cancellable().await;
    let ts = w.port.add_reply(&thread, REQUESTER, "<@UBOT> fix this too");
    let second = ChatEvent::Trigger {
        thread: thread.clone(),
        message_ts: ts,
        user: REQUESTER.into(),
        text: "<@UBOT> fix this too".into(),
        via: Via::Mention,
    };
    w.deliver("second", second).await;
    assert!(
        w.port
            .shown_texts()
            .iter()
            .any(|t| says(t, &["already running in this thread", "queued"])),
        "{:?}",
        w.port.shown_texts()
    );
    assert_eq!(w.tasks.requests().len(), 1, "not started beside the first");

    // The first ends: the queued request goes back to the inbox and runs.
    w.deliver(
        "cancel",
        World::button(
            &thread,
            REQUESTER,
            ButtonAction::Cancel { task_id: running },
        ),
    )
    .await;
    tokio::time::timeout(PATIENCE, first)
        .await
        .unwrap()
        .unwrap();
    w.drain().await;
    assert_eq!(w.tasks.requests().len(), 2);
    assert_eq!(w.summaries().len(), 2);
    w.settled().await;
}
