//! The judge's answers, kept per task and set of candidates: the first one stored wins.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, now};
use crate::store::{JudgeAnswer, JudgementStore, StoreError, StoredJudgement};

fn key(candidates: &[u32]) -> String {
    let list: Vec<String> = candidates.iter().map(u32::to_string).collect();
    list.join(",")
}

#[async_trait]
impl JudgementStore for SqlStore {
    #[tracing::instrument(name = "store.keep_judgement", skip(self, judgement))]
    async fn keep_judgement(
        &self,
        task_id: &str,
        judgement: &StoredJudgement,
    ) -> Result<StoredJudgement, StoreError> {
        let answer = serde_json::to_string(&judgement.answer)
            .map_err(|e| StoreError::Corrupt(format!("a judgement could not be written: {e}")))?;
        sqlx::query(
            "INSERT INTO judgements (task_id, candidates, model, answer, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (task_id, candidates) DO NOTHING",
        )
        .bind(task_id)
        .bind(key(&judgement.candidates))
        .bind(&judgement.model)
        .bind(answer)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.judgement(task_id, &judgement.candidates)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a judgement just stored is missing".into()))
    }

    #[tracing::instrument(name = "store.judgement", skip(self))]
    async fn judgement(
        &self,
        task_id: &str,
        candidates: &[u32],
    ) -> Result<Option<StoredJudgement>, StoreError> {
        let row = sqlx::query(
            "SELECT model, answer FROM judgements WHERE task_id = $1 AND candidates = $2",
        )
        .bind(task_id)
        .bind(key(candidates))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let answer: String = row.try_get("answer")?;
        let answer: JudgeAnswer = serde_json::from_str(&answer)
            .map_err(|e| StoreError::Corrupt(format!("a stored judgement is not valid: {e}")))?;
        Ok(Some(StoredJudgement {
            candidates: candidates.to_vec(),
            model: row.try_get("model")?,
            answer,
        }))
    }
}
