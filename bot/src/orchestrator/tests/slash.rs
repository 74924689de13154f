//! Slash commands: answered privately; a description starts a thread and its task.

use super::*;

fn slash(text: &str) -> ChatEvent {
    ChatEvent::Slash {
        platform: "slack".into(),
        workspace: "T1".into(),
        channel: "C1".into(),
        user: REQUESTER.into(),
        text: text.into(),
    }
}

#[tokio::test]
async fn help_is_answered_privately_with_every_command() {
    let w = World::new().await;
    w.deliver("help", slash("help")).await;
    let answers = w.port.ephemerals_to(REQUESTER);
    assert_eq!(answers.len(), 1);
    assert_eq!(
        answers[0],
        crate::chat::commands::help_text("threadsmith", "/fix")
    );
    assert!(says(&answers[0], &["fix this", "plan", "status"]));
    assert!(w.port.posts().is_empty(), "nothing in the channel");
    w.settled().await;
}

#[tokio::test]
async fn a_description_naming_an_unlisted_repository_is_refused_privately() {
    let w = World::new().await;
    w.deliver("fix", slash("repo=evil/thing the login page is broken"))
        .await;
    let answers = w.port.ephemerals_to(REQUESTER);
    assert_eq!(answers.len(), 1);
    assert!(says(&answers[0], &["`evil/thing` is not one of them"]));
    assert!(w.port.posts().is_empty());
    assert!(w.tasks.requests().is_empty());
    w.settled().await;
}

#[tokio::test]
async fn a_description_opens_a_thread_and_runs_its_task_there() {
    let w = World::new().await;
    w.deliver("fix", slash("the <!channel> login page is broken"))
        .await;
    let calls = w.port.calls();
    let Some(Call::Post {
        thread: top,
        ts,
        message: OutMessage::Text(opening),
    }) = calls.first()
    else {
        panic!("the description is posted first: {calls:?}");
    };
    assert!(top.thread.is_empty(), "at the channel's top level");
    assert!(opening.starts_with(&format!("<@{REQUESTER}> asked: ")));
    assert!(!opening.contains("<!channel>"), "their words made inert");
    let tasks = w.tasks_here().await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        &w.link(&tasks[0].id).await.thread,
        ts,
        "the task is in the new thread"
    );
    assert_eq!(w.summaries().len(), 1);
    w.settled().await;
}

#[tokio::test]
async fn setting_the_channels_repository_is_checked_and_then_used() {
    let w = World::with(
        {
            let mut c = crate::testing::config();
            c.default_repo = None;
            c
        },
        |_| {},
    )
    .await;
    w.deliver("set-evil", slash("repo evil/thing")).await;
    w.deliver("show-none", slash("repo")).await;
    w.deliver("set-web", slash("repo acme/web")).await;
    w.deliver("show-web", slash("repo")).await;
    let answers = w.port.ephemerals_to(REQUESTER);
    assert!(says(&answers[0], &["`evil/thing` is not one of them"]));
    assert!(says(&answers[1], &["no repository yet"]));
    assert!(says(&answers[2], &["now use `acme/web`"]));
    assert_eq!(answers[3], "This channel's repository is `acme/web`.");
    w.run_mention("1", "fix this").await;
    assert_eq!(w.tasks.requests()[0].repo, "acme/web");
    w.settled().await;
}

#[tokio::test]
async fn a_direct_message_is_told_the_bot_works_in_servers() {
    let w = World::new().await;
    let dm = ChatEvent::DirectMessage {
        platform: "slack".into(),
        channel: "D1".into(),
        message_ts: "5.0001".into(),
        user: REQUESTER.into(),
    };
    w.deliver("dm", dm.clone()).await;
    w.deliver("dm-again", dm).await;
    assert_eq!(w.port.posts().len(), 1, "answered once");
    assert!(says(
        &w.port.shown_texts()[0],
        &["I work in servers only", "`@threadsmith`", "`/fix`"]
    ));
    w.settled().await;
}
