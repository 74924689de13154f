//! One task at a time per thread. A "fix this" in a thread where a task runs is not started
//! beside it: the requester is told which task runs, and the request waits in the store
//! (`queued_requests`) until that task ends; then it is put back in the inbox as the event it
//! was and handled as usual. The state lives in the store, so a restart or another process
//! carries on; a redelivered request is queued and answered once. The request let through
//! claims the thread in the store (`thread_claims`) until its task ends, so that a request
//! taken by another process cannot start beside it before its task is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::chat::{ChatEvent, OutMessage, ThreadRef, Via};
use crate::store::{ChatTaskLink, StoreError};

use super::{Bot, EffectKey, HandleError, Prepared};
use crate::chat::commands::FixArgs;

/// Requests this process is starting or running, by thread: two events of one request (the
/// original taken again, and its requeued copy) handled at once start it once.
#[derive(Default)]
pub(super) struct BusyThreads(Mutex<HashMap<String, HashMap<String, Stage>>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Let through the busy check, about to start.
    Reserved,
    Running,
}

fn thread_key(thread: &ThreadRef) -> String {
    format!("{}:{}:{}", thread.platform, thread.channel, thread.thread)
}

impl BusyThreads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Stage>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks request `anchor` running; false when it runs already in this process.
    fn begin(&self, thread: &ThreadRef, anchor: &str) -> bool {
        let mut busy = self.lock();
        let stage = busy
            .entry(thread_key(thread))
            .or_default()
            .entry(anchor.to_string())
            .or_insert(Stage::Reserved);
        if *stage == Stage::Running {
            return false;
        }
        *stage = Stage::Running;
        true
    }

    fn end(&self, thread: &ThreadRef, anchor: &str) {
        let mut busy = self.lock();
        let key = thread_key(thread);
        if let Some(requests) = busy.get_mut(&key) {
            requests.remove(anchor);
            if requests.is_empty() {
                busy.remove(&key);
            }
        }
    }

    fn contains(&self, thread: &ThreadRef) -> bool {
        self.lock().contains_key(&thread_key(thread))
    }
}

/// The answer to `/fix <thread link>` naming a thread where a task runs (a command has no
/// message in the thread to queue).
pub(super) const BUSY_ELSEWHERE: &str = "A task is already running in that thread, so I have not started another beside it. Mention me in the thread to queue a request behind it, or Cancel the running task first.";

impl Bot {
    /// Whether a task runs (or is starting) in the thread.
    pub(super) async fn thread_busy(&self, thread: &ThreadRef) -> Result<bool, StoreError> {
        let store = &self.svc.store;
        Ok(self.busy_threads.contains(thread)
            || store
                .thread_holder(&thread.platform, &thread.channel, &thread.thread)
                .await?
                .is_some()
            || store
                .active_thread_task(&thread.platform, &thread.channel, &thread.thread)
                .await?
                .is_some())
    }

    /// When a task runs in the thread (in the store, or starting in this process), queues the
    /// request behind it, says so once, and returns true.
    pub(super) async fn queue_if_busy(
        &self,
        thread: &ThreadRef,
        message_ts: &str,
        user: &str,
        text: &str,
        via: Via,
    ) -> Result<bool, HandleError> {
        // This very request, taken again while a process works on it: the claim in
        // `start_task` decides, not the queue.
        if let Some(key) = super::request_key(thread, Some(message_ts))
            && self
                .svc
                .store
                .effect(&key)
                .await?
                .is_some_and(|w| !w.is_empty())
        {
            return Ok(false);
        }
        let active = self
            .svc
            .store
            .active_thread_task(&thread.platform, &thread.channel, &thread.thread)
            .await?;
        if active.is_none()
            && self
                .svc
                .store
                .claim_thread(
                    &thread.platform,
                    &thread.channel,
                    &thread.thread,
                    message_ts,
                    self.svc.worker_id(),
                )
                .await?
        {
            return Ok(false);
        }
        let event = ChatEvent::Trigger {
            thread: thread.clone(),
            message_ts: message_ts.to_string(),
            user: user.to_string(),
            text: text.to_string(),
            via,
        };
        let json = serde_json::to_string(&event)
            .map_err(|e| StoreError::Corrupt(format!("event not serializable: {e}")))?;
        self.svc
            .store
            .queue_request(
                &thread.platform,
                &thread.channel,
                &thread.thread,
                message_ts,
                &json,
            )
            .await?;
        let text = self.busy_words(thread, active.as_ref()).await;
        self.post_once(
            &EffectKey::Queued {
                channel: &thread.channel,
                ts: message_ts,
            },
            thread,
            &OutMessage::Text(text),
        )
        .await?;
        // The running request may have ended between the check and the queueing, and found
        // nothing queued: then this one starts now (its inbox key is fixed, so once).
        if !self.thread_busy(thread).await? {
            self.start_next_queued(thread).await;
        }
        Ok(true)
    }

    async fn busy_words(&self, thread: &ThreadRef, active: Option<&ChatTaskLink>) -> String {
        let link = match active.and_then(|l| l.status_ts.clone()) {
            Some(ts) => self.port.permalink(thread, &ts).await,
            None => None,
        };
        let which = match (active, link) {
            (Some(a), Some(link)) => {
                format!("(task `{}`: {link})", &a.task_id[..8.min(a.task_id.len())])
            }
            (Some(a), None) => format!("(task `{}`)", &a.task_id[..8.min(a.task_id.len())]),
            (None, _) => "(it is starting)".to_string(),
        };
        format!(
            "A task is already running in this thread {which}, so I have not started another beside it. Your request is queued: it starts by itself when that task ends. Cancel the running task to start yours sooner."
        )
    }

    /// Starts a task for a request (see `start_task_inner`), marking its thread busy in this
    /// process meanwhile; a request already running here (two events of it at once) is left to
    /// the handler running it. When it ends, the next request queued in the thread starts.
    pub(super) async fn start_task(
        self: &Arc<Self>,
        thread: ThreadRef,
        trigger_ts: Option<String>,
        user: String,
        args: FixArgs,
        prepared: Option<Prepared>,
    ) -> Result<(), HandleError> {
        let anchor = trigger_ts
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        if !self.busy_threads.begin(&thread, &anchor) {
            tracing::warn!(request = %anchor, "this request is being handled here already");
            return Ok(());
        }
        let started = self
            .start_task_inner(thread.clone(), trigger_ts, user, args, prepared)
            .await;
        self.busy_threads.end(&thread, &anchor);
        if let Err(e) = self
            .svc
            .store
            .release_thread(
                &thread.platform,
                &thread.channel,
                &thread.thread,
                &anchor,
                self.svc.worker_id(),
            )
            .await
        {
            // Held until this process's heartbeat stops: the thread's next requests wait.
            tracing::error!(error = %e, "could not release a thread's claim");
        }
        self.start_next_queued(&thread).await;
        started
    }

    /// After a task in `thread` ended: the oldest request queued there goes back to the inbox
    /// (once, whichever process gets there first: its inbox key is fixed).
    pub(super) async fn start_next_queued(&self, thread: &ThreadRef) {
        if let Err(e) = self.requeue_next(thread).await {
            tracing::error!(error = %e, "could not start a request queued in a thread");
        }
    }

    async fn requeue_next(&self, thread: &ThreadRef) -> Result<(), StoreError> {
        let store = &self.svc.store;
        let Some((ts, event, queued_at)) = store
            .next_queued_request(&thread.platform, &thread.channel, &thread.thread)
            .await?
        else {
            return Ok(());
        };
        let key = EffectKey::Dequeued {
            platform: &thread.platform,
            channel: &thread.channel,
            ts: &ts,
            queued_at,
        }
        .as_key();
        store.enqueue(&key, &thread.platform, &event).await?;
        store
            .unqueue_request(&thread.platform, &thread.channel, &ts)
            .await?;
        self.wake.notify_one();
        Ok(())
    }
}
