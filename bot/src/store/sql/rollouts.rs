//! Rollouts, their commands and diffs, and the ranking.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use threadsmith_runner::crosscheck::Matrix;
use threadsmith_runner::rank::Ranked;
use threadsmith_runner::{
    CommandKind, CommandRecord, Diff, FileChange, Outcome, RolloutResult, Sampling,
};

use super::{SqlStore, ms, now, time};
use crate::store::{RolloutRow, RolloutStore, StoreError, StoredTest};

pub(super) fn rollout_row(r: &AnyRow) -> Result<RolloutRow, StoreError> {
    let outcome: Option<String> = r.try_get("outcome")?;
    let outcome = outcome
        .map(|o| Outcome::parse(&o).ok_or_else(|| StoreError::Corrupt(format!("outcome `{o}`"))))
        .transpose()?;
    let temperature: Option<f64> = r.try_get("temperature")?;
    let seed: Option<i64> = r.try_get("seed")?;
    let passed: Option<i64> = r.try_get("tests_passed")?;
    let test = match passed {
        Some(p) => Some(StoredTest {
            passed: p != 0,
            exit_code: r.try_get("test_exit_code")?,
            timed_out: r.try_get::<Option<i64>, _>("test_timed_out")?.unwrap_or(0) != 0,
            output: r
                .try_get::<Option<String>, _>("test_output")?
                .unwrap_or_default(),
            duration: Duration::from_millis(
                r.try_get::<Option<i64>, _>("test_ms")?.unwrap_or(0) as u64
            ),
        }),
        None => None,
    };
    let count = |col: &str| -> Result<u64, StoreError> {
        Ok(r.try_get::<Option<i64>, _>(col)?.unwrap_or(0) as u64)
    };
    Ok(RolloutRow {
        index: r.try_get::<i64, _>("idx")? as u32,
        phase: r.try_get("phase")?,
        step: r.try_get::<i64, _>("step")? as u32,
        outcome,
        detail: r.try_get("detail")?,
        summary: r.try_get("summary")?,
        confidence: r.try_get("confidence")?,
        sampling: match (temperature, seed) {
            (Some(t), Some(s)) => Some(Sampling {
                temperature: t as f32,
                seed: s as u64,
            }),
            _ => None,
        },
        test,
        lines_added: count("lines_added")?,
        lines_removed: count("lines_removed")?,
        files_changed: count("files_changed")?,
        rank: r.try_get::<Option<i64>, _>("rank")?.map(|r| r as u32),
        rank_reason: r.try_get("rank_reason")?,
        rank_headline: r.try_get("rank_headline")?,
        rank_reasons: r
            .try_get::<Option<String>, _>("rank_reasons")?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        network: r.try_get("network")?,
        environment: r.try_get("environment")?,
        started_at: time(r.try_get("started_at")?)?,
        finished_at: time(r.try_get("finished_at")?)?,
        agent_duration: r
            .try_get::<Option<i64>, _>("agent_ms")?
            .map(|m| Duration::from_millis(m as u64)),
        cost: super::usage::read_rollout(r)?,
    })
}

pub(super) fn files_json(files: &[FileChange]) -> String {
    serde_json::Value::Array(
        files
            .iter()
            .map(|f| {
                let mut v = json!({"path": f.path, "added": f.added, "removed": f.removed});
                if let Some(old) = &f.old_path {
                    v["old_path"] = json!(old);
                }
                v
            })
            .collect(),
    )
    .to_string()
}

pub(super) fn parse_files(text: &str) -> Result<Vec<FileChange>, StoreError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("diff files: {e}")))?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .map(|f| FileChange {
                    path: f["path"].as_str().unwrap_or_default().to_string(),
                    old_path: f["old_path"].as_str().map(String::from),
                    added: f["added"].as_u64(),
                    removed: f["removed"].as_u64(),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// An optional float bound as text (cast back in the SQL). sqlx's Any driver declares a missing
/// `f64` as PostgreSQL `float4`; the statement a connection caches keeps that type, and a later
/// `f64` for it is refused ("incorrect binary data format"). Text is text either way, and Rust
/// writes an `f64` so that it reads back exactly.
pub(super) fn float_text(v: Option<f64>) -> Option<String> {
    v.map(|v| v.to_string())
}

pub(super) async fn insert_command(
    exec: impl sqlx::Executor<'_, Database = sqlx::Any>,
    task_id: &str,
    index: u32,
    c: &CommandRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO commands (task_id, rollout_idx, seq, kind, command, exit_code, timed_out,
            duration_ms, output, output_bytes, dropped_bytes, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (task_id, rollout_idx, seq) DO NOTHING",
    )
    .bind(task_id)
    .bind(index as i64)
    .bind(c.seq as i64)
    .bind(c.kind.as_str())
    .bind(&c.command)
    .bind(c.exit_code)
    .bind(c.timed_out as i64)
    .bind(ms(c.duration))
    .bind(&c.output)
    .bind(c.output_bytes as i64)
    .bind(c.dropped_bytes as i64)
    .bind(c.started_at.to_rfc3339())
    .execute(exec)
    .await?;
    Ok(())
}

#[async_trait]
impl RolloutStore for SqlStore {
    #[tracing::instrument(name = "store.create_rollouts", skip(self, rollouts))]
    async fn create_rollouts(
        &self,
        task_id: &str,
        rollouts: &[(u32, Sampling)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (index, sampling) in rollouts {
            sqlx::query(
                "INSERT INTO rollouts (task_id, idx, phase, temperature, seed, started_at)
                 VALUES ($1, $2, 'starting', $3, $4, $5)
                 ON CONFLICT (task_id, idx) DO NOTHING",
            )
            .bind(task_id)
            .bind(*index as i64)
            .bind(f64::from(sampling.temperature))
            .bind(sampling.seed as i64)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_rollout_phase(
        &self,
        task_id: &str,
        index: u32,
        phase: &str,
        step: u32,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE rollouts SET phase = $1, step = $2 WHERE task_id = $3 AND idx = $4")
            .bind(phase)
            .bind(step as i64)
            .bind(task_id)
            .bind(index as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_command(
        &self,
        task_id: &str,
        index: u32,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        insert_command(&self.pool, task_id, index, record).await
    }

    #[tracing::instrument(name = "store.finish_rollout", skip_all, fields(task = task_id, rollout = r.index))]
    async fn finish_rollout(&self, task_id: &str, r: &RolloutResult) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let test = r.test.as_ref();
        sqlx::query(
            "INSERT INTO rollouts (task_id, idx, phase) VALUES ($1, $2, 'done')
             ON CONFLICT (task_id, idx) DO NOTHING",
        )
        .bind(task_id)
        .bind(r.index as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE rollouts SET phase = 'done', outcome = $1, detail = $2, summary = $3, confidence = CAST($4 AS DOUBLE PRECISION),
                tests_passed = $5, test_exit_code = $6, test_timed_out = $7, test_output = $8, test_ms = $9,
                lines_added = $10, lines_removed = $11, files_changed = $12, network = $13, environment = $21,
                started_at = $14, finished_at = $15, agent_ms = $16,
                temperature = COALESCE(CAST($17 AS DOUBLE PRECISION), temperature), seed = COALESCE($18, seed)
             WHERE task_id = $19 AND idx = $20",
        )
        .bind(r.outcome.as_str())
        .bind(&r.detail)
        .bind(&r.summary)
        .bind(float_text(r.confidence))
        .bind(test.map(|t| t.passed as i64))
        .bind(test.and_then(|t| t.exit_code))
        .bind(test.map(|t| t.timed_out as i64))
        .bind(test.map(|t| t.output.as_str()))
        .bind(test.map(|t| ms(t.duration)))
        .bind(r.diff.added() as i64)
        .bind(r.diff.removed() as i64)
        .bind(r.diff.files.len() as i64)
        .bind(&r.network)
        .bind(r.started_at.to_rfc3339())
        .bind(r.finished_at.to_rfc3339())
        .bind(ms(r.agent_duration))
        .bind(float_text(r.sampling.map(|s| f64::from(s.temperature))))
        .bind(r.sampling.map(|s| s.seed as i64))
        .bind(task_id)
        .bind(r.index as i64)
        .bind(r.environment.as_ref().map(|e| e.words()))
        .execute(&mut *tx)
        .await?;
        super::usage::write_rollout(&mut *tx, task_id, r.index, &r.cost).await?;
        for c in &r.commands {
            insert_command(&mut *tx, task_id, r.index, c).await?;
        }
        sqlx::query(
            "INSERT INTO diffs (task_id, rollout_idx, patch, files, test_files) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (task_id, rollout_idx) DO UPDATE SET patch = excluded.patch, files = excluded.files,
                test_files = excluded.test_files",
        )
        .bind(task_id)
        .bind(r.index as i64)
        .bind(&r.diff.patch)
        .bind(files_json(&r.diff.files))
        .bind(serde_json::Value::from(r.diff.test_files.clone()).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.set_ranks", skip(self, ranked))]
    async fn set_ranks(&self, task_id: &str, ranked: &[Ranked]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in ranked {
            sqlx::query(
                "UPDATE rollouts SET rank = $1, rank_reason = $2, rank_headline = $3, \
                 rank_reasons = $4 WHERE task_id = $5 AND idx = $6",
            )
            .bind(r.rank as i64)
            .bind(&r.reason)
            .bind(&r.headline)
            .bind(serde_json::to_string(&r.reasons).unwrap_or_default())
            .bind(task_id)
            .bind(r.index as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rollouts(&self, task_id: &str) -> Result<Vec<RolloutRow>, StoreError> {
        sqlx::query("SELECT * FROM rollouts WHERE task_id = $1 ORDER BY rank IS NULL, rank, idx")
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rollout_row)
            .collect()
    }

    async fn commands(&self, task_id: &str, index: u32) -> Result<Vec<CommandRecord>, StoreError> {
        sqlx::query("SELECT * FROM commands WHERE task_id = $1 AND rollout_idx = $2 ORDER BY seq")
            .bind(task_id)
            .bind(index as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(CommandRecord {
                    seq: r.try_get::<i64, _>("seq")? as u32,
                    kind: CommandKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("command kind `{kind}`")))?,
                    command: r.try_get("command")?,
                    exit_code: r.try_get("exit_code")?,
                    timed_out: r.try_get::<i64, _>("timed_out")? != 0,
                    duration: Duration::from_millis(r.try_get::<i64, _>("duration_ms")? as u64),
                    output: r.try_get("output")?,
                    output_bytes: r.try_get::<i64, _>("output_bytes")? as u64,
                    dropped_bytes: r.try_get::<i64, _>("dropped_bytes")? as u64,
                    started_at: time(r.try_get("started_at")?)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn diff(&self, task_id: &str, index: u32) -> Result<Option<Diff>, StoreError> {
        let row = sqlx::query(
            "SELECT patch, files, test_files FROM diffs WHERE task_id = $1 AND rollout_idx = $2",
        )
        .bind(task_id)
        .bind(index as i64)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let files: String = r.try_get("files")?;
            let tests: Option<String> = r.try_get("test_files")?;
            Ok(Diff {
                patch: r.try_get("patch")?,
                files: parse_files(&files)?,
                test_files: tests
                    .map(|t| serde_json::from_str(&t))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("diff test files: {e}")))?
                    .unwrap_or_default(),
            })
        })
        .transpose()
    }

    #[tracing::instrument(name = "store.set_crosschecks", skip(self, matrix))]
    async fn set_crosschecks(&self, task_id: &str, matrix: &Matrix) -> Result<(), StoreError> {
        let text = serde_json::to_string(matrix)
            .map_err(|e| StoreError::Corrupt(format!("cross-checks: {e}")))?;
        sqlx::query("UPDATE tasks SET crosschecks = $1 WHERE id = $2")
            .bind(text)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn crosschecks(&self, task_id: &str) -> Result<Option<Matrix>, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT crosschecks FROM tasks WHERE id = $1")
                .bind(task_id)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Corrupt(format!("cross-checks of {task_id}: {e}")))
        })
        .transpose()
    }
}
