//! A task has one Retry: once it is used, the earlier summary stops offering it (edited to name
//! the retry), and a Retry that can start nothing says why, privately, to the clicker.

use std::sync::Arc;

use super::{Bot, EffectKey, HandleError, Prepared, thread_of};
use crate::chat::ThreadRef;
use crate::chat::commands::FixArgs;
use crate::spec::TaskSpec;

impl Bot {
    /// Once the retry's task exists: the summary of `previous` shows it and drops its Retry.
    pub(super) async fn show_retried(&self, previous: &str) {
        let link = match self.svc.store.chat_task(previous).await {
            Ok(Some(link)) => link,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the retried task's thread");
                return;
            }
        };
        let thread = thread_of(&link.platform, &link.workspace, &link.channel, &link.thread);
        if let Err(e) = self.refresh_summary(&thread, &link, previous).await {
            tracing::warn!(task = previous, error = %e, "could not take Retry off the earlier summary");
        }
    }

    /// Why a Retry of `task_id` starts nothing.
    pub(super) async fn retry_refused(
        &self,
        thread: &ThreadRef,
        user: &str,
        task_id: &str,
    ) -> Result<(), HandleError> {
        let text = match self.svc.store.retry_of(task_id).await? {
            Some(retry) => format!(
                "This task was retried already, as task `{}`: a task is retried once. Retry that one if it needs another go.",
                &retry.task_id[..retry.task_id.len().min(8)]
            ),
            None => "A retry of this task is being started already.".to_string(),
        };
        self.port.ephemeral(thread, user, &text).await?;
        Ok(())
    }
}

impl Bot {
    pub(super) async fn on_retry(
        self: &Arc<Self>,
        task_id: String,
        user: String,
        feedback: String,
        from: String,
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
        // From a rollout: the next round, or a clear word on why not (before the one retry
        // is used up).
        let round = match self.retry_round(&task_id, &from, &feedback).await? {
            Ok(round) => round,
            Err(text) => {
                self.port.ephemeral(&thread, &user, &text).await?;
                return Ok(());
            }
        };
        // One retry per task, reserved before anything starts.
        if self.svc.store.retry_of(&task_id).await?.is_some()
            || !self
                .svc
                .store
                .record_effect(&EffectKey::Retry { task_id: &task_id }.as_key(), &user)
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
        if let Some(plan) = &round {
            spec = plan.spec();
        }
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
                round,
            }),
        )
        .await
    }
}

impl Bot {
    /// The round a Retry asks for: `None` from scratch (an empty "from" field), the next round
    /// from rollout k, or the user's message when that cannot be.
    async fn retry_round(
        &self,
        task_id: &str,
        from: &str,
        feedback: &str,
    ) -> Result<Result<Option<crate::rounds::RoundPlan>, String>, HandleError> {
        let from = from.trim();
        if from.is_empty() {
            return Ok(Ok(None));
        }
        let number = from
            .trim_start_matches(|c: char| c.is_alphabetic() || c.is_whitespace())
            .trim_start_matches('#');
        let Some(k) = number.parse::<u32>().ok().filter(|k| *k >= 1) else {
            return Ok(Err(format!(
                "`{}` is not a rollout number: leave \"Start from rollout\" empty to retry from scratch, or give a number such as 2.",
                super::inert(&from.replace('`', "'"))
            )));
        };
        let plan =
            crate::rounds::plan_round(self.svc.store.as_ref(), task_id, Some(k), feedback).await?;
        Ok(plan.map(Some))
    }
}
