//! Approvals: one rollout per task, withdrawn when its publication fails.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, now, time};
use crate::store::{Approval, ApprovalStore, StoreError};

#[async_trait]
impl ApprovalStore for SqlStore {
    async fn approve(&self, task_id: &str, rollout: u32, by: &str) -> Result<Approval, StoreError> {
        sqlx::query(
            "INSERT INTO approvals (task_id, rollout_idx, approved_by, approved_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (task_id) DO NOTHING",
        )
        .bind(task_id)
        .bind(rollout as i64)
        .bind(by)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.approval(task_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("approval of {task_id} vanished")))
    }

    async fn approval(&self, task_id: &str) -> Result<Option<Approval>, StoreError> {
        sqlx::query("SELECT * FROM approvals WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| {
                Ok(Approval {
                    task_id: r.try_get("task_id")?,
                    rollout: r.try_get::<i64, _>("rollout_idx")? as u32,
                    approved_by: r.try_get("approved_by")?,
                    approved_at: time(r.try_get("approved_at")?)?.unwrap_or_default(),
                })
            })
            .transpose()
    }

    async fn withdraw_approval(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM approvals WHERE task_id = $1")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
