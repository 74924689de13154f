//! A task's life: its stored state and the stage derived from what the store holds.

use super::{Approval, ChatTaskLink, Publication, Store, StoreError, TaskRow};

/// A task's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Received,
    /// Waiting for a slot under the limits on running rollouts.
    Queued,
    Preparing,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Received,
        TaskState::Queued,
        TaskState::Preparing,
        TaskState::Running,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Received => "received",
            TaskState::Queued => "queued",
            TaskState::Preparing => "preparing",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Where a task is in its life: received → spec → queued → running → checked → summarised →
/// approved → PR opened, or failed / cancelled. Derived from what the store holds (the task's
/// state, its thread's summary, its approval and publication), each of which is written before
/// it is announced; so the stage after a crash is the last one announced, or one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Received,
    /// The spec is made; the task waits to be admitted.
    Spec,
    Queued,
    Running,
    /// The rollouts ended and are checked and ranked; the summary is not posted yet.
    Checked,
    Summarised,
    Approved,
    /// The pull request (or, in push-only mode, the branch) exists.
    Published,
    Failed,
    Cancelled,
}

impl Stage {
    pub fn of(
        task: &TaskRow,
        link: Option<&ChatTaskLink>,
        approval: Option<&Approval>,
        publication: Option<&Publication>,
    ) -> Self {
        match task.state {
            TaskState::Failed => Self::Failed,
            TaskState::Cancelled => Self::Cancelled,
            TaskState::Received if task.spec_json.is_some() => Self::Spec,
            TaskState::Received => Self::Received,
            TaskState::Queued => Self::Queued,
            TaskState::Preparing | TaskState::Running => Self::Running,
            TaskState::Done => {
                if publication.is_some_and(|p| p.state == super::PublicationState::Published) {
                    Self::Published
                } else if approval.is_some() {
                    Self::Approved
                } else if link.is_some_and(|l| l.summary_ts.is_some()) {
                    Self::Summarised
                } else {
                    Self::Checked
                }
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Spec => "spec",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Checked => "checked",
            Self::Summarised => "summarised",
            Self::Approved => "approved",
            Self::Published => "PR opened",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The stage of a stored task.
pub async fn stage(store: &dyn Store, task: &TaskRow) -> Result<Stage, StoreError> {
    let link = store.chat_task(&task.id).await?;
    let approval = store.approval(&task.id).await?;
    let publication = store.publication(&task.id).await?;
    Ok(Stage::of(
        task,
        link.as_ref(),
        approval.as_ref(),
        publication.as_ref(),
    ))
}
