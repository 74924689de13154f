//! Idempotency records (`effects`) and the claims on a request.

use sqlx::Row;

use super::{SqlStore, now, now_ms};
use crate::store::{Store, StoreError};

impl SqlStore {
    pub(super) async fn record_effect_impl(
        &self,
        key: &str,
        result: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO effects (key, result, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(result)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn claim_request_impl(
        &self,
        key: &str,
        worker: &str,
    ) -> Result<bool, StoreError> {
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
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn release_request_impl(
        &self,
        key: &str,
        worker: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE effects SET result = NULL WHERE key = $1 AND result = $2")
            .bind(key)
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn effect_impl(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT result FROM effects WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("result"))
            .transpose()?
            .flatten())
    }
}
