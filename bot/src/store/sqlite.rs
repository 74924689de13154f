//! The SQLite store (WAL, foreign keys on, migrations from `migrations/sqlite/` at open).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqlitePool};
use threadsmith_runner::rank::Ranked;
use threadsmith_runner::{
    CommandKind, CommandRecord, Diff, FileChange, Outcome, RolloutResult, Sampling,
};

use super::{
    Approval, ChatTaskLink, InboxItem, NewTask, Plan, Publication, Question, RolloutRow, Store,
    StoreError, StoredTest, TaskRow, TaskState,
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

fn time(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("time `{s}`: {e}")))
    })
    .transpose()
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL syncs at checkpoints rather than at every commit: a crash of the
            // process loses nothing; only a power cut can lose the last commits.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn task_row(r: &SqliteRow) -> Result<TaskRow, StoreError> {
    let state: String = r.try_get("state")?;
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
    })
}

fn rollout_row(r: &SqliteRow) -> Result<RolloutRow, StoreError> {
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
        network: r.try_get("network")?,
        started_at: time(r.try_get("started_at")?)?,
        finished_at: time(r.try_get("finished_at")?)?,
        agent_duration: r
            .try_get::<Option<i64>, _>("agent_ms")?
            .map(|m| Duration::from_millis(m as u64)),
    })
}

fn files_json(files: &[FileChange]) -> String {
    serde_json::Value::Array(
        files
            .iter()
            .map(|f| json!({"path": f.path, "added": f.added, "removed": f.removed}))
            .collect(),
    )
    .to_string()
}

fn parse_files(text: &str) -> Result<Vec<FileChange>, StoreError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("diff files: {e}")))?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .map(|f| FileChange {
                    path: f["path"].as_str().unwrap_or_default().to_string(),
                    added: f["added"].as_u64(),
                    removed: f["removed"].as_u64(),
                })
                .collect()
        })
        .unwrap_or_default())
}

fn chat_link(r: &SqliteRow) -> Result<ChatTaskLink, StoreError> {
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

fn question_row(r: &SqliteRow) -> Result<Question, StoreError> {
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

async fn insert_command(
    exec: impl sqlx::SqliteExecutor<'_>,
    task_id: &str,
    index: u32,
    c: &CommandRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR IGNORE INTO commands (task_id, rollout_idx, seq, kind, command, exit_code, timed_out,
            duration_ms, output, output_bytes, dropped_bytes, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
impl Store for SqliteStore {
    #[tracing::instrument(name = "store.create_task", skip_all, fields(task = %task.id))]
    async fn create_task(&self, task: &NewTask) -> Result<(), StoreError> {
        let now = now();
        sqlx::query(
            "INSERT INTO tasks (id, created_at, updated_at, state, origin, requester, title, spec, repo, base_ref, attempts, spec_json)
             VALUES (?, ?, ?, 'received', ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&self.pool)
        .await?;
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
            "UPDATE tasks SET state = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.set_task_base", skip(self))]
    async fn set_task_base(
        &self,
        id: &str,
        base_ref: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET base_ref = ?, base_commit = ?, updated_at = ? WHERE id = ?")
            .bind(base_ref)
            .bind(commit)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.create_rollouts", skip(self, rollouts))]
    async fn create_rollouts(
        &self,
        task_id: &str,
        rollouts: &[(u32, Sampling)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (index, sampling) in rollouts {
            sqlx::query(
                "INSERT OR IGNORE INTO rollouts (task_id, idx, phase, temperature, seed, started_at)
                 VALUES (?, ?, 'starting', ?, ?, ?)",
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
        sqlx::query("UPDATE rollouts SET phase = ?, step = ? WHERE task_id = ? AND idx = ?")
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
            "INSERT INTO rollouts (task_id, idx, phase) VALUES (?, ?, 'done')
             ON CONFLICT (task_id, idx) DO NOTHING",
        )
        .bind(task_id)
        .bind(r.index as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE rollouts SET phase = 'done', outcome = ?, detail = ?, summary = ?, confidence = ?,
                tests_passed = ?, test_exit_code = ?, test_timed_out = ?, test_output = ?, test_ms = ?,
                lines_added = ?, lines_removed = ?, files_changed = ?, network = ?,
                started_at = ?, finished_at = ?, agent_ms = ?,
                temperature = COALESCE(?, temperature), seed = COALESCE(?, seed)
             WHERE task_id = ? AND idx = ?",
        )
        .bind(r.outcome.as_str())
        .bind(&r.detail)
        .bind(&r.summary)
        .bind(r.confidence)
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
        .bind(r.sampling.map(|s| f64::from(s.temperature)))
        .bind(r.sampling.map(|s| s.seed as i64))
        .bind(task_id)
        .bind(r.index as i64)
        .execute(&mut *tx)
        .await?;
        for c in &r.commands {
            insert_command(&mut *tx, task_id, r.index, c).await?;
        }
        sqlx::query(
            "INSERT INTO diffs (task_id, rollout_idx, patch, files) VALUES (?, ?, ?, ?)
             ON CONFLICT (task_id, rollout_idx) DO UPDATE SET patch = excluded.patch, files = excluded.files",
        )
        .bind(task_id)
        .bind(r.index as i64)
        .bind(&r.diff.patch)
        .bind(files_json(&r.diff.files))
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
                "UPDATE rollouts SET rank = ?, rank_reason = ? WHERE task_id = ? AND idx = ?",
            )
            .bind(r.rank as i64)
            .bind(&r.reason)
            .bind(task_id)
            .bind(r.index as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn task(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        sqlx::query("SELECT * FROM tasks WHERE id = ?")
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
            "SELECT * FROM tasks WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT 10",
        )
        .bind(pattern)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(task_row)
        .collect()
    }

    async fn recent_tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError> {
        sqlx::query("SELECT * FROM tasks ORDER BY created_at DESC LIMIT ?")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(task_row)
            .collect()
    }

    async fn rollouts(&self, task_id: &str) -> Result<Vec<RolloutRow>, StoreError> {
        sqlx::query("SELECT * FROM rollouts WHERE task_id = ? ORDER BY rank IS NULL, rank, idx")
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rollout_row)
            .collect()
    }

    async fn commands(&self, task_id: &str, index: u32) -> Result<Vec<CommandRecord>, StoreError> {
        sqlx::query("SELECT * FROM commands WHERE task_id = ? AND rollout_idx = ? ORDER BY seq")
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
        let row =
            sqlx::query("SELECT patch, files FROM diffs WHERE task_id = ? AND rollout_idx = ?")
                .bind(task_id)
                .bind(index as i64)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let files: String = r.try_get("files")?;
            Ok(Diff {
                patch: r.try_get("patch")?,
                files: parse_files(&files)?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(name = "store.enqueue", skip(self, event))]
    async fn enqueue(
        &self,
        dedupe_key: &str,
        platform: &str,
        event: &str,
    ) -> Result<Option<i64>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO inbox (dedupe_key, platform, event, received_at, state) VALUES (?, ?, ?, ?, 'queued')
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(dedupe_key)
        .bind(platform)
        .bind(event)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok((done.rows_affected() == 1).then(|| done.last_insert_rowid()))
    }

    async fn inbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn queued(
        &self,
        platform: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        sqlx::query(
            "SELECT id, event FROM inbox WHERE state = 'queued' AND platform = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(platform)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(InboxItem {
                id: r.try_get("id")?,
                event: r.try_get("event")?,
            })
        })
        .collect()
    }

    async fn finish_inbox(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE inbox SET state = ?, error = ?, handled_at = ? WHERE id = ?")
            .bind(if error.is_some() { "failed" } else { "done" })
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn link_chat_task(&self, l: &ChatTaskLink) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO chat_tasks (task_id, platform, workspace, channel, thread, trigger_ts, requester,
                status_ts, summary_ts, retry_of, feedback)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        sqlx::query("SELECT * FROM chat_tasks WHERE task_id = ?")
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
            "SELECT * FROM chat_tasks WHERE platform = ? AND channel = ? AND trigger_ts = ? LIMIT 1",
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

    async fn unfinished_chat_tasks(&self, platform: &str) -> Result<Vec<ChatTaskLink>, StoreError> {
        sqlx::query(
            "SELECT c.* FROM chat_tasks c JOIN tasks t ON t.id = c.task_id
             WHERE c.platform = ? AND t.state IN ('received', 'preparing', 'running')
             ORDER BY t.created_at",
        )
        .bind(platform)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(chat_link)
        .collect()
    }

    async fn retry_of(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError> {
        sqlx::query("SELECT * FROM chat_tasks WHERE retry_of = ?")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(chat_link)
            .transpose()
    }

    async fn set_status_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_tasks SET status_ts = ? WHERE task_id = ?")
            .bind(ts)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_summary_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_tasks SET summary_ts = ? WHERE task_id = ?")
            .bind(ts)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_effect(&self, key: &str, result: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO effects (key, result, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(result)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn effect(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT result FROM effects WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("result"))
            .transpose()?
            .flatten())
    }

    async fn approve(&self, task_id: &str, rollout: u32, by: &str) -> Result<Approval, StoreError> {
        sqlx::query(
            "INSERT INTO approvals (task_id, rollout_idx, approved_by, approved_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (task_id) DO NOTHING",
        )
        .bind(task_id)
        .bind(rollout as i64)
        .bind(by)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.approval(task_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("approval of {task_id} vanished")))
    }

    async fn approval(&self, task_id: &str) -> Result<Option<Approval>, StoreError> {
        sqlx::query("SELECT * FROM approvals WHERE task_id = ?")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| {
                Ok(Approval {
                    task_id: r.try_get("task_id")?,
                    rollout: r.try_get::<i64, _>("rollout_idx")? as u32,
                    approved_by: r.try_get("approved_by")?,
                    approved_at: time(r.try_get("approved_at")?)?.unwrap_or_default(),
                })
            })
            .transpose()
    }

    async fn inbox_pending(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn withdraw_approval(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM approvals WHERE task_id = ?")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn web_token(&self, task_id: &str) -> Result<String, StoreError> {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query("UPDATE tasks SET web_token = ? WHERE id = ? AND web_token IS NULL")
            .bind(&fresh)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        let token: Option<Option<String>> =
            sqlx::query_scalar("SELECT web_token FROM tasks WHERE id = ?")
                .bind(task_id)
                .fetch_optional(&self.pool)
                .await?;
        token
            .flatten()
            .ok_or_else(|| StoreError::Corrupt(format!("task {task_id} has no web token")))
    }

    async fn task_by_web_token(&self, token: &str) -> Result<Option<TaskRow>, StoreError> {
        sqlx::query("SELECT * FROM tasks WHERE web_token = ?")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(task_row)
            .transpose()
    }

    async fn claim_publication(
        &self,
        task_id: &str,
        rollout: u32,
        branch: &str,
    ) -> Result<Publication, StoreError> {
        sqlx::query(
            "INSERT INTO publications (task_id, rollout_idx, state, branch, claimed_at)
             VALUES (?, ?, 'publishing', ?, ?) ON CONFLICT (task_id) DO NOTHING",
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
            "UPDATE publications SET state = 'published', commit_sha = ?, url = ?, pr_number = ?,
             published_at = ? WHERE task_id = ?",
        )
        .bind(commit)
        .bind(url)
        .bind(pr_number.map(|n| n as i64))
        .bind(now())
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn drop_publication(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM publications WHERE task_id = ? AND state = 'publishing'")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn publication(&self, task_id: &str) -> Result<Option<Publication>, StoreError> {
        sqlx::query("SELECT * FROM publications WHERE task_id = ?")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| {
                Ok(Publication {
                    task_id: r.try_get("task_id")?,
                    rollout: r.try_get::<i64, _>("rollout_idx")? as u32,
                    state: r.try_get("state")?,
                    branch: r.try_get("branch")?,
                    commit: r.try_get("commit_sha")?,
                    url: r.try_get("url")?,
                    pr_number: r.try_get::<Option<i64>, _>("pr_number")?.map(|n| n as u64),
                })
            })
            .transpose()
    }

    async fn channel_repo(
        &self,
        platform: &str,
        channel: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT default_repo FROM channel_settings WHERE platform = ? AND channel = ?",
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
            "INSERT INTO channel_settings (platform, channel, default_repo) VALUES (?, ?, ?)
             ON CONFLICT (platform, channel) DO UPDATE SET default_repo = excluded.default_repo",
        )
        .bind(platform)
        .bind(channel)
        .bind(repo)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_plan(&self, p: &Plan) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plans (id, platform, workspace, channel, thread, trigger_ts, requester, repo,
                base_ref, attempts, spec_json, plan, revises, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.platform)
        .bind(&p.workspace)
        .bind(&p.channel)
        .bind(&p.thread)
        .bind(&p.trigger_ts)
        .bind(&p.requester)
        .bind(&p.repo)
        .bind(&p.base_ref)
        .bind(p.attempts.map(i64::from))
        .bind(&p.spec_json)
        .bind(&p.plan)
        .bind(&p.revises)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        sqlx::query("SELECT * FROM plans WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| {
                Ok(Plan {
                    id: r.try_get("id")?,
                    platform: r.try_get("platform")?,
                    workspace: r.try_get("workspace")?,
                    channel: r.try_get("channel")?,
                    thread: r.try_get("thread")?,
                    trigger_ts: r.try_get("trigger_ts")?,
                    requester: r.try_get("requester")?,
                    repo: r.try_get("repo")?,
                    base_ref: r.try_get("base_ref")?,
                    attempts: r.try_get::<Option<i64>, _>("attempts")?.map(|a| a as u32),
                    spec_json: r.try_get("spec_json")?,
                    plan: r.try_get("plan")?,
                    revises: r.try_get("revises")?,
                })
            })
            .transpose()
    }

    async fn ask(&self, q: &Question) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO questions (id, platform, workspace, channel, thread, trigger_ts, requester, kind,
                instructions, base_ref, attempts, message_ts, expires_at, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
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
        sqlx::query("SELECT * FROM questions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(question_row)
            .transpose()
    }

    async fn close_question(&self, id: &str, state: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE questions SET state = ? WHERE id = ? AND state = 'open'")
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
