//! Taking over what dead workers left: unfinished tasks reported, unsent summaries posted.

use super::*;

impl Bot {
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

    pub(super) async fn take_over(&self) -> Result<(), StoreError> {
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
            // Their rollouts died with their process: remove what it left (on this host; on a
            // cluster, whatever no live worker owns).
            let live = pipeline::live_workers(store.as_ref(), Some(me)).await?;
            if let Err(e) = self.svc.tasks.remove_orphans(&live).await {
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
    pub(super) async fn finish_summary(&self, link: &ChatTaskLink) -> Result<(), HandleError> {
        tracing::warn!(task = %link.task_id, "posting a summary a stopped process left unsent");
        let thread = thread_of(&link.platform, &link.workspace, &link.channel, &link.thread);
        self.summarise(&thread, &link.task_id, link.trigger_ts.as_deref())
            .await
    }

    /// The end of a task in its thread: the summary, then ✅ (a rollout succeeded), a neutral
    /// mark (the best is an untested change) or ❌ on the request in place of 👀.
    pub(super) async fn summarise(
        &self,
        thread: &ThreadRef,
        task_id: &str,
        trigger_ts: Option<&str>,
    ) -> Result<(), HandleError> {
        self.post_summary(thread, task_id).await?;
        if let Some(ts) = trigger_ts {
            let rollouts = self.svc.store.rollouts(task_id).await?;
            let end = super::summary::end_reaction(rollouts.iter().map(|r| r.outcome));
            self.react_once(thread, ts, Reaction::Working, false).await;
            self.react_once(thread, ts, end, true).await;
        }
        Ok(())
    }

    pub(super) async fn report_interrupted(&self, link: &ChatTaskLink) -> Result<(), HandleError> {
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
            &EffectKey::Interrupted { task_id },
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
}
