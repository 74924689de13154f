//! A mention in a thread whose task has ended: the next round of that task, from the chosen
//! rollout's change on the same base (see `crate::rounds`). A round still running queues the
//! follow-up behind it (the thread queue); a thread whose tasks all failed, or whose last round
//! changed nothing, starts afresh, and says so.

use super::*;
use crate::chat::commands::FollowUp;
use crate::store::TaskState;

impl Bot {
    /// Handles `text` as a follow-up when the thread has a task; false when it is not one (no
    /// task in the thread, or a mention asking for help, the status or a plan).
    pub(super) async fn try_follow_up(
        self: &Arc<Self>,
        thread: &ThreadRef,
        message_ts: &str,
        user: &str,
        text: &str,
    ) -> Result<bool, HandleError> {
        let Some(parsed) = commands::parse_follow_up(text, &self.settings.bot_user_id) else {
            return Ok(false);
        };
        let store = &self.svc.store;
        let tasks = store
            .thread_tasks(&thread.platform, &thread.channel, &thread.thread)
            .await?;
        if tasks.is_empty() {
            return Ok(false);
        }
        if store
            .chat_task_by_trigger(&thread.platform, &thread.channel, message_ts)
            .await?
            .is_some()
        {
            return Ok(true);
        }
        let reply_key = EffectKey::Reply {
            channel: &thread.channel,
            anchor: message_ts,
        };
        let reply = |text: String| async move {
            self.post_once(&reply_key, thread, &OutMessage::Text(text))
                .await
                .map(|_| true)
        };
        let FollowUp { from, args } = match parsed {
            Ok(f) => f,
            Err(e) => return reply(e.to_string()).await,
        };
        if args.repo.is_some() || args.base.is_some() {
            return reply(
                "A follow-up builds on this thread's task: same repository, same base, so `repo=` and `base=` cannot change here. Start a new thread for another repository or branch.".into(),
            )
            .await;
        }
        if self
            .queue_if_busy(thread, message_ts, user, text, Via::Mention)
            .await?
        {
            return Ok(true);
        }
        // The thread is claimed for this request now: a follow-up that starts nothing gives
        // the claim back (and lets the next queued request in).
        let refuse = |text: String| async move {
            self.post_once(&reply_key, thread, &OutMessage::Text(text))
                .await?;
            self.release_claim(thread, message_ts).await;
            Ok::<bool, HandleError>(true)
        };
        let request = args.instructions.clone().unwrap_or_default();
        // Nothing ended with a change to build on (every task failed or was cancelled, or no
        // rollout of the last finished round changed anything, and no `from #k` was asked for):
        // a new task from the base, with the whole thread (which says what went wrong), rather
        // than a refusal.
        let target = match tasks.iter().find(|(_, s)| *s == TaskState::Done) {
            None => {
                let what = if tasks[0].1 == TaskState::Cancelled {
                    "was cancelled"
                } else {
                    "failed"
                };
                Err(format!(
                    "The last task in this thread {what}, so there is no rollout to build on: I am starting a new task from the base, with the whole thread."
                ))
            }
            Some((target, _))
                if from.is_none()
                    && !store
                        .rollouts(target)
                        .await?
                        .iter()
                        .any(|r| r.files_changed > 0) =>
            {
                Err("No rollout of the last round here changed anything, so there is nothing to build on: I am starting a new task from the base, with the whole thread.".to_string())
            }
            Some((target, _)) => Ok(target),
        };
        let target = match target {
            Ok(target) => target,
            Err(note) => {
                self.post_once(&reply_key, thread, &OutMessage::Text(note))
                    .await?;
                self.start_task(
                    thread.clone(),
                    Some(message_ts.to_string()),
                    user.to_string(),
                    args,
                    None,
                )
                .await?;
                return Ok(true);
            }
        };
        let plan = match crate::rounds::plan_round(store.as_ref(), target, from, &request).await {
            Ok(Ok(plan)) => plan,
            Ok(Err(message)) => return refuse(message).await,
            Err(e) => {
                self.release_claim(thread, message_ts).await;
                return Err(e.into());
            }
        };
        if let Some((newest, state)) = tasks.first()
            && newest != target
        {
            let what = if *state == TaskState::Cancelled {
                "was cancelled"
            } else {
                "failed"
            };
            let note = format!(
                "The latest round here {what}, so round {} builds on {}.",
                plan.link.round, plan.context.from
            );
            self.post_once(&reply_key, thread, &OutMessage::Text(note))
                .await?;
        }
        let args = FixArgs {
            attempts: args.attempts.or(Some(plan.from.attempts)),
            ..args
        };
        let prepared = Prepared {
            spec: plan.spec(),
            repo: plan.from.repo.clone(),
            base: plan.from.base_ref.clone(),
            retry_of: None,
            round: Some(plan),
        };
        self.start_task(
            thread.clone(),
            Some(message_ts.to_string()),
            user.to_string(),
            args,
            Some(prepared),
        )
        .await?;
        Ok(true)
    }

    /// Once round `task_id` is stored: the summaries of the chain's earlier rounds say that a
    /// later round follows (their buttons still work, and say which round they belong to).
    pub(super) async fn show_later_round(&self, task_id: &str) -> Result<(), HandleError> {
        for (_, earlier) in self.svc.store.chain(task_id).await? {
            if earlier != task_id {
                self.show_retried(&earlier).await;
            }
        }
        Ok(())
    }

    /// Gives back the thread's claim taken for request `message_ts` (see `thread_queue.rs`),
    /// and lets the next queued request in.
    async fn release_claim(&self, thread: &ThreadRef, message_ts: &str) {
        if let Err(e) = self
            .svc
            .store
            .release_thread(
                &thread.platform,
                &thread.channel,
                &thread.thread,
                message_ts,
                self.svc.worker_id(),
            )
            .await
        {
            tracing::error!(error = %e, "could not release a thread's claim");
        }
        self.start_next_queued(thread).await;
    }
}
