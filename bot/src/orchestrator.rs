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
    ButtonAction, ChatEvent, ChatPort, OutMessage, Reaction, RolloutLine, StatusView, SummaryView,
    ThreadRef, Via,
};
use crate::pipeline::{self, ProgressSink, Services, TaskEvent, TaskRequest};
use crate::spec::{self, TaskSpec};
use crate::store::inbox_writer::InboxWriter;
use crate::store::{ChatTaskLink, NewEvent, StoreError};

mod actor;
mod direct;
mod housekeeping;
mod links;
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

mod approve;
mod once;
mod retry;

mod outcome_words;
mod running;

mod ending;
mod repos;
mod thread_queue;
mod thread_read;
use repos::RepoChoice;

#[cfg(test)]
mod tests;

/// What the orchestrator needs to know about its chat platform.
#[derive(Debug, Clone, Default)]
pub struct ChatSettings {
    pub platform: String,
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
    wake: Notify,
    /// Stores submitted events in group commits.
    inbox: InboxWriter,
    running: running::RunningTasks,
    /// Serialises side effects with the same idempotency key, so that two handlers at once
    /// post one message (and different keys never wait for each other).
    effect_locks: key_locks::KeyLocks,
    busy_threads: thread_queue::BusyThreads,
    /// Cancelled by [`Bot::hurry`]: stop without the shutdown grace.
    hurry: CancellationToken,
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
        let inbox = InboxWriter::start(svc.store.clone());
        Arc::new(Self {
            svc,
            port,
            settings,
            inbox,
            wake: Notify::new(),
            running: running::RunningTasks::default(),
            effect_locks: key_locks::KeyLocks::default(),
            busy_threads: thread_queue::BusyThreads::default(),
            hurry: CancellationToken::new(),
        })
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
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
                platform: self.settings.platform.clone(),
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
            let free = slots.available_permits().min(100) as u32;
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                self.svc
                    .store
                    .claim_inbox(&self.settings.platform, self.svc.worker_id(), lease, free)
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

    /// Cancels this process's tasks whose Cancel was clicked in another process, and those
    /// another process adopted (this one's heartbeat lapsed, so it was taken for dead: the
    /// other has reported the task, and this one must stop rather than finish it twice).
    async fn cancel_requested_elsewhere(&self) {
        let store = &self.svc.store;
        let mut doomed = match store.cancel_requests(self.svc.worker_id()).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "could not read cancellations");
                return;
            }
        };
        for id in self.running.ids() {
            if let Ok(Some(t)) = store.task(&id).await
                && t.worker.as_deref() != Some(self.svc.worker_id())
            {
                tracing::error!(task = %id, worker = ?t.worker, "another process took this task over; stopping it here");
                doomed.push(id);
            }
        }
        self.running.cancel(&doomed);
    }

    /// Whether this process still owns a task (another adopts it when this one's heartbeat
    /// lapses for a lease).
    async fn still_owned(&self, task_id: &str) -> Result<bool, StoreError> {
        Ok(!self.svc.retired()
            && self
                .svc
                .store
                .task(task_id)
                .await?
                .is_some_and(|t| t.worker.as_deref() == Some(self.svc.worker_id())))
    }

    /// Enqueues an expiry for every question past its time; returns when the next one expires.
    async fn expire_questions(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let open = match self.svc.store.open_questions().await {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %e, "could not read open questions");
                return None;
            }
        };
        let now = chrono::Utc::now();
        let mut next = None;
        for q in open
            .into_iter()
            .filter(|q| q.platform == self.settings.platform)
        {
            if q.expires_at <= now {
                let event = ChatEvent::QuestionExpired {
                    question_id: q.id.clone(),
                };
                let key = format!("expire:{}", q.id);
                let Ok(json) = serde_json::to_string(&event) else {
                    continue;
                };
                match self.svc.store.enqueue(&key, &q.platform, &json).await {
                    // Picked up on the next turn of the loop.
                    Ok(Some(_)) => next = Some(now),
                    // Queued before: its handler closes the question.
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "could not enqueue an expiry"),
                }
            } else if next.is_none() {
                next = Some(q.expires_at);
            }
        }
        next
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
            } => self.on_retry(task_id, user, feedback).await,
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

    /// Posts once per `key`, whatever the number of deliveries.
    async fn post_once(
        &self,
        key: &str,
        thread: &ThreadRef,
        message: &OutMessage,
    ) -> Result<String, HandleError> {
        let _guard = self.effect_locks.lock(key).await;
        self.post_claimed(key, thread, message).await
    }

    async fn react_once(&self, thread: &ThreadRef, ts: &str, reaction: Reaction, on: bool) {
        let key = format!("react:{}:{ts}:{reaction:?}:{on}", thread.channel);
        match self.svc.store.record_effect(&key, "").await {
            Ok(true) => {
                if let Err(e) = self.port.react(thread, ts, reaction, on).await {
                    tracing::warn!(error = %e, "could not react");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not record a reaction"),
        }
    }

    async fn may_act(&self, user: &str, link: &ChatTaskLink) -> bool {
        self.may_act_for(user, &link.requester).await
    }

    /// The requester, a maintainer, or a member of a maintainers' group.
    async fn may_act_for(&self, user: &str, requester: &str) -> bool {
        if user == requester || self.settings.maintainers.iter().any(|m| m == user) {
            return true;
        }
        for group in &self.settings.maintainer_groups {
            match self.port.in_group(user, group).await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, group, "could not read a maintainers' group"),
            }
        }
        false
    }

    async fn on_trigger(
        self: &Arc<Self>,
        thread: ThreadRef,
        message_ts: String,
        user: String,
        text: String,
        via: Via,
    ) -> Result<(), HandleError> {
        if user == self.settings.bot_user_id {
            return Ok(());
        }
        let parsed = match via {
            Via::Mention => commands::parse_mention(&text, &self.settings.bot_user_id),
            Via::Phrase => commands::parse_phrase(&text, &self.settings.trigger_phrases).map(Ok),
            Via::Shortcut | Via::Slash => Some(Ok(Command::Fix(FixArgs {
                instructions: (!text.trim().is_empty()).then(|| text.clone()),
                ..FixArgs::default()
            }))),
        };
        let reply_key = format!("reply:{}:{message_ts}", thread.channel);
        let command = match parsed {
            None => return Ok(()),
            Some(Err(e)) => {
                self.post_once(&reply_key, &thread, &OutMessage::Text(e.to_string()))
                    .await?;
                return Ok(());
            }
            Some(Ok(c)) => c,
        };
        if let Command::Fix(args) | Command::Plan(args) = &command
            && let Some(refusal) = self.refuse_named_repo(args)
        {
            self.post_once(&reply_key, &thread, &OutMessage::Text(refusal))
                .await?;
            return Ok(());
        }
        match command {
            Command::Help => {
                let help =
                    commands::help_text(&self.settings.bot_name, &self.settings.slash_command);
                self.post_once(&reply_key, &thread, &OutMessage::Text(help))
                    .await?;
            }
            Command::Status => {
                let text = self.status_text(&thread).await?;
                self.post_once(&reply_key, &thread, &OutMessage::Text(text))
                    .await?;
            }
            Command::Plan(args) => {
                self.propose_plan(thread, Some(message_ts), user, args, None)
                    .await?;
            }
            Command::Fix(args) => {
                if self
                    .svc
                    .store
                    .chat_task_by_trigger(&thread.platform, &thread.channel, &message_ts)
                    .await?
                    .is_some()
                {
                    return Ok(());
                }
                if self
                    .queue_if_busy(&thread, &message_ts, &user, &text, via)
                    .await?
                {
                    return Ok(());
                }
                self.start_task(thread, Some(message_ts), user, args, None)
                    .await?;
            }
        }
        Ok(())
    }

    async fn status_text(&self, thread: &ThreadRef) -> Result<String, HandleError> {
        let tasks = self
            .svc
            .store
            .recent_channel_tasks(&thread.platform, &thread.channel, 20)
            .await?;
        let mut lines = Vec::new();
        for t in tasks {
            lines.push(status::task_line(&t.id, &t.title, t.state.as_str()));
        }
        Ok(if lines.is_empty() {
            "No tasks in this channel yet.".into()
        } else {
            format!("Recent tasks here:\n{}", lines.join("\n"))
        })
    }

    async fn on_retry(
        self: &Arc<Self>,
        task_id: String,
        user: String,
        feedback: String,
    ) -> Result<(), HandleError> {
        let Some(link) = self.svc.store.chat_task(&task_id).await? else {
            return Ok(());
        };
        let thread = thread_of(&link.platform, &link.workspace, &link.channel, &link.thread);
        if !self.may_act(&user, &link).await {
            self.port
                .ephemeral(
                    &thread,
                    &user,
                    "Only the person who asked for this task or a maintainer can retry it.",
                )
                .await?;
            return Ok(());
        }
        // One retry per task, reserved before anything starts.
        if self.svc.store.retry_of(&task_id).await?.is_some()
            || !self
                .svc
                .store
                .record_effect(&format!("retry:{task_id}"), &user)
                .await?
        {
            return self.retry_refused(&thread, &user, &task_id).await;
        }
        let Some(task) = self.svc.store.task(&task_id).await? else {
            return Ok(());
        };
        let mut spec: TaskSpec = task
            .spec_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_else(|| TaskSpec::from_text(&task.spec));
        let feedback = feedback.trim().to_string();
        spec.feedback = (!feedback.is_empty()).then_some(feedback);
        let args = FixArgs {
            attempts: Some(task.attempts),
            ..FixArgs::default()
        };
        self.start_task(
            thread,
            None,
            user,
            args,
            Some(Prepared {
                spec,
                repo: task.repo.clone(),
                base: task.base_ref.clone(),
                retry_of: Some(task_id),
            }),
        )
        .await
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
    trigger_ts.map(|ts| format!("request:{}:{}:{ts}", thread.platform, thread.channel))
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
}

enum Update {
    Created,
    Headline(String),
    Rollouts(Vec<u32>),
    Rollout(u32, String),
    Done(String),
}

/// Pipeline events → status updates (the pipeline stored them before sending).
pub struct ChatProgress {
    tx: mpsc::UnboundedSender<Update>,
}

fn phase_words(phase: &Phase) -> String {
    match phase {
        Phase::Starting => "starting its sandbox".into(),
        Phase::Setup => "running the setup command".into(),
        Phase::Agent { step: 0 } => "agent starting".into(),
        Phase::Agent { step } => format!("agent step {step}"),
        Phase::CollectingDiff => "collecting its diff".into(),
        Phase::Testing => "running the tests".into(),
    }
}

/// "Queued: …" for a task waiting for a slot.
pub fn waiting_words(ahead: u64, running: u64, limit: Option<u32>) -> String {
    let limit = limit
        .map(|l| format!(" (the limit is {l})"))
        .unwrap_or_default();
    let ahead = match ahead {
        0 => "it is next".to_string(),
        1 => "1 task is ahead of it".to_string(),
        n => format!("{n} tasks are ahead of it"),
    };
    let running = match running {
        1 => "1 rollout is running".to_string(),
        n => format!("{n} rollouts are running"),
    };
    format!("Queued: {running}{limit}; {ahead}. It starts by itself.")
}

impl ProgressSink for ChatProgress {
    fn on_event(&self, event: &TaskEvent<'_>) {
        let update = match event {
            TaskEvent::Created { .. } => Update::Created,
            TaskEvent::Preparing { repo } => Update::Headline(format!("Fetching `{repo}`…")),
            TaskEvent::Started {
                base_ref, rollouts, ..
            } => {
                let _ = self.tx.send(Update::Headline(format!(
                    "Running {} rollouts on `{base_ref}`…",
                    rollouts.len()
                )));
                Update::Rollouts(rollouts.to_vec())
            }
            TaskEvent::Rollout(RolloutEvent::Phase { index, phase }) => {
                Update::Rollout(*index, phase_words(phase))
            }
            TaskEvent::Rollout(RolloutEvent::Command { .. }) => return,
            TaskEvent::Rollout(RolloutEvent::Finished { result }) => {
                Update::Rollout(result.index, result.outcome.label().to_string())
            }
            TaskEvent::Waiting {
                ahead,
                running,
                limit,
            } => {
                // A queued task holds no event slot (the queue limits bound how many wait).
                crate::chat::pace::give_back();
                Update::Headline(waiting_words(*ahead, *running, *limit))
            }
            TaskEvent::Failed { error } => Update::Done(format!("Failed: {error}")),
        };
        let _ = self.tx.send(update);
    }
}

impl Drop for ChatProgress {
    fn drop(&mut self) {
        let _ = self.tx.send(Update::Done(ending::DONE.into()));
    }
}
