//! Tasks: creating them, their state and base, finding them by id, prefix, channel or web token.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::watch;

use super::{SqlStore, now, time};
use crate::store::{
    InstructionFile, NewTask, StoreError, TaskRow, TaskState, TaskStore, TaskTests,
};

pub(super) fn task_row(r: &AnyRow) -> Result<TaskRow, StoreError> {
    let state: String = r.try_get("state")?;
    let (spec_usage, model) = super::usage::read_task(r)?;
    Ok(TaskRow {
        id: r.try_get("id")?,
        created_at: time(r.try_get("created_at")?)?.unwrap_or_default(),
        updated_at: time(r.try_get("updated_at")?)?.unwrap_or_default(),
        state: TaskState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("task state `{state}`")))?,
        origin: r.try_get("origin")?,
        requester: r.try_get("requester")?,
        title: r.try_get("title")?,
        spec: r.try_get("spec")?,
        repo: r.try_get("repo")?,
        base_ref: r.try_get("base_ref")?,
        base_commit: r.try_get("base_commit")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        error: r.try_get("error")?,
        spec_json: r.try_get("spec_json")?,
        worker: r.try_get("worker")?,
        tests: super::task_tests::read(r)?,
        instruction_files: super::task_instructions::read(r)?,
        spec_usage,
        model,
    })
}

#[async_trait]
impl TaskStore for SqlStore {
    fn task_changes(&self) -> watch::Receiver<u64> {
        self.changes.tasks()
    }

    async fn add_task_usage(
        &self,
        id: &str,
        model: Option<&str>,
        usage: &threadsmith_runner::ModelUsage,
    ) -> Result<(), StoreError> {
        super::usage::add_task(&self.pool, id, model, usage).await
    }

    async fn tokens_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        requester: Option<&str>,
    ) -> Result<u64, StoreError> {
        super::usage::tokens_since(&self.pool, &since.to_rfc3339(), requester).await
    }

    #[tracing::instrument(name = "store.create_task", skip_all, fields(task = %task.id))]
    async fn create_task(&self, task: &NewTask) -> Result<(), StoreError> {
        let now = now();
        sqlx::query(
            "INSERT INTO tasks (id, created_at, updated_at, state, origin, requester, title, spec, repo, base_ref, attempts, spec_json, worker)
             VALUES ($1, $2, $3, 'received', $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&task.id)
        .bind(&now)
        .bind(&now)
        .bind(&task.origin)
        .bind(&task.requester)
        .bind(&task.title)
        .bind(&task.spec)
        .bind(&task.repo)
        .bind(&task.base_ref)
        .bind(task.attempts as i64)
        .bind(&task.spec_json)
        .bind(&task.worker)
        .execute(&self.pool)
        .await?;
        self.changes.tasks_written();
        Ok(())
    }

    #[tracing::instrument(name = "store.set_task_state", skip(self))]
    async fn set_task_state(
        &self,
        id: &str,
        state: TaskState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tasks SET state = $1, error = COALESCE($2, error), updated_at = $3
             WHERE id = $4 AND state NOT IN ('done', 'failed', 'cancelled')",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.changes.tasks_written();
        Ok(())
    }

    #[tracing::instrument(name = "store.set_task_base", skip(self))]
    async fn set_task_base(
        &self,
        id: &str,
        base_ref: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tasks SET base_ref = $1, base_commit = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(base_ref)
        .bind(commit)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.changes.tasks_written();
        Ok(())
    }

    async fn task(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        sqlx::query("SELECT * FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(task_row)
            .transpose()
    }

    async fn find_tasks(&self, prefix: &str) -> Result<Vec<TaskRow>, StoreError> {
        let pattern = format!(
            "{}%",
            prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        sqlx::query(
            "SELECT * FROM tasks WHERE id LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT 10",
        )
        .bind(pattern)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(task_row)
        .collect()
    }

    async fn recent_tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError> {
        sqlx::query("SELECT * FROM tasks ORDER BY created_at DESC LIMIT $1")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(task_row)
            .collect()
    }

    async fn recent_channel_tasks(
        &self,
        platform: &str,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<TaskRow>, StoreError> {
        sqlx::query(
            "SELECT t.* FROM tasks t JOIN chat_tasks c ON c.task_id = t.id
             WHERE c.platform = $1 AND c.channel = $2
             ORDER BY t.created_at DESC LIMIT $3",
        )
        .bind(platform)
        .bind(channel)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(task_row)
        .collect()
    }

    async fn web_token(&self, task_id: &str) -> Result<String, StoreError> {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query("UPDATE tasks SET web_token = $1 WHERE id = $2 AND web_token IS NULL")
            .bind(&fresh)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        let token: Option<Option<String>> =
            sqlx::query_scalar("SELECT web_token FROM tasks WHERE id = $1")
                .bind(task_id)
                .fetch_optional(&self.pool)
                .await?;
        token
            .flatten()
            .ok_or_else(|| StoreError::Corrupt(format!("task {task_id} has no web token")))
    }

    async fn task_by_web_token(&self, token: &str) -> Result<Option<TaskRow>, StoreError> {
        sqlx::query("SELECT * FROM tasks WHERE web_token = $1")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(task_row)
            .transpose()
    }

    #[tracing::instrument(name = "store.set_task_tests", skip(self))]
    async fn set_task_tests(&self, id: &str, tests: &TaskTests) -> Result<(), StoreError> {
        super::task_tests::set(&self.pool, id, tests).await
    }

    #[tracing::instrument(name = "store.set_task_instructions", skip(self, files))]
    async fn set_task_instructions(
        &self,
        id: &str,
        files: &[InstructionFile],
    ) -> Result<(), StoreError> {
        super::task_instructions::set(&self.pool, id, files).await
    }
}
