//! The fast tier: each feature's handler driven in-process — a real [`Bot`] over a temporary
//! SQLite store, a recording chat port and scripted tasks (`crate::testing`); no Docker, git,
//! model or network. Events go through the inbox as the adapters submit them, and each is
//! handled to its end (its task included) before `deliver` returns.

mod approve;
mod cancel;
mod journaled;
mod judge;
mod outcomes;
mod plan;
mod questions;
mod recovery;
mod retry;
mod rounds;
mod slash;
mod status;
mod stopping;
mod supervise;
mod thread_claim;
mod trigger;

use std::sync::Arc;
use std::time::Duration;

use super::{Bot, ChatSettings};
use crate::chat::{ButtonAction, ChatEvent, OutMessage, SummaryView, ThreadRef, Via};
use crate::config::Config;
use crate::store::{ChatTaskLink, TaskRow};
use crate::testing::{BOT_USER, RecordingPort, ScriptedTasks, TestServices};

/// Long enough for a loaded 2-core machine; only a failing test waits this long.
const PATIENCE: Duration = Duration::from_secs(20);

pub(super) const REQUESTER: &str = "UREQ";
pub(super) const OTHER: &str = "UOTHER";

pub(super) struct World {
    pub bot: Arc<Bot>,
    pub port: Arc<RecordingPort>,
    pub tasks: Arc<ScriptedTasks>,
    pub services: TestServices,
}

fn settings() -> ChatSettings {
    ChatSettings {
        platform: crate::chat::Platform::Slack,
        bot_user_id: BOT_USER.into(),
        bot_name: "threadsmith".into(),
        slash_command: "/fix".into(),
        trigger_phrases: vec!["fix this".into()],
        ..ChatSettings::default()
    }
}

impl World {
    pub async fn new() -> Self {
        Self::with(crate::testing::config(), |_| {}).await
    }

    pub async fn with(config: Config, customize: impl FnOnce(&mut ChatSettings)) -> Self {
        let services = TestServices::new(config).await;
        let port = Arc::new(RecordingPort::default());
        let mut settings = settings();
        customize(&mut settings);
        let bot = Bot::new(services.svc.clone(), port.clone(), settings);
        Self {
            bot,
            port,
            tasks: services.tasks.clone(),
            services,
        }
    }

    /// A thread that `REQUESTER` started with `text`; its parent's ts is the thread's.
    pub fn thread(&self, id: &str, text: &str) -> ThreadRef {
        let thread = ThreadRef {
            platform: "slack".into(),
            workspace: "T1".into(),
            channel: "C1".into(),
            thread: format!("{id}.000100"),
        };
        self.port.add_thread(&thread, &[(REQUESTER, text)]);
        thread
    }

    /// `@threadsmith <text>` as the thread's first message, by `REQUESTER`.
    pub fn mention(thread: &ThreadRef, text: &str) -> ChatEvent {
        ChatEvent::Trigger {
            thread: thread.clone(),
            message_ts: thread.thread.clone(),
            user: REQUESTER.into(),
            text: format!("<@{BOT_USER}> {text}"),
            via: Via::Mention,
        }
    }

    pub fn button(thread: &ThreadRef, user: &str, action: ButtonAction) -> ChatEvent {
        ChatEvent::Button {
            thread: thread.clone(),
            message_ts: "9000.000001".into(),
            user: user.into(),
            action,
            trigger_id: Some(format!("trigger-{user}-{}", uuid::Uuid::new_v4().simple())),
        }
    }

    /// Submits an event as an adapter does, then handles what the inbox holds until it is
    /// empty (requeued requests included). Returns whether the event was new.
    pub async fn deliver(&self, key: &str, event: ChatEvent) -> bool {
        let new = self
            .bot
            .submit(key, &event)
            .await
            .expect("the event is stored");
        self.drain().await;
        new
    }

    /// Handles every queued event, each to its end, until none is left.
    pub async fn drain(&self) {
        let svc = &self.bot.svc;
        loop {
            let items = svc
                .store
                .claim_inbox(
                    self.bot.settings.platform.as_str(),
                    svc.worker_id(),
                    svc.config.lease(),
                    100,
                )
                .await
                .expect("the inbox can be read");
            if items.is_empty() {
                return;
            }
            for item in items {
                tokio::time::timeout(PATIENCE, self.bot.clone().handle_item(item))
                    .await
                    .expect("the handler ends");
            }
        }
    }

    /// Submits an event and handles it on its own task (for one that waits, like a running
    /// task), returning once it is stored.
    pub async fn deliver_in_background(
        &self,
        key: &str,
        event: ChatEvent,
    ) -> tokio::task::JoinHandle<()> {
        assert!(self.bot.submit(key, &event).await.expect("stored"));
        let svc = &self.bot.svc;
        let items = svc
            .store
            .claim_inbox(
                self.bot.settings.platform.as_str(),
                svc.worker_id(),
                svc.config.lease(),
                1,
            )
            .await
            .expect("the inbox can be read");
        assert_eq!(items.len(), 1, "the event is queued");
        let item = items.into_iter().next().expect("one item");
        tokio::spawn(self.bot.clone().handle_item(item))
    }

    /// Waits until the status message of a running task shows its Cancel (the task is linked
    /// to its thread by then); its id.
    pub async fn wait_cancellable(&self) -> String {
        let shown = |calls: &[Call]| {
            calls.iter().find_map(|c| match c {
                Call::Update {
                    message: OutMessage::Status(s),
                    ..
                } if s.running => Some(s.task_id.clone()),
                _ => None,
            })
        };
        assert!(
            self.port
                .wait_until(PATIENCE, |calls| shown(calls).is_some())
                .await,
            "the status message never showed a running task"
        );
        shown(&self.port.calls()).expect("shown")
    }

    /// The tasks of the channel, newest first.
    pub async fn tasks_here(&self) -> Vec<TaskRow> {
        self.bot
            .svc
            .store
            .recent_channel_tasks("slack", "C1", 50)
            .await
            .expect("tasks")
    }

    pub async fn link(&self, task_id: &str) -> ChatTaskLink {
        self.bot
            .svc
            .store
            .chat_task(task_id)
            .await
            .expect("the store works")
            .expect("the task is linked to its thread")
    }

    /// The summaries shown now (their latest versions).
    pub fn summaries(&self) -> Vec<SummaryView> {
        self.port
            .shown()
            .into_iter()
            .filter_map(|(_, m)| match m {
                OutMessage::Summary(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// A connection of its own to the test database, for what the `Store` trait does not read.
    async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.services.database_url)
            .await
            .expect("a second connection to the test database")
    }

    /// The state and error of the stored event `key`.
    pub async fn inbox_row(&self, key: &str) -> (String, Option<String>) {
        let pool = self.database().await;
        let row: (String, Option<String>) =
            sqlx::query_as("SELECT state, error FROM inbox WHERE dedupe_key = $1")
                .bind(key)
                .fetch_one(&pool)
                .await
                .expect("the event is in the inbox");
        row
    }

    /// Every event was handled without an error, and the port refused nothing: what a test
    /// ends with unless it expects a failure.
    pub async fn settled(&self) {
        assert_eq!(
            self.port.refusals(),
            Vec::<String>::new(),
            "the platform refused calls"
        );
        let pool = self.database().await;
        let unfinished: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT dedupe_key, state, error FROM inbox WHERE state <> 'done'")
                .fetch_all(&pool)
                .await
                .expect("the inbox can be read");
        assert!(unfinished.is_empty(), "events not handled: {unfinished:?}");
    }

    /// Runs a mention to its end and returns the task it made.
    pub async fn run_mention(&self, id: &str, text: &str) -> (ThreadRef, TaskRow) {
        let thread = self.thread(id, &format!("<@{BOT_USER}> {text}"));
        self.deliver(&format!("ev-{id}"), Self::mention(&thread, text))
            .await;
        let task = self
            .tasks_here()
            .await
            .into_iter()
            .next()
            .expect("a task was made");
        (thread, task)
    }
}

/// The text of an ephemeral or a text message contains all of `words`.
pub(super) fn says(text: &str, words: &[&str]) -> bool {
    words.iter().all(|w| text.contains(w))
}

pub(super) use crate::testing::Call;
pub(super) use crate::testing::Script;
