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
mod status;
mod supervise;

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

    /// Takes over what dead workers left: a worker on this machine whose process is gone is
    /// retired at once (its leases expire, so its events are taken again); a task whose worker
    /// is not alive (its heartbeat stopped a lease ago) is adopted by this process and, for this
    /// platform's tasks, reported failed in its thread with Retry; its rollouts died with that
    /// process and their containers are removed by owner. Every message has an idempotency key,
    /// so nothing is said twice, whichever process gets there first.
    pub async fn reconcile(&self) {
        if let Err(e) = self.take_over().await {
            tracing::error!(error = %e, "could not look for work left by stopped processes");
        }
    }

    async fn take_over(&self) -> Result<(), StoreError> {
        let store = &self.svc.store;
        let me = self.svc.worker_id();
        let stale = chrono::Utc::now().timestamp_millis() - 86_400_000;
        for w in store.workers().await? {
            if w.id != me && (threadsmith_runner::owner_is_dead(&w.id) || w.alive_until < stale) {
                tracing::info!(worker = %w.id, "a bot process is gone; taking over its work");
                store.retire_worker(&w.id).await?;
            }
        }
        let orphans = store.orphaned_tasks().await?;
        if !orphans.is_empty() {
            // Their rollouts died with their process: remove what it left on this host.
            if let Err(e) = self.svc.runner.docker().remove_orphans().await {
                tracing::warn!(error = %e, "could not remove the containers of a stopped process");
            }
        }
        for task in orphans {
            // A chat task is its platform's orchestrator's to report; others (the CLI's) any.
            let link = store.chat_task(&task.id).await?;
            if link
                .as_ref()
                .is_some_and(|l| l.platform != self.settings.platform)
            {
                continue;
            }
            if !store
                .adopt_task(&task.id, task.worker.as_deref(), me)
                .await?
            {
                continue;
            }
            let thread = link
                .as_ref()
                .map(|l| thread_of(&l.platform, &l.workspace, &l.channel, &l.thread));
            match link {
                // It ended, but the summary never went out: post it now.
                Some(link) if task.state == crate::store::TaskState::Done => {
                    if let Err(e) = self.finish_summary(&link).await {
                        tracing::error!(error = %e, task = %task.id, "could not post a summary left unsent");
                    }
                }
                Some(link) => {
                    if let Err(e) = self.report_interrupted(&link).await {
                        tracing::error!(error = %e, task = %task.id, "could not report an interrupted task");
                    }
                }
                None => {
                    tracing::warn!(task = %task.id, "a task's process stopped; marking it failed");
                    store
                        .set_task_state(
                            &task.id,
                            crate::store::TaskState::Failed,
                            Some("the process running this task stopped"),
                        )
                        .await?;
                }
            }
            // Requests queued behind it in its thread start now.
            if let Some(thread) = thread {
                self.start_next_queued(&thread).await;
            }
        }
        Ok(())
    }

    /// Posts the summary of a task that ended while its process died before posting it.
    async fn finish_summary(&self, link: &ChatTaskLink) -> Result<(), HandleError> {
        tracing::warn!(task = %link.task_id, "posting a summary a stopped process left unsent");
        let thread = thread_of(&link.platform, &link.workspace, &link.channel, &link.thread);
        self.summarise(&thread, &link.task_id, link.trigger_ts.as_deref())
            .await
    }

    /// The end of a task in its thread: the summary, then ✅ (a rollout succeeded) or ❌ on the
    /// request in place of 👀.
    async fn summarise(
        &self,
        thread: &ThreadRef,
        task_id: &str,
        trigger_ts: Option<&str>,
    ) -> Result<(), HandleError> {
        self.post_summary(thread, task_id).await?;
        if let Some(ts) = trigger_ts {
            let ok = self
                .svc
                .store
                .rollouts(task_id)
                .await?
                .iter()
                .any(|r| r.outcome == Some(Outcome::Succeeded));
            self.react_once(thread, ts, Reaction::Working, false).await;
            self.react_once(
                thread,
                ts,
                if ok { Reaction::Done } else { Reaction::Failed },
                true,
            )
            .await;
        }
        Ok(())
    }

    async fn report_interrupted(&self, link: &ChatTaskLink) -> Result<(), HandleError> {
        let task_id = &link.task_id;
        tracing::warn!(task = %task_id, "a task's process stopped before it ended; reporting it failed");
        self.svc
            .store
            .set_task_state(
                task_id,
                crate::store::TaskState::Failed,
                Some("threadsmith stopped while this task was running"),
            )
            .await?;
        let thread = thread_of(&link.platform, &link.workspace, &link.channel, &link.thread);
        let text = "threadsmith stopped (a restart or a crash) while this task was running, so its rollouts were stopped and nothing was pushed. Retry to run it again.".to_string();
        if let Some(ts) = &link.status_ts
            && let Err(e) = self
                .port
                .update(&thread, ts, &OutMessage::Text(format!("Stopped: {text}")))
                .await
        {
            tracing::warn!(error = %e, "could not update the status message");
        }
        self.post_once(
            &format!("interrupted:{task_id}"),
            &thread,
            &OutMessage::RetryOffer {
                task_id: task_id.clone(),
                text,
            },
        )
        .await?;
        if let Some(ts) = &link.trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, false).await;
            self.react_once(&thread, ts, Reaction::Failed, true).await;
        }
        Ok(())
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
        loop {
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
                        tokio::spawn(async move {
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
        for t in self.running.tokens() {
            t.cancel();
        }
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
        Ok(self
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

    /// [`Self::start_task`] (in `thread_queue.rs`) once the request is this process's.
    async fn start_task_inner(
        self: &Arc<Self>,
        thread: ThreadRef,
        trigger_ts: Option<String>,
        user: String,
        args: FixArgs,
        prepared: Option<Prepared>,
    ) -> Result<(), HandleError> {
        let task_id = uuid::Uuid::new_v4().simple().to_string();
        let anchor = trigger_ts.clone().unwrap_or_else(|| task_id.clone());
        // A request is one process's at a time: another live process that took it (this
        // process's lease lapsed, so the event was taken again) keeps it.
        if let Some(key) = request_key(&thread, trigger_ts.as_deref())
            && !self
                .svc
                .store
                .claim_request(&key, self.svc.worker_id())
                .await?
        {
            tracing::warn!(request = %key, "another process is handling this request");
            return Ok(());
        }
        if let Some(ts) = &trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, true).await;
        }
        let status_key = format!("status:{}:{anchor}", thread.channel);
        let status_ts = self
            .post_once(
                &status_key,
                &thread,
                &OutMessage::Status(StatusView {
                    task_id: task_id.clone(),
                    title: "Reading the thread…".into(),
                    headline: "Working on it.".into(),
                    rollouts: Vec::new(),
                    // Cancel shows once the task exists.
                    running: false,
                }),
            )
            .await?;

        let started = self
            .run_started(
                thread.clone(),
                trigger_ts.clone(),
                user,
                args,
                prepared,
                task_id,
                anchor,
                status_ts.clone(),
            )
            .await;
        if let Some(key) = request_key(&thread, trigger_ts.as_deref())
            && let Err(e) = self
                .svc
                .store
                .release_request(&key, self.svc.worker_id())
                .await
        {
            tracing::warn!(error = %e, "could not release a request");
        }
        if let Err(e) = &started {
            // Never leave the thread waiting: say that it stopped, and why in our terms.
            tracing::error!(error = %e, "a task stopped on an internal error");
            let text = "Something went wrong on my side and this task stopped. Try again in a moment; the bot's log has the details.".to_string();
            let _ = self
                .port
                .update(&thread, &status_ts, &OutMessage::Text(text))
                .await;
            if let Some(ts) = &trigger_ts {
                self.react_once(&thread, ts, Reaction::Working, false).await;
                self.react_once(&thread, ts, Reaction::Failed, true).await;
            }
        }
        started
    }

    /// The rest of [`Self::start_task`], once the status message is up.
    #[allow(clippy::too_many_arguments)]
    async fn run_started(
        self: &Arc<Self>,
        thread: ThreadRef,
        trigger_ts: Option<String>,
        user: String,
        args: FixArgs,
        prepared: Option<Prepared>,
        task_id: String,
        anchor: String,
        status_ts: String,
    ) -> Result<(), HandleError> {
        // The spec: given (a Retry, a plan), or from the thread.
        let Prepared {
            spec,
            repo,
            base,
            retry_of,
        } = match prepared {
            Some(p) => {
                // A stored task's or plan's repository is checked again: the allow-list may
                // have changed since, and a stored row is no licence.
                match self.check_repo(p.repo.clone()) {
                    Ok(_) => p,
                    Err(text) => {
                        return self
                            .refuse_in_status(&thread, &status_ts, trigger_ts.as_deref(), text)
                            .await;
                    }
                }
            }
            None => match self
                .understand(
                    &thread,
                    &args,
                    &anchor,
                    &status_ts,
                    trigger_ts.as_deref(),
                    &user,
                    "fix",
                )
                .await?
            {
                Some((spec, repo)) => Prepared {
                    spec,
                    repo,
                    base: args.base.clone(),
                    retry_of: None,
                },
                None => return Ok(()),
            },
        };
        // Reading the thread takes a while: a process that lost the request meanwhile stops
        // before it starts a task the other process starts too.
        if let Some(key) = request_key(&thread, trigger_ts.as_deref())
            && self.svc.store.effect(&key).await?.as_deref() != Some(self.svc.worker_id())
        {
            tracing::warn!(request = %key, "another process took this request over");
            return Ok(());
        }
        let feedback = spec.feedback.clone();
        let cancel = CancellationToken::new();
        self.running.insert(task_id.clone(), cancel.clone());
        let link = ChatTaskLink {
            task_id: task_id.clone(),
            platform: thread.platform.clone(),
            workspace: thread.workspace.clone(),
            channel: thread.channel.clone(),
            thread: thread.thread.clone(),
            trigger_ts: trigger_ts.clone(),
            requester: user.clone(),
            status_ts: Some(status_ts.clone()),
            summary_ts: None,
            retry_of: retry_of.clone(),
            feedback: feedback.clone(),
        };
        let (sink, editor) =
            self.status_editor(thread.clone(), status_ts.clone(), link, spec.title.clone());
        let request = TaskRequest {
            text: spec.problem.clone(),
            repo,
            base,
            attempts: args.attempts.unwrap_or(self.svc.config.attempts()),
            origin: thread.platform.clone(),
            requester: Some(user.clone()),
            spec: Some(spec),
            task_id: Some(task_id.clone()),
        };
        let report = pipeline::run_task(&self.svc, request, &sink, cancel).await;
        drop(sink);
        let _ = editor.await;
        self.running.remove(&task_id);
        report?;
        if !self.still_owned(&task_id).await? {
            // Reported by the process that took it over; saying more would contradict it.
            return Ok(());
        }
        self.summarise(&thread, &task_id, trigger_ts.as_deref())
            .await
    }

    /// Reads the thread and makes the spec (the model's, or the plain thread when the model
    /// fails, saying so), and picks the repository. `None` when no repository could be chosen:
    /// the status message then says how to name one.
    #[allow(clippy::too_many_arguments)]
    async fn understand(
        &self,
        thread: &ThreadRef,
        args: &FixArgs,
        anchor: &str,
        status_ts: &str,
        trigger_ts: Option<&str>,
        requester: &str,
        kind: &str,
    ) -> Result<Option<(TaskSpec, String)>, HandleError> {
        let messages = self.port.read_thread(thread).await?;
        let (pairs, withheld) = thread_read::transcript_pairs(&messages);
        if withheld {
            let key = format!("withheld:{}:{anchor}", thread.channel);
            let text = self.port.hidden_messages_notice();
            self.post_once(&key, thread, &OutMessage::Text(text))
                .await?;
        }
        let transcript = spec::transcript(&pairs, 60_000);
        let spec = match self.model() {
            Some(model) => {
                match spec::from_thread(&model, &transcript, args.instructions.as_deref()).await {
                    Ok(spec) => spec,
                    Err(why) => {
                        // The reason is for the operator (it may quote the endpoint).
                        tracing::warn!(error = %why, "the model could not summarise a thread");
                        let key = format!("specfallback:{}:{anchor}", thread.channel);
                        let text = "I could not summarise the thread with the model; the agents get the thread as it is.";
                        self.post_once(&key, thread, &OutMessage::Text(text.into()))
                            .await?;
                        let title = self.port.thread_title(thread).await;
                        spec::plain_from_thread(
                            &transcript,
                            args.instructions.as_deref(),
                            title.as_deref(),
                        )
                    }
                }
            }
            None => {
                let title = self.port.thread_title(thread).await;
                spec::plain_from_thread(&transcript, args.instructions.as_deref(), title.as_deref())
            }
        };
        match self
            .resolve_repo(args.repo.as_deref(), thread, &transcript)
            .await?
        {
            RepoChoice::Use(repo) => Ok(Some((spec, repo))),
            RepoChoice::Refused(text) => {
                self.refuse_in_status(thread, status_ts, trigger_ts, text)
                    .await?;
                Ok(None)
            }
            RepoChoice::Unknown if !self.svc.config.repos.is_empty() => {
                // Ask, with a menu of the configured repositories; the request waits.
                let timeout = self.svc.config.question_timeout_secs.unwrap_or(15 * 60);
                let question = crate::store::Question {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    platform: thread.platform.clone(),
                    workspace: thread.workspace.clone(),
                    channel: thread.channel.clone(),
                    thread: thread.thread.clone(),
                    trigger_ts: trigger_ts.map(String::from),
                    requester: requester.to_string(),
                    kind: kind.to_string(),
                    instructions: args.instructions.clone(),
                    base_ref: args.base.clone(),
                    attempts: args.attempts,
                    message_ts: Some(status_ts.to_string()),
                    expires_at: chrono::Utc::now()
                        + chrono::Duration::seconds(i64::try_from(timeout).unwrap_or(900)),
                };
                self.svc.store.ask(&question).await?;
                self.wake.notify_one();
                let view = crate::chat::RepoQuestionView {
                    question_id: question.id,
                    requester: requester.to_string(),
                    repos: self
                        .svc
                        .config
                        .repos
                        .iter()
                        .map(|r| r.name.clone())
                        .collect(),
                };
                self.port
                    .update(thread, status_ts, &OutMessage::RepoQuestion(view))
                    .await?;
                Ok(None)
            }
            RepoChoice::Unknown => {
                let text = format!(
                    "Which repository? Say `@{} fix this repo=owner/name`, or set this channel's default with `{} repo owner/name`.",
                    self.settings.bot_name, self.settings.slash_command
                );
                self.port
                    .update(thread, status_ts, &OutMessage::Text(text))
                    .await?;
                if let Some(ts) = trigger_ts {
                    self.react_once(thread, ts, Reaction::Working, false).await;
                }
                Ok(None)
            }
        }
    }

    fn model(&self) -> Option<threadsmith_runner::ModelClient> {
        self.svc
            .config
            .model_config()
            .and_then(|m| threadsmith_runner::ModelClient::new(m).ok())
    }

    /// "@threadsmith plan": the spec and a plan, posted with Run it and Revise; nothing runs
    /// until someone allowed says so. A revision starts from the earlier plan and its feedback.
    async fn propose_plan(
        self: &Arc<Self>,
        thread: ThreadRef,
        trigger_ts: Option<String>,
        user: String,
        args: FixArgs,
        revision: Option<(crate::store::Plan, String)>,
    ) -> Result<(), HandleError> {
        let anchor = match (&trigger_ts, &revision) {
            (Some(ts), _) => ts.clone(),
            (None, Some((p, _))) => format!("revise-{}", p.id),
            (None, None) => uuid::Uuid::new_v4().simple().to_string(),
        };
        let Some(model) = self.model() else {
            self.post_once(
                &format!("reply:{}:{anchor}", thread.channel),
                &thread,
                &OutMessage::Text(
                    "Planning needs the model endpoint, and none is configured.".into(),
                ),
            )
            .await?;
            return Ok(());
        };
        if let Some(ts) = &trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, true).await;
        }
        let status_ts = self
            .post_once(
                &format!("plan-status:{}:{anchor}", thread.channel),
                &thread,
                &OutMessage::Text("Reading the thread to make a plan…".into()),
            )
            .await?;
        let (spec, repo, base, attempts, earlier) = match &revision {
            Some((old, feedback)) => {
                let spec = serde_json::from_str::<TaskSpec>(&old.spec_json)
                    .unwrap_or_else(|_| TaskSpec::from_text(&old.plan));
                (
                    spec,
                    old.repo.clone(),
                    old.base_ref.clone(),
                    old.attempts,
                    Some((old.plan.clone(), feedback.clone())),
                )
            }
            None => match self
                .understand(
                    &thread,
                    &args,
                    &anchor,
                    &status_ts,
                    trigger_ts.as_deref(),
                    &user,
                    "plan",
                )
                .await?
            {
                Some((spec, repo)) => (spec, repo, args.base.clone(), args.attempts, None),
                None => return Ok(()),
            },
        };
        let text = match spec::plan(
            &model,
            &spec,
            earlier.as_ref().map(|(p, f)| (p.as_str(), f.as_str())),
        )
        .await
        {
            Ok(text) => text,
            Err(why) => {
                tracing::warn!(error = %why, "the model could not make a plan");
                self.port
                    .update(
                        &thread,
                        &status_ts,
                        &OutMessage::Text(format!(
                            "I could not make a plan with the model. Say `@{} fix this` to run the agents without one.",
                            self.settings.bot_name
                        )),
                    )
                    .await?;
                return Ok(());
            }
        };
        let plan = crate::store::Plan {
            id: uuid::Uuid::new_v4().simple().to_string(),
            platform: thread.platform.clone(),
            workspace: thread.workspace.clone(),
            channel: thread.channel.clone(),
            thread: thread.thread.clone(),
            trigger_ts: trigger_ts.clone(),
            requester: revision
                .as_ref()
                .map_or(user.clone(), |(old, _)| old.requester.clone()),
            repo: repo.clone(),
            base_ref: base,
            attempts,
            spec_json: serde_json::to_string(&spec).unwrap_or_default(),
            plan: text.clone(),
            revises: revision.as_ref().map(|(old, _)| old.id.clone()),
        };
        self.svc.store.create_plan(&plan).await?;
        self.port
            .update(
                &thread,
                &status_ts,
                &OutMessage::Plan(crate::chat::PlanView {
                    plan_id: plan.id.clone(),
                    title: spec.title.clone(),
                    plan: text,
                    repo,
                }),
            )
            .await?;
        if let Some(ts) = &trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, false).await;
        }
        Ok(())
    }

    /// The sink given to the pipeline, and the task that edits the status message from it:
    /// edits are coalesced (at most one per interval), the last state is always written.
    fn status_editor(
        self: &Arc<Self>,
        thread: ThreadRef,
        status_ts: String,
        link: ChatTaskLink,
        title: String,
    ) -> (ChatProgress, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
        let bot = self.clone();
        let interval = self.settings.status_edit_interval;
        let handle = tokio::spawn(async move {
            let mut view = StatusView {
                task_id: link.task_id.clone(),
                title,
                headline: "Preparing the repository…".into(),
                rollouts: Vec::new(),
                running: true,
            };
            let mut last_sent: Option<StatusView> = None;
            let mut open = true;
            while open {
                // Take everything that is waiting, then write the state once.
                match rx.recv().await {
                    None => open = false,
                    Some(u) => bot.apply(&mut view, u, &link).await,
                }
                while let Ok(u) = rx.try_recv() {
                    bot.apply(&mut view, u, &link).await;
                }
                if last_sent.as_ref() != Some(&view) {
                    if let Err(e) = bot
                        .port
                        .update(&thread, &status_ts, &OutMessage::Status(view.clone()))
                        .await
                    {
                        tracing::warn!(error = %e, "could not edit the status message");
                    }
                    last_sent = Some(view.clone());
                    if open && !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                }
            }
        });
        (ChatProgress { tx }, handle)
    }

    async fn apply(&self, view: &mut StatusView, update: Update, link: &ChatTaskLink) {
        match update {
            Update::Created => {
                if let Err(e) = self.svc.store.link_chat_task(link).await {
                    tracing::error!(error = %e, "could not link the task to its thread");
                } else if let Some(previous) = &link.retry_of {
                    self.show_retried(previous).await;
                }
            }
            Update::Headline(h) => view.headline = h,
            Update::Rollouts(ks) => {
                view.rollouts = ks
                    .into_iter()
                    .map(|k| (k, "starting".to_string()))
                    .collect();
            }
            Update::Rollout(k, text) => {
                if let Some(entry) = view.rollouts.iter_mut().find(|(i, _)| *i == k) {
                    entry.1 = text;
                }
            }
            Update::Done(text) => {
                // The first end wins: "Failed: …" is not overwritten by the final "Done.".
                if view.running {
                    view.headline = self.final_headline(&link.task_id, text).await;
                }
                view.running = false;
            }
        }
    }

    async fn post_summary(&self, thread: &ThreadRef, task_id: &str) -> Result<(), HandleError> {
        let view = self.summary_view(task_id).await?;
        if self.svc.config.public_url.is_none() {
            for r in &view.rollouts {
                let key = format!("upload:{task_id}:{}", r.index);
                if r.files > 0
                    && self.svc.store.effect(&key).await?.is_none()
                    && let Some(diff) = self.svc.store.diff(task_id, r.index).await?
                {
                    // A patch that cannot be attached must not hold back the summary.
                    match self
                        .port
                        .upload(
                            thread,
                            &format!("rollout-{}.patch", r.index),
                            diff.patch.into_bytes(),
                            &format!("Rollout {} — {}", r.index, r.outcome),
                        )
                        .await
                    {
                        Ok(()) => {
                            self.svc.store.record_effect(&key, "").await?;
                        }
                        Err(e) => tracing::warn!(error = %e, "could not attach a patch"),
                    }
                }
            }
        }
        let fresh = self
            .svc
            .store
            .effect(&format!("summary:{task_id}"))
            .await?
            .is_none();
        let message = OutMessage::Summary(view);
        let ts = self
            .post_once(&format!("summary:{task_id}"), thread, &message)
            .await?;
        if fresh {
            self.summary_shown(task_id, &ts, &message).await?;
        }
        self.svc.store.set_summary_ts(task_id, &ts).await?;
        // The task page links back to the thread.
        let key = format!("permalink:{task_id}");
        if self.svc.store.effect(&key).await?.is_none()
            && let Some(link) = self.port.permalink(thread, &ts).await
        {
            self.svc.store.record_effect(&key, &link).await?;
        }
        Ok(())
    }

    /// The summary as stored now (rank order, approval, the task it retries).
    pub async fn summary_view(&self, task_id: &str) -> Result<SummaryView, HandleError> {
        let report = pipeline::report(self.svc.store.as_ref(), task_id).await?;
        let link = self.svc.store.chat_task(task_id).await?;
        let approval = self.svc.store.approval(task_id).await?;
        let mut previous = None;
        if let Some(prev) = link.as_ref().and_then(|l| l.retry_of.clone())
            && let Some(prev_link) = self.svc.store.chat_task(&prev).await?
            && let Some(ts) = prev_link.summary_ts.or(prev_link.status_ts)
        {
            let thread = thread_of(
                &prev_link.platform,
                &prev_link.workspace,
                &prev_link.channel,
                &prev_link.thread,
            );
            previous = self.port.permalink(&thread, &ts).await;
        }
        let pages = match &self.svc.config.public_url {
            Some(u) => Some(crate::web::task_url(
                u,
                &self.svc.store.web_token(task_id).await?,
            )),
            None => None,
        };
        let published = self
            .svc
            .store
            .publication(task_id)
            .await?
            .filter(|p| p.state == "published")
            .and_then(|p| {
                let label = match p.pr_number {
                    Some(n) => format!("pull request #{n}"),
                    None => format!("branch {}", p.branch),
                };
                p.url.map(|u| (u, label))
            });
        let rollouts = report
            .rollouts
            .iter()
            .map(|r| RolloutLine {
                index: r.index,
                rank: r.rank.unwrap_or(0),
                outcome: outcome_words::outcome_words(r),
                succeeded: r.outcome == Some(Outcome::Succeeded),
                tests: r.test.as_ref().map(|t| t.passed),
                added: r.lines_added,
                removed: r.lines_removed,
                files: r.files_changed,
                summary: r
                    .summary
                    .clone()
                    .filter(|s| !s.trim().is_empty())
                    .or(r.detail.clone())
                    .unwrap_or_default(),
                diff_link: pages
                    .as_ref()
                    .map(|base| format!("{base}/rollouts/{}", r.index)),
                network: r.network.clone(),
            })
            .collect();
        Ok(SummaryView {
            task_id: task_id.to_string(),
            title: report.task.title.clone(),
            rollouts,
            approved: approval.map(|a| (a.rollout, a.approved_by)),
            published,
            previous,
            feedback: link.and_then(|l| l.feedback),
            error: report.task.error.clone(),
            retried: self.svc.store.retry_of(task_id).await?.map(|l| l.task_id),
        })
    }

    async fn on_button(
        self: &Arc<Self>,
        thread: ThreadRef,
        user: String,
        action: ButtonAction,
        trigger_id: Option<String>,
    ) -> Result<(), HandleError> {
        let task_id = match &action {
            ButtonAction::Approve { task_id, .. }
            | ButtonAction::Retry { task_id }
            | ButtonAction::Cancel { task_id } => task_id.clone(),
            ButtonAction::RunPlan { plan_id } | ButtonAction::RevisePlan { plan_id } => {
                return self
                    .on_plan_button(thread, user, action.clone(), plan_id.clone(), trigger_id)
                    .await;
            }
        };
        let Some(link) = self.svc.store.chat_task(&task_id).await? else {
            self.port
                .ephemeral(&thread, &user, "I don't know that task any more.")
                .await?;
            return Ok(());
        };
        if !self.may_act(&user, &link).await {
            let what = match action {
                ButtonAction::Approve { .. } => "approve",
                ButtonAction::Retry { .. } => "retry",
                ButtonAction::Cancel { .. } => "cancel",
                ButtonAction::RunPlan { .. } | ButtonAction::RevisePlan { .. } => "change",
            };
            self.port
                .ephemeral(
                    &thread,
                    &user,
                    &format!(
                        "Only the person who asked for this task or a maintainer can {what} it."
                    ),
                )
                .await?;
            return Ok(());
        }
        match action {
            ButtonAction::Approve { task_id, rollout } => {
                self.on_approve(thread, &link, user, task_id, rollout)
                    .await?;
            }
            ButtonAction::Retry { task_id } => {
                if let Some(retry) = self.svc.store.retry_of(&task_id).await? {
                    self.port
                        .ephemeral(
                            &thread,
                            &user,
                            &format!(
                                "This task was retried already (task `{}`).",
                                crate::short_id::short_id(&retry.task_id)
                            ),
                        )
                        .await?;
                    return Ok(());
                }
                if let Some(trigger) = trigger_id {
                    self.port
                        .open_form(&trigger, &crate::chat::Form::Retry { task_id })
                        .await?;
                }
            }
            ButtonAction::RunPlan { .. } | ButtonAction::RevisePlan { .. } => {}
            ButtonAction::Cancel { task_id } => {
                let token = self.running.get(&task_id);
                match token {
                    Some(t) => {
                        t.cancel();
                        self.post_once(
                            &format!("cancelled:{task_id}"),
                            &thread,
                            &OutMessage::Text(format!("Cancelled by <@{user}>.")),
                        )
                        .await?;
                    }
                    // Another process runs it (several share the database): ask it.
                    None if self.svc.store.request_cancel(&task_id).await? => {
                        self.post_once(
                            &format!("cancelled:{task_id}"),
                            &thread,
                            &OutMessage::Text(format!("Cancelled by <@{user}>.")),
                        )
                        .await?;
                    }
                    None => {
                        self.port
                            .ephemeral(&thread, &user, "This task is not running.")
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_plan_button(
        self: &Arc<Self>,
        thread: ThreadRef,
        user: String,
        action: ButtonAction,
        plan_id: String,
        trigger_id: Option<String>,
    ) -> Result<(), HandleError> {
        let Some(plan) = self.svc.store.plan(&plan_id).await? else {
            self.port
                .ephemeral(&thread, &user, "I don't know that plan any more.")
                .await?;
            return Ok(());
        };
        if !self.may_act_for(&user, &plan.requester).await {
            self.port
                .ephemeral(
                    &thread,
                    &user,
                    "Only the person who asked for this plan or a maintainer can run or revise it.",
                )
                .await?;
            return Ok(());
        }
        match action {
            ButtonAction::RevisePlan { .. } => {
                if let Some(trigger) = trigger_id {
                    self.port
                        .open_form(&trigger, &crate::chat::Form::RevisePlan { plan_id })
                        .await?;
                }
            }
            _ => {
                if !self
                    .svc
                    .store
                    .record_effect(&format!("runplan:{plan_id}"), &user)
                    .await?
                {
                    self.port
                        .ephemeral(&thread, &user, "This plan is already running.")
                        .await?;
                    return Ok(());
                }
                let mut spec = serde_json::from_str::<TaskSpec>(&plan.spec_json)
                    .unwrap_or_else(|_| TaskSpec::from_text(&plan.plan));
                spec.plan = Some(plan.plan.clone());
                let thread =
                    thread_of(&plan.platform, &plan.workspace, &plan.channel, &plan.thread);
                let args = FixArgs {
                    attempts: plan.attempts,
                    ..FixArgs::default()
                };
                self.start_task(
                    thread,
                    None,
                    plan.requester.clone(),
                    args,
                    Some(Prepared {
                        spec,
                        repo: plan.repo.clone(),
                        base: plan.base_ref.clone(),
                        retry_of: None,
                    }),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn on_repo_chosen(
        self: &Arc<Self>,
        question_id: String,
        thread: ThreadRef,
        user: String,
        repo: String,
    ) -> Result<(), HandleError> {
        let Some(q) = self.svc.store.question(&question_id).await? else {
            return Ok(());
        };
        if user != q.requester {
            self.port
                .ephemeral(
                    &thread,
                    &user,
                    &format!("Only <@{}> can answer this.", q.requester),
                )
                .await?;
            return Ok(());
        }
        if !self.svc.config.repos.iter().any(|r| r.name == repo) {
            return Ok(());
        }
        if !self
            .svc
            .store
            .close_question(&question_id, "answered")
            .await?
        {
            return Ok(());
        }
        let thread = thread_of(&q.platform, &q.workspace, &q.channel, &q.thread);
        let args = FixArgs {
            instructions: q.instructions.clone(),
            repo: Some(repo),
            base: q.base_ref.clone(),
            attempts: q.attempts,
        };
        if q.kind == "plan" {
            self.propose_plan(
                thread,
                q.trigger_ts.clone(),
                q.requester.clone(),
                args,
                None,
            )
            .await
        } else {
            self.start_task(
                thread,
                q.trigger_ts.clone(),
                q.requester.clone(),
                args,
                None,
            )
            .await
        }
    }

    async fn on_question_expired(&self, question_id: String) -> Result<(), HandleError> {
        let Some(q) = self.svc.store.question(&question_id).await? else {
            return Ok(());
        };
        if !self
            .svc
            .store
            .close_question(&question_id, "expired")
            .await?
        {
            return Ok(());
        }
        let thread = thread_of(&q.platform, &q.workspace, &q.channel, &q.thread);
        let text = format!(
            "No repository was chosen, so I stopped here. Mention me again with `repo=owner/name` when you are ready, <@{}>.",
            q.requester
        );
        match &q.message_ts {
            Some(ts) => {
                self.port
                    .update(&thread, ts, &OutMessage::Text(text))
                    .await?
            }
            None => {
                self.port.post(&thread, &OutMessage::Text(text)).await?;
            }
        }
        if let Some(ts) = &q.trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, false).await;
        }
        Ok(())
    }

    async fn on_plan_revision(
        self: &Arc<Self>,
        plan_id: String,
        user: String,
        feedback: String,
    ) -> Result<(), HandleError> {
        let Some(plan) = self.svc.store.plan(&plan_id).await? else {
            return Ok(());
        };
        if !self.may_act_for(&user, &plan.requester).await {
            return Ok(());
        }
        let thread = thread_of(&plan.platform, &plan.workspace, &plan.channel, &plan.thread);
        self.propose_plan(
            thread,
            None,
            user,
            FixArgs::default(),
            Some((plan, feedback)),
        )
        .await
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

    async fn on_slash(
        self: &Arc<Self>,
        platform: String,
        workspace: String,
        channel: String,
        user: String,
        text: String,
    ) -> Result<(), HandleError> {
        // Replies to a command go to the channel, seen only by the person who typed it.
        let here = ThreadRef {
            platform: platform.clone(),
            workspace: workspace.clone(),
            channel: channel.clone(),
            thread: String::new(),
        };
        let command = match commands::parse_slash(&text) {
            Ok(c) => c,
            Err(e) => {
                self.port.ephemeral(&here, &user, &e.to_string()).await?;
                return Ok(());
            }
        };
        // A `repo=` the allow-list refuses: before anything is posted or read.
        if let SlashCommand::Describe(args) | SlashCommand::FromThread { args, .. } = &command
            && let Some(refusal) = self.refuse_named_repo(args)
        {
            self.port.ephemeral(&here, &user, &refusal).await?;
            return Ok(());
        }
        match command {
            SlashCommand::Help => {
                let help =
                    commands::help_text(&self.settings.bot_name, &self.settings.slash_command);
                self.port.ephemeral(&here, &user, &help).await?;
            }
            SlashCommand::Status => {
                let text = self.status_text(&here).await?;
                self.port.ephemeral(&here, &user, &text).await?;
            }
            SlashCommand::ShowRepo => {
                let repo = self.svc.store.channel_repo(&platform, &channel).await?;
                let text = match repo.or(self.svc.config.default_repo.clone()) {
                    Some(r) => format!("This channel's repository is `{r}`."),
                    None => format!(
                        "This channel has no repository yet: `{} repo owner/name` sets it.",
                        self.settings.slash_command
                    ),
                };
                self.port.ephemeral(&here, &user, &text).await?;
            }
            SlashCommand::SetRepo(repo) => {
                let repo = match self.check_repo(repo) {
                    Ok(repo) => repo,
                    Err(text) => {
                        self.port.ephemeral(&here, &user, &text).await?;
                        return Ok(());
                    }
                };
                self.svc
                    .store
                    .set_channel_repo(&platform, &channel, &repo)
                    .await?;
                self.port
                    .ephemeral(
                        &here,
                        &user,
                        &format!(
                            "Tasks in this channel now use `{repo}` unless they name another."
                        ),
                    )
                    .await?;
            }
            SlashCommand::Describe(args) => {
                // A new thread: the description is its first message.
                let description = args.instructions.clone().unwrap_or_default();
                // Their words, made inert: no mention or markup of theirs survives.
                let opening = OutMessage::Text(format!("<@{user}> asked: {}", inert(&description)));
                let top = ThreadRef {
                    thread: String::new(),
                    ..here.clone()
                };
                let ts = self.port.post(&top, &opening).await?;
                let thread = ThreadRef {
                    thread: ts.clone(),
                    ..here
                };
                self.start_task(thread, Some(ts), user, args, None).await?;
            }
            SlashCommand::FromThread { link, args } => {
                match self.linked_thread(&platform, &workspace, link).await {
                    Some((thread, ts)) => {
                        if self
                            .svc
                            .store
                            .chat_task_by_trigger(&thread.platform, &thread.channel, &ts)
                            .await?
                            .is_none()
                        {
                            if self.thread_busy(&thread).await? {
                                self.port
                                    .ephemeral(&here, &user, thread_queue::BUSY_ELSEWHERE)
                                    .await?;
                            } else {
                                self.start_task(thread, Some(ts), user, args, None).await?;
                            }
                        }
                    }
                    None => {
                        self.port
                            .ephemeral(&here, &user, "That link is not a thread of this workspace.")
                            .await?;
                    }
                }
            }
        }
        Ok(())
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
