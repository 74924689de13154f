//! The chat orchestrator: one place where every chat event is handled.
//!
//! Adapters call [`Bot::submit`] (store in the inbox, deduplicated) and then acknowledge; the
//! loop in [`Bot::run`] takes queued events and handles each on its own task, so that a long
//! task never blocks a click. Every side effect in chat carries an idempotency key (the
//! `effects` table), so a redelivered event or a replay changes nothing.

use std::sync::Arc;
use std::time::Duration;

use threadsmith_runner::{Outcome, Phase, RolloutEvent};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::chat::commands::{self, Command, FixArgs, SlashCommand};
use crate::chat::key_locks;
use crate::chat::{
    ButtonAction, ChatEvent, ChatPort, OutMessage, Platform, Reaction, RolloutLine, StatusView,
    SummaryView, ThreadRef, Via,
};
use crate::pipeline::{self, ProgressSink, Services, TaskEvent, TaskRequest};
use crate::spec::{self, TaskSpec};
use crate::store::inbox_writer::InboxWriter;
use crate::store::journal::Journal;
use crate::store::{ChatTaskLink, NewEvent, StoreError};
use crate::task_id::TaskId;

mod actor;
mod direct;
mod housekeeping;
mod links;
mod record;
mod shutdown;
mod status;
mod supervise;

mod button;
mod plan;
mod questions;
mod recovery;
mod slash;
mod status_message;
mod summary;
mod task;
mod understand;

mod approve;
mod once;
mod retry;

mod outcome_words;
mod running;

mod access;
mod ending;
mod follow_up;
mod keys;
mod progress;
mod repos;
mod thread_queue;
mod thread_read;
mod trigger;
mod worker;
pub use keys::EffectKey;
use progress::Update;
pub use progress::{ChatProgress, waiting_words};
use repos::RepoChoice;

#[cfg(test)]
mod tests;

/// How long the loop lets a burst of events be stored (and acknowledged) before it takes them
/// (see [`InboxWriter::settled`]).
const ACKS_FIRST: Duration = Duration::from_millis(25);

/// What the orchestrator needs to know about its chat platform.
#[derive(Debug, Clone, Default)]
pub struct ChatSettings {
    pub platform: Platform,
    pub bot_user_id: String,
    pub bot_name: String,
    pub slash_command: String,
    pub maintainers: Vec<String>,
    pub maintainer_groups: Vec<String>,
    pub trigger_phrases: Vec<String>,
    pub phrase_channels: Vec<String>,
    pub status_edit_interval: Duration,
}

pub struct Bot {
    svc: Services,
    port: Arc<dyn ChatPort>,
    settings: ChatSettings,
    /// Woken when there may be events to take: stored here, or moved in from the journal.
    wake: Arc<Notify>,
    /// Stores submitted events in group commits (and on SQLite, Slack's through a journal).
    inbox: InboxWriter,
    running: running::RunningTasks,
    /// Serialises side effects with the same idempotency key, so that two handlers at once
    /// post one message (and different keys never wait for each other).
    effect_locks: key_locks::KeyLocks,
    busy_threads: thread_queue::BusyThreads,
    /// Cancelled by [`Bot::hurry`]: stop without the shutdown grace.
    hurry: CancellationToken,
    /// Whether the adapter is connected to the platform (set by the adapter).
    connection: crate::chat::Connection,
    /// Held by the loop while it takes events from the inbox; see [`Bot::stopped_taking`].
    taking: tokio::sync::Mutex<()>,
}

/// An error while handling an event: logged, and the event is marked failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
    #[error("the stored event cannot be read: {0}")]
    BadEvent(String),
}

impl Bot {
    pub fn new(svc: Services, port: Arc<dyn ChatPort>, settings: ChatSettings) -> Arc<Self> {
        let wake = Arc::new(Notify::new());
        // Slack's adapters record events (they ack whatever the answer); Discord's need to know
        // whether an event is new, from the inbox itself.
        let journaled = settings.platform == crate::chat::Platform::Slack;
        let journal = svc.store.inbox_journal_dir().filter(|_| journaled).and_then(|dir| {
            Journal::start(&dir, svc.store.clone(), wake.clone(), svc.config.retention())
                .inspect_err(|e| {
                    tracing::error!(error = %e, dir = %dir.display(), "could not open the inbox's journal; events are committed before they are acknowledged instead");
                })
                .ok()
        });
        let inbox = InboxWriter::start(svc.store.clone(), journal);
        Arc::new(Self {
            svc,
            port,
            settings,
            inbox,
            wake,
            running: running::RunningTasks::default(),
            effect_locks: key_locks::KeyLocks::default(),
            busy_threads: thread_queue::BusyThreads::default(),
            hurry: CancellationToken::new(),
            connection: crate::chat::Connection::default(),
            taking: tokio::sync::Mutex::new(()),
        })
    }

    /// Returns once the loop takes no more events from the inbox, after `shutdown` (the token
    /// given to [`Bot::run`]) was cancelled: a claim under way when it was cancelled has ended
    /// (its events are this process's to finish or hand over), and no other starts. Then the
    /// chat connection can close and events stored from now on are other processes'.
    pub async fn stopped_taking(&self) {
        drop(self.taking.lock().await);
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// The adapter's connection to the platform: the adapter sets it, `/readyz` reads it.
    pub fn connection(&self) -> &crate::chat::Connection {
        &self.connection
    }

    /// Stores an event (unless it is a duplicate delivery) and wakes the loop. Cheap: adapters
    /// call it before they acknowledge. Returns whether the event was new.
    pub async fn submit(&self, dedupe_key: &str, event: &ChatEvent) -> Result<bool, StoreError> {
        let json = serde_json::to_string(event)
            .map_err(|e| StoreError::Corrupt(format!("event not serializable: {e}")))?;
        self.submit_json(dedupe_key, &json).await
    }

    async fn submit_json(&self, dedupe_key: &str, json: &str) -> Result<bool, StoreError> {
        let id = self
            .inbox
            .enqueue(NewEvent {
                dedupe_key: dedupe_key.to_string(),
                platform: self.settings.platform.to_string(),
                event: json.to_string(),
            })
            .await?;
        if id.is_some() {
            self.wake.notify_one();
        }
        Ok(id.is_some())
    }

    /// Handles queued events until `shutdown`: takes them from the shared inbox with a lease
    /// (so that several processes on one database share the work and each event is handled
    /// once), each on its own task; looks for work other processes queued, for cancellations
    /// asked elsewhere and for dead workers' tasks every poll interval.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if let Err(e) = self.svc.ensure_alive().await {
            tracing::error!(error = %e, "could not register this process in the database");
        }
        self.reconcile().await;
        let poll = self.svc.config.poll_interval();
        let lease = self.svc.config.lease();
        let mut last_reconcile = tokio::time::Instant::now();
        let mut housekeeping = housekeeping::Housekeeping::default();
        // What this process takes on at once; the rest stays in the shared queue.
        let slots = Arc::new(tokio::sync::Semaphore::new(
            self.svc.config.concurrent_events(),
        ));
        // The running handlers, waited for (or handed over) when the loop stops.
        let mut handlers = tokio::task::JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            shutdown::reap(&mut handlers);
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            // Acknowledgements first: events still being stored are a burst under way.
            self.inbox.settled(ACKS_FIRST).await;
            let taking = self.taking.lock().await;
            if shutdown.is_cancelled() {
                break;
            }
            let free = slots.available_permits().min(100) as u32;
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                self.svc
                    .store
                    .claim_inbox(
                        self.settings.platform.as_str(),
                        self.svc.worker_id(),
                        lease,
                        free,
                    )
                    .await
            };
            match claimed {
                Ok(items) => {
                    if free > 0 && items.len() == free as usize {
                        self.wake.notify_one();
                    }
                    for item in items {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            // Cannot happen (only this loop takes permits); the lease expires
                            // and the event is taken again.
                            tracing::error!(inbox = item.id, "no slot for a claimed event");
                            continue;
                        };
                        let bot = self.clone();
                        handlers.spawn(async move {
                            // The slot is held while the event is worked on; a task that waits
                            // for a free rollout slot (see `ChatProgress`) or a reply that waits
                            // for the platform's pace (`chat::pace`) gives it back, so that
                            // clicks, other requests and other channels are not stuck behind.
                            let waker = bot.clone();
                            let release = move || {
                                drop(permit);
                                waker.wake.notify_one();
                            };
                            crate::chat::pace::holding(release, bot.clone().handle_item(item))
                                .await;
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not read the inbox"),
            }
            drop(taking);
            self.cancel_requested_elsewhere().await;
            if last_reconcile.elapsed() >= lease / 3 {
                last_reconcile = tokio::time::Instant::now();
                self.reconcile().await;
            }
            housekeeping.run_when_due(&self.svc).await;
            // Timers only enqueue events: expired questions become QuestionExpired.
            let next_expiry = self.expire_questions().await;
            let wait = next_expiry
                .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default())
                .map_or(poll, |w| w.min(poll));
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        self.stop_handlers(handlers).await;
    }

    async fn handle_item(self: Arc<Self>, item: crate::store::InboxItem) {
        if item.attempts > 1 {
            tracing::warn!(
                inbox = item.id,
                attempts = item.attempts,
                "taking over an event whose process stopped before finishing it"
            );
        }
        let (handled, thread) = match serde_json::from_str::<ChatEvent>(&item.event) {
            Ok(event) => {
                let thread = supervise::thread_of_event(&event);
                let actor = actor::stored_actor(&item.event);
                (self.handle_caught(actor, event).await, thread)
            }
            Err(e) => (
                supervise::Handled::Finished(Err(HandleError::BadEvent(e.to_string()))),
                None,
            ),
        };
        let (error, panicked) = match handled {
            supervise::Handled::Finished(Ok(())) => (None, None),
            supervise::Handled::Finished(Err(e)) => {
                tracing::error!(error = %e, inbox = item.id, "handling a chat event failed");
                (Some(e.to_string()), None)
            }
            supervise::Handled::Panicked { trace, message } => {
                tracing::error!(
                    trace,
                    panic = message,
                    inbox = item.id,
                    "a chat event's handler panicked"
                );
                (
                    Some(format!("panicked (trace {trace}): {message}")),
                    Some(trace),
                )
            }
        };
        if self.svc.retired() {
            // Handed over on shutdown: the event stays for the process that takes it again.
            return;
        }
        // Marked before anything is said, so that the event is never taken again.
        if let Err(e) = self.svc.store.finish_inbox(item.id, error.as_deref()).await {
            tracing::error!(error = %e, "could not mark an event handled");
        }
        if let (Some(trace), Some(thread)) = (panicked, thread) {
            self.apologise(item.id, &thread, &trace).await;
        }
    }

    async fn handle(self: &Arc<Self>, event: ChatEvent) -> Result<(), HandleError> {
        match event {
            ChatEvent::Trigger {
                thread,
                message_ts,
                user,
                text,
                via,
            } => self.on_trigger(thread, message_ts, user, text, via).await,
            ChatEvent::Slash {
                platform,
                workspace,
                channel,
                user,
                text,
            } => {
                self.on_slash(platform, workspace, channel, user, text)
                    .await
            }
            ChatEvent::Button {
                thread,
                message_ts: _,
                user,
                action,
                trigger_id,
            } => self.on_button(thread, user, action, trigger_id).await,
            ChatEvent::RetrySubmitted {
                task_id,
                user,
                feedback,
                from,
            } => self.on_retry(task_id, user, feedback, from).await,
            ChatEvent::PlanRevision {
                plan_id,
                user,
                feedback,
            } => self.on_plan_revision(plan_id, user, feedback).await,
            ChatEvent::RepoChosen {
                question_id,
                thread,
                user,
                repo,
            } => self.on_repo_chosen(question_id, thread, user, repo).await,
            ChatEvent::QuestionExpired { question_id } => {
                self.on_question_expired(question_id).await
            }
            ChatEvent::DirectMessage {
                platform,
                channel,
                message_ts,
                user: _,
            } => self.on_direct_message(platform, channel, message_ts).await,
        }
    }
}

/// Untrusted text made inert for a bot-authored message: no mention, link or markup survives
/// on any platform (`<…>` is how Slack and Discord both write mentions and links).
fn inert(text: &str) -> String {
    text.replace('&', "＆").replace('<', "‹").replace('>', "›")
}

/// The thread a stored record (task link, plan, question) belongs to.
/// The claim key of a request made by a message (`None` for a Retry or a plan's Run it, which
/// have their own once-only reservations).
fn request_key(thread: &ThreadRef, trigger_ts: Option<&str>) -> Option<String> {
    trigger_ts.map(|ts| {
        EffectKey::Request {
            platform: &thread.platform,
            channel: &thread.channel,
            ts,
        }
        .as_key()
    })
}

fn thread_of(platform: &str, workspace: &str, channel: &str, thread: &str) -> ThreadRef {
    ThreadRef {
        platform: platform.to_string(),
        workspace: workspace.to_string(),
        channel: channel.to_string(),
        thread: thread.to_string(),
    }
}

/// A task's spec and repository when they do not come from reading the thread.
struct Prepared {
    spec: TaskSpec,
    repo: String,
    base: Option<String>,
    retry_of: Option<String>,
    /// A follow-up round: where it starts. With a trigger message the thread is read again for
    /// the spec (a follow-up mention); without, the spec is the earlier task's (a Retry).
    round: Option<crate::rounds::RoundPlan>,
}
