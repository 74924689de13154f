//! Admission: a task waits until its rollouts fit under the limits counted across every
//! process on the database, or is refused when the queue is full.

use tokio_util::sync::CancellationToken;

use super::{PipelineFailure, ProgressSink, Refusal, Services, TaskEvent, TaskRequest, user};
use crate::store::TaskState;

/// Waits until the task's rollouts fit under the limits (global, per person, per repository;
/// counted across every process on the database), then moves it to `preparing`. A request that
/// would overfill the queue is refused with a message saying which limit it hit.
pub(super) async fn admit(
    svc: &Services,
    task_id: &str,
    req: &TaskRequest,
    sink: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<(), PipelineFailure> {
    let config = &svc.config;
    let limits = config.rollout_limits(&req.repo);
    svc.store
        .set_task_state(task_id, TaskState::Queued, None)
        .await?;
    if svc.store.admit_task(task_id, &limits).await? {
        return Ok(());
    }
    let load = svc.store.load(task_id).await?;
    let user_limit = u64::from(config.user_queued_tasks_limit());
    let limit = u64::from(config.queued_tasks_limit());
    // The counts include this task.
    let tasks = |n: u64| match n {
        1 => "1 task".to_string(),
        n => format!("{n} tasks"),
    };
    if load.user_queued_tasks > user_limit {
        return Err(user(format!(
            "You already have {} waiting for a free slot (the limit is {user_limit}). Wait for one to start, or cancel one, then ask again.",
            tasks(load.user_queued_tasks - 1)
        )));
    }
    if load.queued_tasks > limit {
        return Err(user(format!(
            "The queue is full: {} waiting for a free slot (the limit is {limit}). Try again when some have finished.",
            tasks(load.queued_tasks - 1)
        )));
    }
    let mut shown = None;
    loop {
        let load = svc.store.load(task_id).await?;
        let now = (load.ahead, load.running_rollouts);
        if shown != Some(now) {
            shown = Some(now);
            sink.on_event(&TaskEvent::Waiting {
                ahead: load.ahead,
                running: load.running_rollouts,
                limit: limits.global,
            });
        }
        // Slots free when a task of this process ends (notified) or of another process (seen
        // at the next look).
        tokio::select! {
            _ = svc.liveness.admissions.notified() => {}
            _ = tokio::time::sleep(config.poll_interval()) => {}
            _ = cancel.cancelled() => return Err(Refusal::CancelledWaiting.into()),
        }
        if svc.store.admit_task(task_id, &limits).await? {
            return Ok(());
        }
    }
}
