//! Questions asked in a thread and waiting for an answer (the repository question).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, time};
use crate::store::{Question, QuestionStore, StoreError};

pub(super) fn question_row(r: &AnyRow) -> Result<Question, StoreError> {
    Ok(Question {
        id: r.try_get("id")?,
        platform: r.try_get("platform")?,
        workspace: r.try_get("workspace")?,
        channel: r.try_get("channel")?,
        thread: r.try_get("thread")?,
        trigger_ts: r.try_get("trigger_ts")?,
        requester: r.try_get("requester")?,
        kind: r.try_get("kind")?,
        instructions: r.try_get("instructions")?,
        base_ref: r.try_get("base_ref")?,
        attempts: r.try_get::<Option<i64>, _>("attempts")?.map(|a| a as u32),
        message_ts: r.try_get("message_ts")?,
        expires_at: time(r.try_get("expires_at")?)?.unwrap_or_default(),
    })
}

#[async_trait]
impl QuestionStore for SqlStore {
    async fn ask(&self, q: &Question) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO questions (id, platform, workspace, channel, thread, trigger_ts, requester, kind,
                instructions, base_ref, attempts, message_ts, expires_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'open')",
        )
        .bind(&q.id)
        .bind(&q.platform)
        .bind(&q.workspace)
        .bind(&q.channel)
        .bind(&q.thread)
        .bind(&q.trigger_ts)
        .bind(&q.requester)
        .bind(&q.kind)
        .bind(&q.instructions)
        .bind(&q.base_ref)
        .bind(q.attempts.map(i64::from))
        .bind(&q.message_ts)
        .bind(q.expires_at.to_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn question(&self, id: &str) -> Result<Option<Question>, StoreError> {
        sqlx::query("SELECT * FROM questions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(question_row)
            .transpose()
    }

    async fn close_question(&self, id: &str, state: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE questions SET state = $1 WHERE id = $2 AND state = 'open'")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn open_questions(&self) -> Result<Vec<Question>, StoreError> {
        sqlx::query("SELECT * FROM questions WHERE state = 'open' ORDER BY expires_at")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(question_row)
            .collect()
    }
}
