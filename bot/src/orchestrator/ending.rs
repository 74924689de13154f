//! How a task's status message ends.

use crate::store::TaskState;

use super::Bot;

/// What the status message says when the pipeline ends without a failure of its own.
pub(super) const DONE: &str = "Done.";

impl Bot {
    /// The status message's last headline: `text`, unless the task was cancelled (its end in
    /// the store says so; the pipeline ends quietly then), when it says so — who cancelled is
    /// in the "Cancelled by …" message posted with the click.
    pub(super) async fn final_headline(&self, task_id: &str, text: String) -> String {
        if text != DONE {
            return text;
        }
        match self.svc.store.task(task_id).await {
            Ok(Some(t)) if t.state == TaskState::Cancelled => "Cancelled.".into(),
            Ok(_) => text,
            Err(e) => {
                tracing::warn!(error = %e, task = task_id, "could not read how a task ended");
                text
            }
        }
    }
}
