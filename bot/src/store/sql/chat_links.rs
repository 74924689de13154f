//! A task's place in chat (`chat_tasks`), requests queued behind a running task in a thread,
//! and a channel's chosen repository.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, now_ms};
use crate::store::{ChatStore, ChatTaskLink, StoreError};

pub(super) fn chat_link(r: &AnyRow) -> Result<ChatTaskLink, StoreError> {
    Ok(ChatTaskLink {
        task_id: r.try_get("task_id")?,
        platform: r.try_get("platform")?,
        workspace: r.try_get("workspace")?,
        channel: r.try_get("channel")?,
        thread: r.try_get("thread")?,
        trigger_ts: r.try_get("trigger_ts")?,
        requester: r.try_get("requester")?,
        status_ts: r.try_get("status_ts")?,
        summary_ts: r.try_get("summary_ts")?,
        retry_of: r.try_get("retry_of")?,
        feedback: r.try_get("feedback")?,
    })
}

#[async_trait]
impl ChatStore for SqlStore {
    async fn link_chat_task(&self, l: &ChatTaskLink) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO chat_tasks (task_id, platform, workspace, channel, thread, trigger_ts, requester,
                status_ts, summary_ts, retry_of, feedback)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&l.task_id)
        .bind(&l.platform)
        .bind(&l.workspace)
        .bind(&l.channel)
        .bind(&l.thread)
        .bind(&l.trigger_ts)
        .bind(&l.requester)
        .bind(&l.status_ts)
        .bind(&l.summary_ts)
        .bind(&l.retry_of)
        .bind(&l.feedback)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn chat_task(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError> {
        sqlx::query("SELECT * FROM chat_tasks WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(chat_link)
            .transpose()
    }

    async fn chat_task_by_trigger(
        &self,
        platform: &str,
        channel: &str,
        trigger_ts: &str,
    ) -> Result<Option<ChatTaskLink>, StoreError> {
        sqlx::query(
            "SELECT * FROM chat_tasks WHERE platform = $1 AND channel = $2 AND trigger_ts = $3 LIMIT 1",
        )
        .bind(platform)
        .bind(channel)
        .bind(trigger_ts)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(chat_link)
        .transpose()
    }

    async fn active_thread_task(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<ChatTaskLink>, StoreError> {
        sqlx::query(
            "SELECT c.* FROM chat_tasks c JOIN tasks t ON t.id = c.task_id
             WHERE c.platform = $1 AND c.channel = $2 AND c.thread = $3
               AND t.state NOT IN ('done', 'failed', 'cancelled')
             ORDER BY t.created_at DESC LIMIT 1",
        )
        .bind(platform)
        .bind(channel)
        .bind(thread)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(chat_link)
        .transpose()
    }

    async fn queue_request(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        trigger_ts: &str,
        event: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO queued_requests (platform, channel, trigger_ts, thread, event, queued_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (platform, channel, trigger_ts) DO NOTHING",
        )
        .bind(platform)
        .bind(channel)
        .bind(trigger_ts)
        .bind(thread)
        .bind(event)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn next_queued_request(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        sqlx::query(
            "SELECT trigger_ts, event, queued_at FROM queued_requests
             WHERE platform = $1 AND channel = $2 AND thread = $3
             ORDER BY queued_at, trigger_ts LIMIT 1",
        )
        .bind(platform)
        .bind(channel)
        .bind(thread)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| {
            Ok((
                row.try_get("trigger_ts")?,
                row.try_get("event")?,
                row.try_get("queued_at")?,
            ))
        })
        .transpose()
    }

    async fn unqueue_request(
        &self,
        platform: &str,
        channel: &str,
        trigger_ts: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM queued_requests WHERE platform = $1 AND channel = $2 AND trigger_ts = $3",
        )
        .bind(platform)
        .bind(channel)
        .bind(trigger_ts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn retry_of(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError> {
        sqlx::query("SELECT * FROM chat_tasks WHERE retry_of = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(chat_link)
            .transpose()
    }

    async fn set_status_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_tasks SET status_ts = $1 WHERE task_id = $2")
            .bind(ts)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_summary_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_tasks SET summary_ts = $1 WHERE task_id = $2")
            .bind(ts)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn channel_repo(
        &self,
        platform: &str,
        channel: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT default_repo FROM channel_settings WHERE platform = $1 AND channel = $2",
        )
        .bind(platform)
        .bind(channel)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get::<Option<String>, _>("default_repo"))
        .transpose()?
        .flatten())
    }

    async fn set_channel_repo(
        &self,
        platform: &str,
        channel: &str,
        repo: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO channel_settings (platform, channel, default_repo) VALUES ($1, $2, $3)
             ON CONFLICT (platform, channel) DO UPDATE SET default_repo = excluded.default_repo",
        )
        .bind(platform)
        .bind(channel)
        .bind(repo)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
