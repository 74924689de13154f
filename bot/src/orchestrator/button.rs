//! Buttons: Approve, Retry, Cancel on a task's messages.

use super::*;

impl Bot {
    pub(super) async fn on_button(
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
                                crate::task_id::short_id(&retry.task_id)
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
                            &EffectKey::Cancelled { task_id: &task_id },
                            &thread,
                            &OutMessage::Text(format!("Cancelled by <@{user}>.")),
                        )
                        .await?;
                    }
                    // Another process runs it (several share the database): ask it.
                    None if self.svc.store.request_cancel(&task_id).await? => {
                        self.post_once(
                            &EffectKey::Cancelled { task_id: &task_id },
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
}
