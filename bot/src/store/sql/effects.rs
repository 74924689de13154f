//! Idempotency records (`effects`) and the claims on a request.

use async_trait::async_trait;
use sqlx::Row;
use tokio::sync::watch;

use super::{SqlStore, now, now_ms};
use crate::store::{EffectStore, StoreError};

#[async_trait]
impl EffectStore for SqlStore {
    fn effect_changes(&self) -> watch::Receiver<u64> {
        self.changes.effects()
    }

    async fn record_effect(&self, key: &str, result: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO effects (key, result, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(result)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(self.written(done.rows_affected()))
    }

    async fn claim_request(&self, key: &str, worker: &str) -> Result<bool, StoreError> {
        let first = self.record_effect(key, worker).await?;
        if first {
            return Ok(true);
        }
        let done = sqlx::query(
            "UPDATE effects SET result = $2
             WHERE key = $1 AND (result = $2 OR result IS NULL OR NOT EXISTS (
                SELECT 1 FROM workers w WHERE w.id = effects.result AND w.alive_until > $3))",
        )
        .bind(key)
        .bind(worker)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(self.written(done.rows_affected()))
    }

    async fn release_request(&self, key: &str, worker: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE effects SET result = NULL WHERE key = $1 AND result = $2")
            .bind(key)
            .bind(worker)
            .execute(&self.pool)
            .await?;
        self.written(done.rows_affected());
        Ok(())
    }

    async fn effect(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT result FROM effects WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("result"))
            .transpose()?
            .flatten())
    }

    async fn replace_effect(&self, key: &str, result: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO effects (key, result, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET result = excluded.result
             WHERE effects.result IS NULL OR effects.result <> excluded.result",
        )
        .bind(key)
        .bind(result)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(self.written(done.rows_affected()))
    }
}

impl SqlStore {
    /// Signals a write of one row (true) or of none (false).
    fn written(&self, rows: u64) -> bool {
        if rows == 1 {
            self.changes.effects_written();
        }
        rows == 1
    }
}
