//! Publications held by one attempt at a time: leases, convergent completion, failures that
//! only their own attempt can record (and that withdraw the approval in the same transaction);
//! and the simple (unleased) calls.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::watch;

use super::{SqlStore, now, now_ms};
use crate::store::{Publication, PublicationLease, PublicationState, PublicationStore, StoreError};

fn publication_row(r: &AnyRow) -> Result<Publication, StoreError> {
    Ok(Publication {
        task_id: r.try_get("task_id")?,
        rollout: r.try_get::<i64, _>("rollout_idx")? as u32,
        state: {
            let state: String = r.try_get("state")?;
            PublicationState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("publication state `{state}`")))?
        },
        branch: r.try_get("branch")?,
        commit: r.try_get("commit_sha")?,
        url: r.try_get("url")?,
        pr_number: r.try_get::<Option<i64>, _>("pr_number")?.map(|n| n as u64),
        attempt: r.try_get("attempt")?,
        lease_until: r.try_get("lease_until")?,
        error: r.try_get("error")?,
    })
}

#[async_trait]
impl PublicationStore for SqlStore {
    fn publication_changes(&self) -> watch::Receiver<u64> {
        self.changes.publications()
    }

    async fn lease_publication(
        &self,
        l: &PublicationLease<'_>,
    ) -> Result<Option<Publication>, StoreError> {
        let approved =
            "EXISTS (SELECT 1 FROM approvals a WHERE a.task_id = $1 AND a.rollout_idx = $2)";
        // A first claim, only for the approval in force.
        sqlx::query(&format!(
            "INSERT INTO publications (task_id, rollout_idx, state, branch, claimed_at, attempt, lease_until)
             SELECT $1, $2, 'publishing', $3, $4, $5, $6 WHERE {approved}
             ON CONFLICT (task_id) DO NOTHING"
        ))
        .bind(l.task_id)
        .bind(l.rollout as i64)
        .bind(l.branch)
        .bind(now())
        .bind(l.attempt)
        .bind(l.lease_until)
        .execute(&self.pool)
        .await?;
        // A claim whose holder stopped renewing it (it died): taken over as claimed.
        let taken_over = sqlx::query(
            "UPDATE publications SET attempt = $2, lease_until = $3
             WHERE task_id = $1 AND state = 'publishing' AND (lease_until IS NULL OR lease_until < $4)",
        )
        .bind(l.task_id)
        .bind(l.attempt)
        .bind(l.lease_until)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if taken_over.rows_affected() == 1 {
            self.changes.publications_written();
        }
        if l.retry_failed {
            sqlx::query(&format!(
                "UPDATE publications SET rollout_idx = $2, branch = $3, claimed_at = $4, attempt = $5,
                 lease_until = $6, state = 'publishing', error = NULL
                 WHERE task_id = $1 AND state = 'failed' AND {approved}"
            ))
            .bind(l.task_id)
            .bind(l.rollout as i64)
            .bind(l.branch)
            .bind(now())
            .bind(l.attempt)
            .bind(l.lease_until)
            .execute(&self.pool)
            .await?;
        }
        self.publication(l.task_id).await
    }

    async fn renew_publication(
        &self,
        task_id: &str,
        attempt: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE publications SET lease_until = $3
             WHERE task_id = $1 AND attempt = $2 AND state = 'publishing'",
        )
        .bind(task_id)
        .bind(attempt)
        .bind(lease_until)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn complete_publication(
        &self,
        task_id: &str,
        commit: &str,
        url: &str,
        pr_number: Option<u64>,
    ) -> Result<Publication, StoreError> {
        sqlx::query(
            "UPDATE publications SET state = 'published', commit_sha = $1, url = $2, pr_number = $3,
             published_at = $4, lease_until = NULL, error = NULL
             WHERE task_id = $5 AND state <> 'published'",
        )
        .bind(commit)
        .bind(url)
        .bind(pr_number.map(|n| n as i64))
        .bind(now())
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        self.changes.publications_written();
        self.publication(task_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("publication of {task_id} vanished")))
    }

    async fn fail_publication(
        &self,
        task_id: &str,
        attempt: &str,
        error: &str,
        withdraw: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE publications SET state = 'failed', error = $3, lease_until = NULL
             WHERE task_id = $1 AND attempt = $2 AND state = 'publishing'",
        )
        .bind(task_id)
        .bind(attempt)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        let ended = done.rows_affected() == 1;
        if ended && withdraw {
            sqlx::query("DELETE FROM approvals WHERE task_id = $1")
                .bind(task_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if ended {
            self.changes.publications_written();
        }
        Ok(ended)
    }

    async fn claim_publication(
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

    async fn finish_publication(
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
        self.changes.publications_written();
        Ok(())
    }

    async fn drop_publication(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM publications WHERE task_id = $1 AND state = 'publishing'")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        self.changes.publications_written();
        Ok(())
    }

    async fn publication(&self, task_id: &str) -> Result<Option<Publication>, StoreError> {
        sqlx::query("SELECT * FROM publications WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(publication_row)
            .transpose()
    }
}
