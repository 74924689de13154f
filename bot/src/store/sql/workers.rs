//! Workers (bot processes): heartbeats, the tasks dead ones left, admission under the rollout
//! limits, cancel requests.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::tasks::task_row;
use super::{Backend, SqlStore, ms, now, now_ms};
use crate::store::{Load, RolloutLimits, StoreError, TaskRow, Worker, WorkerStore};

#[async_trait]
impl WorkerStore for SqlStore {
    /// Keeps the worker alive, and with it the lease of every event it holds (see
    /// `claim_inbox`): one row, however many events it is handling.
    async fn heartbeat(&self, worker: &Worker, ttl: Duration) -> Result<(), StoreError> {
        let until = now_ms() + ms(ttl);
        sqlx::query(
            "INSERT INTO workers (id, host, pid, started_at, alive_until) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
        )
        .bind(&worker.id)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(now())
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<Worker>, StoreError> {
        sqlx::query("SELECT id, host, pid, alive_until FROM workers ORDER BY started_at")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Worker {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    pid: r.try_get::<i64, _>("pid")? as u32,
                    alive_until: r.try_get("alive_until")?,
                })
            })
            .collect()
    }

    async fn retire_worker(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE inbox SET lease_until = 0 WHERE leased_by = $1 AND state = 'taken'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM workers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn orphaned_tasks(&self) -> Result<Vec<TaskRow>, StoreError> {
        sqlx::query(
            "SELECT t.* FROM tasks t
             WHERE (t.state IN ('received', 'queued', 'preparing', 'running')
                    OR (t.state = 'done' AND EXISTS (
                        SELECT 1 FROM chat_tasks c WHERE c.task_id = t.id AND c.summary_ts IS NULL)))
               AND (t.worker IS NULL OR NOT EXISTS (
                    SELECT 1 FROM workers w WHERE w.id = t.worker AND w.alive_until > $1))
             ORDER BY t.created_at",
        )
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(task_row)
        .collect()
    }

    async fn adopt_task(
        &self,
        task_id: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tasks SET worker = $1 WHERE id = $2 AND worker IS NOT DISTINCT FROM $3",
        )
        .bind(to)
        .bind(task_id)
        .bind(from)
        .execute(&self.pool)
        .await?;
        let moved = done.rows_affected() == 1;
        if moved {
            self.changes.tasks_written();
        }
        Ok(moved)
    }

    #[tracing::instrument(name = "store.admit_task", skip(self))]
    async fn admit_task(&self, task_id: &str, limits: &RolloutLimits) -> Result<bool, StoreError> {
        let cap = |l: Option<u32>| l.map_or(i64::MAX / 4, i64::from);
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // One admission at a time across processes: the counts below must not change
            // between reading them and admitting.
            sqlx::query("SELECT pg_advisory_xact_lock(7460001)")
                .execute(&mut *tx)
                .await?;
        }
        // A task alone is admitted even when it asks for more rollouts than a limit allows,
        // else it would wait forever.
        let done = sqlx::query(
            "WITH live AS (
                SELECT t.requester, t.repo, t.attempts FROM tasks t
                JOIN workers w ON w.id = t.worker AND w.alive_until > $2
                WHERE t.state IN ('preparing', 'running') AND t.id <> $1)
             UPDATE tasks SET state = 'preparing', admitted_at = $2, updated_at = $3
             WHERE id = $1 AND state = 'queued'
               AND ((SELECT COUNT(*) FROM live) = 0
                    OR (SELECT COALESCE(SUM(attempts), 0) FROM live) + attempts <= $4)
               AND ((SELECT COUNT(*) FROM live l WHERE l.requester = tasks.requester) = 0
                    OR (SELECT COALESCE(SUM(attempts), 0) FROM live l WHERE l.requester = tasks.requester) + attempts <= $5)
               AND ((SELECT COUNT(*) FROM live l WHERE l.repo = tasks.repo) = 0
                    OR (SELECT COALESCE(SUM(attempts), 0) FROM live l WHERE l.repo = tasks.repo) + attempts <= $6)",
        )
        .bind(task_id)
        .bind(now_ms())
        .bind(now())
        .bind(cap(limits.global))
        .bind(cap(limits.per_user))
        .bind(cap(limits.per_repo))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let moved = done.rows_affected() == 1;
        if moved {
            self.changes.tasks_written();
        }
        Ok(moved)
    }

    async fn request_cancel(&self, task_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tasks SET cancel_requested = 1
             WHERE id = $1 AND state IN ('received', 'queued', 'preparing', 'running')",
        )
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        let moved = done.rows_affected() == 1;
        if moved {
            self.changes.tasks_written();
        }
        Ok(moved)
    }

    async fn cancel_requests(&self, worker: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tasks WHERE worker = $1 AND cancel_requested = 1
               AND state IN ('received', 'queued', 'preparing', 'running')",
        )
        .bind(worker)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn load(&self, task_id: &str) -> Result<Load, StoreError> {
        let row = sqlx::query(
            "WITH me AS (SELECT requester, repo, created_at FROM tasks WHERE id = $1),
                  live AS (
                    SELECT t.id, t.state, t.requester, t.repo, t.attempts, t.created_at FROM tasks t
                    JOIN workers w ON w.id = t.worker AND w.alive_until > $2
                    WHERE t.state IN ('queued', 'preparing', 'running'))
             SELECT
               (SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM live WHERE state <> 'queued') AS running,
               (SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM live, me
                  WHERE live.state <> 'queued' AND live.requester = me.requester) AS user_running,
               (SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM live, me
                  WHERE live.state <> 'queued' AND live.repo = me.repo) AS repo_running,
               (SELECT COUNT(*) FROM live WHERE state = 'queued') AS queued,
               (SELECT COUNT(*) FROM live, me
                  WHERE live.state = 'queued' AND live.requester = me.requester) AS user_queued,
               (SELECT COUNT(*) FROM live, me
                  WHERE live.state = 'queued' AND live.created_at < me.created_at AND live.id <> $1) AS ahead",
        )
        .bind(task_id)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        // (SUM is NUMERIC on PostgreSQL, which the `Any` driver cannot read: hence the casts.)
        let num = |col: &str| -> Result<u64, StoreError> {
            Ok(row.try_get::<i64, _>(col)?.max(0) as u64)
        };
        Ok(Load {
            running_rollouts: num("running")?,
            user_running_rollouts: num("user_running")?,
            repo_running_rollouts: num("repo_running")?,
            queued_tasks: num("queued")?,
            user_queued_tasks: num("user_queued")?,
            ahead: num("ahead")?,
        })
    }
}
