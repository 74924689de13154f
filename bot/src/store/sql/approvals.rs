//! Approvals and the simple (unleased) publication calls.

use sqlx::Row;

use super::{SqlStore, now, time};
use crate::store::{Approval, Publication, Store, StoreError};

impl SqlStore {
    pub(super) async fn approve_impl(
        &self,
        task_id: &str,
        rollout: u32,
        by: &str,
    ) -> Result<Approval, StoreError> {
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

    pub(super) async fn approval_impl(
        &self,
        task_id: &str,
    ) -> Result<Option<Approval>, StoreError> {
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

    pub(super) async fn withdraw_approval_impl(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM approvals WHERE task_id = $1")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn claim_publication_impl(
        &self,
        task_id: &str,
        rollout: u32,
        branch: &str,
    ) -> Result<Publication, StoreError> {
        sqlx::query(
            "INSERT INTO publications (task_id, rollout_idx, state, branch, claimed_at)
             VALUES ($1, $2, 'publishing', $3, $4) ON CONFLICT (task_id) DO NOTHING",
        )
        .bind(task_id)
        .bind(rollout as i64)
        .bind(branch)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.publication(task_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("publication of {task_id} vanished")))
    }

    pub(super) async fn finish_publication_impl(
        &self,
        task_id: &str,
        commit: &str,
        url: &str,
        pr_number: Option<u64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE publications SET state = 'published', commit_sha = $1, url = $2, pr_number = $3,
             published_at = $4 WHERE task_id = $5",
        )
        .bind(commit)
        .bind(url)
        .bind(pr_number.map(|n| n as i64))
        .bind(now())
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn drop_publication_impl(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM publications WHERE task_id = $1 AND state = 'publishing'")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn publication_impl(
        &self,
        task_id: &str,
    ) -> Result<Option<Publication>, StoreError> {
        sqlx::query("SELECT * FROM publications WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(super::publish::publication_row)
            .transpose()
    }
}
