//! What attempts cost, kept beside them (migration `usage`): a rollout's tokens, calls and
//! times (`rollouts.prompt_tokens`…), a task's spec and plan calls (`tasks.spec_*`) and its
//! model; and the tokens used since a time, for the daily limits.

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use threadsmith_runner::{ModelUsage, RolloutCost};

use super::ms;
use crate::store::StoreError;

fn count(r: &AnyRow, col: &str) -> Result<u64, StoreError> {
    Ok(r.try_get::<Option<i64>, _>(col)?.unwrap_or(0).max(0) as u64)
}

/// The usage in columns `{calls}_calls`, `{calls}_unmeasured`, `{tokens}prompt_tokens` and
/// `{tokens}completion_tokens`.
fn usage(r: &AnyRow, calls: &str, tokens: &str) -> Result<ModelUsage, StoreError> {
    let small = |c: String| -> Result<u32, StoreError> {
        Ok(count(r, &c)?.min(u64::from(u32::MAX)) as u32)
    };
    Ok(ModelUsage {
        calls: small(format!("{calls}_calls"))?,
        unmeasured: small(format!("{calls}_unmeasured"))?,
        prompt_tokens: count(r, &format!("{tokens}prompt_tokens"))?,
        completion_tokens: count(r, &format!("{tokens}completion_tokens"))?,
    })
}

/// A rollout row's cost (zero for a rollout stored before it was kept).
pub(super) fn read_rollout(r: &AnyRow) -> Result<RolloutCost, StoreError> {
    Ok(RolloutCost {
        model: usage(r, "model", "")?,
        model_time: Duration::from_millis(count(r, "model_ms")?),
        sandbox_time: Duration::from_millis(count(r, "sandbox_ms")?),
    })
}

/// A task row's spec and plan calls, and its model.
pub(super) fn read_task(r: &AnyRow) -> Result<(ModelUsage, Option<String>), StoreError> {
    Ok((usage(r, "spec", "spec_")?, r.try_get("model")?))
}

pub(super) async fn write_rollout(
    exec: impl sqlx::Executor<'_, Database = sqlx::Any>,
    task_id: &str,
    index: u32,
    cost: &RolloutCost,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rollouts SET model_calls = $1, model_unmeasured = $2, prompt_tokens = $3,
            completion_tokens = $4, model_ms = $5, sandbox_ms = $6
         WHERE task_id = $7 AND idx = $8",
    )
    .bind(i64::from(cost.model.calls))
    .bind(i64::from(cost.model.unmeasured))
    .bind(cost.model.prompt_tokens as i64)
    .bind(cost.model.completion_tokens as i64)
    .bind(ms(cost.model_time))
    .bind(ms(cost.sandbox_time))
    .bind(task_id)
    .bind(index as i64)
    .execute(exec)
    .await?;
    Ok(())
}

/// Adds the spec and plan calls to the task's, and records its model.
pub(super) async fn add_task(
    pool: &AnyPool,
    id: &str,
    model: Option<&str>,
    u: &ModelUsage,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tasks SET model = COALESCE($1, model),
            spec_calls = COALESCE(spec_calls, 0) + $2,
            spec_unmeasured = COALESCE(spec_unmeasured, 0) + $3,
            spec_prompt_tokens = COALESCE(spec_prompt_tokens, 0) + $4,
            spec_completion_tokens = COALESCE(spec_completion_tokens, 0) + $5
         WHERE id = $6",
    )
    .bind(model)
    .bind(i64::from(u.calls))
    .bind(i64::from(u.unmeasured))
    .bind(u.prompt_tokens as i64)
    .bind(u.completion_tokens as i64)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Tokens measured since `since` (RFC 3339, UTC): of the rollouts that ended since, and the
/// spec and plan calls of the tasks created since; of `requester`'s tasks only, when given.
pub(super) async fn tokens_since(
    pool: &AnyPool,
    since: &str,
    requester: Option<&str>,
) -> Result<u64, StoreError> {
    let rollouts: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(COALESCE(r.prompt_tokens, 0) + COALESCE(r.completion_tokens, 0)) AS BIGINT)
         FROM rollouts r JOIN tasks t ON t.id = r.task_id
         WHERE r.finished_at >= $1 AND (CAST($2 AS TEXT) IS NULL OR t.requester = CAST($2 AS TEXT))",
    )
    .bind(since)
    .bind(requester)
    .fetch_one(pool)
    .await?;
    let specs: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(COALESCE(spec_prompt_tokens, 0) + COALESCE(spec_completion_tokens, 0)) AS BIGINT)
         FROM tasks WHERE created_at >= $1 AND (CAST($2 AS TEXT) IS NULL OR requester = CAST($2 AS TEXT))",
    )
    .bind(since)
    .bind(requester)
    .fetch_one(pool)
    .await?;
    Ok((rollouts.unwrap_or(0) + specs.unwrap_or(0)).max(0) as u64)
}
