//! Follow-up rounds: a task started from a rollout of an earlier task in the same thread is
//! the next round of that task's chain. Round 1 is the first task (the root) and has no row.

use async_trait::async_trait;

use super::{StoreError, TaskState};

/// Which earlier task and rollout a round builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundLink {
    pub task_id: String,
    /// The chain's first task (round 1).
    pub root: String,
    /// 2 and on.
    pub round: u32,
    /// The task (round) whose rollout this round starts from.
    pub from_task: String,
    pub from_rollout: u32,
    /// What was asked for in this round, as written.
    pub request: Option<String>,
}

/// A task's place in its chain of rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundPlace {
    pub root: String,
    pub round: u32,
    /// `None` for round 1.
    pub link: Option<RoundLink>,
}

#[async_trait]
pub trait RoundStore: Send + Sync {
    /// Records a round (once: a replay keeps the first row).
    async fn set_round(&self, link: &RoundLink) -> Result<(), StoreError>;
    async fn round_of(&self, task_id: &str) -> Result<Option<RoundLink>, StoreError>;
    /// Rounds 2 and on of the chain starting at `root`, in order.
    async fn later_rounds(&self, root: &str) -> Result<Vec<RoundLink>, StoreError>;
    /// The tasks of a thread, newest first (at most 50), with their states.
    async fn thread_tasks(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Vec<(String, TaskState)>, StoreError>;

    /// Where `task_id` stands in its chain: round 1 of itself unless a row says otherwise.
    async fn place(&self, task_id: &str) -> Result<RoundPlace, StoreError> {
        Ok(match self.round_of(task_id).await? {
            Some(link) => RoundPlace {
                root: link.root.clone(),
                round: link.round,
                link: Some(link),
            },
            None => RoundPlace {
                root: task_id.to_string(),
                round: 1,
                link: None,
            },
        })
    }

    /// Every task of the chain `task_id` belongs to, round 1 first: `(round, task id)`.
    async fn chain(&self, task_id: &str) -> Result<Vec<(u32, String)>, StoreError> {
        let place = self.place(task_id).await?;
        let mut out = vec![(1, place.root.clone())];
        out.extend(
            self.later_rounds(&place.root)
                .await?
                .into_iter()
                .map(|l| (l.round, l.task_id)),
        );
        Ok(out)
    }
}
