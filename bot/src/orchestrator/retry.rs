//! A task has one Retry: once it is used, the earlier summary stops offering it (edited to name
//! the retry), and a Retry that can start nothing says why, privately, to the clicker.

use super::{Bot, HandleError, thread_of};
use crate::chat::ThreadRef;

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
