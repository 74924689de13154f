//! What this worker still owns: tasks whose Cancel was clicked in another process, and tasks
//! another process adopted when this one was taken for dead.

use super::*;

impl Bot {
    /// Cancels this process's tasks whose Cancel was clicked in another process, and those
    /// another process adopted (this one's heartbeat lapsed, so it was taken for dead: the
    /// other has reported the task, and this one must stop rather than finish it twice).
    pub(super) async fn cancel_requested_elsewhere(&self) {
        let store = &self.svc.store;
        let mut doomed = match store.cancel_requests(self.svc.worker_id()).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "could not read cancellations");
                return;
            }
        };
        for id in self.running.ids() {
            if let Ok(Some(t)) = store.task(id.as_str()).await
                && t.worker.as_deref() != Some(self.svc.worker_id())
            {
                tracing::error!(task = %id, worker = ?t.worker, "another process took this task over; stopping it here");
                doomed.push(id.into_string());
            }
        }
        self.running.cancel(&doomed);
    }

    /// Whether this process still owns a task (another adopts it when this one's heartbeat
    /// lapses for a lease).
    pub(super) async fn still_owned(&self, task_id: &str) -> Result<bool, StoreError> {
        Ok(!self.svc.retired()
            && self
                .svc
                .store
                .task(task_id)
                .await?
                .is_some_and(|t| t.worker.as_deref() == Some(self.svc.worker_id())))
    }
}
