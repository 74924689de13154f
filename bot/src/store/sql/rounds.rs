//! Follow-up rounds (`task_rounds`): which earlier task and rollout a task builds on.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, now};
use crate::store::{RoundLink, RoundStore, StoreError, TaskState};

fn round_row(r: &AnyRow) -> Result<RoundLink, StoreError> {
    Ok(RoundLink {
        task_id: r.try_get("task_id")?,
        root: r.try_get("root_task")?,
        round: r.try_get::<i64, _>("round")? as u32,
        from_task: r.try_get("from_task")?,
        from_rollout: r.try_get::<i64, _>("from_rollout")? as u32,
        request: r.try_get("request")?,
    })
}

#[async_trait]
impl RoundStore for SqlStore {
    async fn set_round(&self, link: &RoundLink) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO task_rounds (task_id, root_task, round, from_task, from_rollout, request, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (task_id) DO NOTHING",
        )
        .bind(&link.task_id)
        .bind(&link.root)
        .bind(i64::from(link.round))
        .bind(&link.from_task)
        .bind(i64::from(link.from_rollout))
        .bind(&link.request)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn round_of(&self, task_id: &str) -> Result<Option<RoundLink>, StoreError> {
        sqlx::query("SELECT * FROM task_rounds WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(round_row)
            .transpose()
    }

    async fn later_rounds(&self, root: &str) -> Result<Vec<RoundLink>, StoreError> {
        let rows = sqlx::query("SELECT * FROM task_rounds WHERE root_task = $1 ORDER BY round")
            .bind(root)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(round_row).collect()
    }

    async fn thread_tasks(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Vec<(String, TaskState)>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.state FROM chat_tasks c JOIN tasks t ON t.id = c.task_id
             WHERE c.platform = $1 AND c.channel = $2 AND c.thread = $3
             ORDER BY t.created_at DESC LIMIT 50",
        )
        .bind(platform)
        .bind(channel)
        .bind(thread)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                let state = TaskState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown task state {state}")))?;
                Ok((r.try_get("id")?, state))
            })
            .collect()
    }
}
