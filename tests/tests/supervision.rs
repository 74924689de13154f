//! Supervised handlers: a handler that panics frees its event (marked failed, never taken again,
//! not left leased under this process's heartbeat) and the thread is told once, with a trace id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use threadsmith_bot::chat::{
    ChatError, ChatEvent, ChatPort, Form, OutMessage, Reaction, ThreadMessage, ThreadRef, Via,
};
use threadsmith_bot::orchestrator::{Bot, ChatSettings};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A chat port whose first post panics; later posts are recorded.
#[derive(Default)]
struct PanicsOnce {
    posts: Mutex<Vec<OutMessage>>,
    calls: Mutex<u32>,
    posted: Notify,
}

#[async_trait]
impl ChatPort for PanicsOnce {
    async fn post(&self, _: &ThreadRef, message: &OutMessage) -> Result<String, ChatError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        if n == 1 {
            panic!("the first post panics");
        }
        self.posts.lock().unwrap().push(message.clone());
        self.posted.notify_one();
        Ok(format!("ts{n}"))
    }
    async fn update(&self, _: &ThreadRef, _: &str, _: &OutMessage) -> Result<(), ChatError> {
        Ok(())
    }
    async fn ephemeral(&self, _: &ThreadRef, _: &str, _: &str) -> Result<(), ChatError> {
        Ok(())
    }
    async fn react(&self, _: &ThreadRef, _: &str, _: Reaction, _: bool) -> Result<(), ChatError> {
        Ok(())
    }
    async fn read_thread(&self, _: &ThreadRef) -> Result<Vec<ThreadMessage>, ChatError> {
        Ok(Vec::new())
    }
    async fn open_form(&self, _: &str, _: &Form) -> Result<(), ChatError> {
        Ok(())
    }
    async fn upload(&self, _: &ThreadRef, _: &str, _: Vec<u8>, _: &str) -> Result<(), ChatError> {
        Ok(())
    }
    async fn permalink(&self, _: &ThreadRef, _: &str) -> Option<String> {
        None
    }
    async fn in_group(&self, _: &str, _: &str) -> Result<bool, ChatError> {
        Ok(false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_frees_its_event_and_says_so() {
    let env = threadsmith_tests::env(|_| {}).await;
    let port = Arc::new(PanicsOnce::default());
    let settings = ChatSettings {
        platform: threadsmith_bot::chat::Platform::Slack,
        bot_user_id: "UBOT".into(),
        bot_name: "threadsmith".into(),
        slash_command: "/fix".into(),
        status_edit_interval: Duration::ZERO,
        ..ChatSettings::default()
    };
    let bot = Bot::new(env.svc.clone(), port.clone(), settings);
    let thread = ThreadRef {
        platform: "slack".into(),
        workspace: "T1".into(),
        channel: "C1".into(),
        thread: "100.1".into(),
    };
    let event = ChatEvent::Trigger {
        thread,
        message_ts: "100.2".into(),
        user: "U1".into(),
        text: "<@UBOT> help".into(),
        via: Via::Mention,
    };
    assert!(bot.submit("help-1", &event).await.unwrap());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(bot.clone().run(shutdown.clone()));

    tokio::time::timeout(Duration::from_secs(30), port.posted.notified())
        .await
        .expect("the thread is told");
    let posts = port.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let OutMessage::Text(text) = &posts[0] else {
        panic!("a text: {posts:?}");
    };
    assert!(
        text.contains("something went wrong on my side") && text.contains("trace `"),
        "{text}"
    );
    // The event was marked (failed) before the apology: nothing is pending or leased.
    assert_eq!(env.svc.store.inbox_pending().await.unwrap(), 0);
    shutdown.cancel();
    running.await.unwrap();
    // The event is not taken again by a later run either.
    assert_eq!(port.posts.lock().unwrap().len(), 1);
}
