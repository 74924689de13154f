//! Status: the channel's recent tasks, by mention (in the thread) or command (privately).

use super::*;

#[tokio::test]
async fn status_lists_the_channels_tasks() {
    let w = World::new().await;
    w.deliver(
        "empty",
        ChatEvent::Slash {
            platform: "slack".into(),
            workspace: "T1".into(),
            channel: "C1".into(),
            user: REQUESTER.into(),
            text: "status".into(),
        },
    )
    .await;
    assert_eq!(
        w.port.ephemerals_to(REQUESTER),
        vec!["No tasks in this channel yet.".to_string()]
    );
    let (_, task) = w.run_mention("1", "fix this").await;
    let thread = w.thread("2", "<@UBOT> status");
    w.deliver("status", World::mention(&thread, "status")).await;
    let reply = w
        .port
        .calls()
        .into_iter()
        .rev()
        .find_map(|c| match c {
            Call::Post {
                thread: t,
                message: OutMessage::Text(text),
                ..
            } if t == thread => Some(text),
            _ => None,
        })
        .expect("a reply in the thread");
    assert!(says(&reply, &["Recent tasks here:", &task.id[..8], "done"]));
    w.settled().await;
}

#[tokio::test]
async fn help_by_mention_is_posted_once_in_the_thread() {
    let w = World::new().await;
    let thread = w.thread("1", "<@UBOT> help");
    let event = World::mention(&thread, "help");
    w.deliver("a", event.clone()).await;
    w.deliver("b", event).await;
    let posts = w.port.posts();
    assert_eq!(posts.len(), 1, "one reply for two deliveries: {posts:?}");
    assert!(matches!(&posts[0], OutMessage::Text(t) if t.contains("fix this")));
    w.settled().await;
}
