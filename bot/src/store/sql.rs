//! The SQL store: one implementation for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! Every query is written once, in the SQL both understand (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`); the schemas in `migrations/sqlite/` and `migrations/postgres/` use the same
//! column names and only portable types (TEXT, BIGINT, DOUBLE PRECISION), with times as RFC 3339
//! text and lease deadlines as Unix milliseconds. The few statements that differ by backend
//! (locking the work queue) branch on [`Backend`].

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use threadsmith_runner::rank::Ranked;
use threadsmith_runner::{
    CommandKind, CommandRecord, Diff, FileChange, Outcome, RolloutResult, Sampling,
};

use super::{
    Approval, ChatTaskLink, InboxItem, Load, NewEvent, NewTask, Plan, Pruned, Publication,
    PublicationLease, Question, RolloutLimits, RolloutRow, Store, StoreError, StoredTest, TaskRow,
    TaskState, Worker,
};

mod housekeeping;
mod inbox;
mod publish;
mod task_tests;
mod thread_claims;

pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
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

/// SQLite creates the file when it is missing (`mode=rwc`) unless the URL says otherwise.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl SqlStore {
    /// Connects to the database a URL names (`sqlite://…` or `postgres://…`) and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend =
            Backend::of_url(url).ok_or_else(|| StoreError::Unsupported(super::redact_url(url)))?;
        let open_err = |source| StoreError::Open {
            url: super::redact_url(url),
            source,
        };
        let (connect_url, max) = match backend {
            Backend::Sqlite => (sqlite_url(url), 8),
            Backend::Postgres => (url.to_string(), 16),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never wait for the writer. NORMAL syncs at checkpoints
                        // rather than at every commit: a crash of the process loses nothing;
                        // only a power cut can lose the last commits.
                        conn.execute(
                            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(open_err)?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&pool).await?,
        }
        Ok(Self { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

fn task_row(r: &AnyRow) -> Result<TaskRow, StoreError> {
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
        worker: r.try_get("worker")?,
        tests: task_tests::read(r)?,
    })
}

fn rollout_row(r: &AnyRow) -> Result<RolloutRow, StoreError> {
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

fn parse_files(text: &str) -> Result<Vec<FileChange>, StoreError> {
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

fn chat_link(r: &AnyRow) -> Result<ChatTaskLink, StoreError> {
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

fn question_row(r: &AnyRow) -> Result<Question, StoreError> {
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

/// An optional float bound as text (cast back in the SQL). sqlx's Any driver declares a missing
/// `f64` as PostgreSQL `float4`; the statement a connection caches keeps that type, and a later
/// `f64` for it is refused ("incorrect binary data format"). Text is text either way, and Rust
/// writes an `f64` so that it reads back exactly.
fn float_text(v: Option<f64>) -> Option<String> {
    v.map(|v| v.to_string())
}

async fn insert_command(
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
impl Store for SqlStore {
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
        Ok(())
    }

    #[tracing::instrument(name = "store.set_task_tests", skip(self))]
    async fn set_task_tests(&self, id: &str, tests: &super::TaskTests) -> Result<(), StoreError> {
        task_tests::set(&self.pool, id, tests).await
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
                lines_added = $10, lines_removed = $11, files_changed = $12, network = $13,
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
        .execute(&mut *tx)
        .await?;
        for c in &r.commands {
            insert_command(&mut *tx, task_id, r.index, c).await?;
        }
        sqlx::query(
            "INSERT INTO diffs (task_id, rollout_idx, patch, files) VALUES ($1, $2, $3, $4)
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
                "UPDATE rollouts SET rank = $1, rank_reason = $2 WHERE task_id = $3 AND idx = $4",
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
        let row =
            sqlx::query("SELECT patch, files FROM diffs WHERE task_id = $1 AND rollout_idx = $2")
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
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbox (dedupe_key, platform, event, received_at, state) VALUES ($1, $2, $3, $4, 'queued')
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(dedupe_key)
        .bind(platform)
        .bind(event)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    #[tracing::instrument(name = "store.enqueue_many", skip_all, fields(events = events.len()))]
    async fn enqueue_many(&self, events: &[NewEvent]) -> Result<Vec<Option<i64>>, StoreError> {
        inbox::enqueue_many(&self.pool, events).await
    }

    async fn inbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    #[tracing::instrument(name = "store.claim_inbox", skip(self))]
    async fn claim_inbox(
        &self,
        platform: &str,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let now = now_ms();
        // SQLite has one writer at a time, so the UPDATE is atomic as it stands; PostgreSQL
        // locks the rows it picks and skips those another worker is picking.
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE inbox SET state = 'taken', leased_by = $1, lease_until = $2, attempts = attempts + 1
             WHERE id IN (
                SELECT id FROM inbox
                WHERE platform = $3 AND (state = 'queued' OR (state = 'taken' AND lease_until < $4))
                ORDER BY id LIMIT $5 {lock})
             RETURNING id, event, attempts"
        );
        let mut items = sqlx::query(&sql)
            .bind(worker)
            .bind(now + ms(lease))
            .bind(platform)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(InboxItem {
                    id: r.try_get("id")?,
                    event: r.try_get("event")?,
                    attempts: r.try_get::<i64, _>("attempts")? as u32,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn heartbeat(&self, worker: &Worker, ttl: Duration) -> Result<(), StoreError> {
        let until = now_ms() + ms(ttl);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO workers (id, host, pid, started_at, alive_until) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
        )
        .bind(&worker.id)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(now())
        .bind(until)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE inbox SET lease_until = $1 WHERE leased_by = $2 AND state = 'taken'")
            .bind(until)
            .bind(&worker.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        Ok(done.rows_affected() == 1)
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
        Ok(done.rows_affected() == 1)
    }

    async fn request_cancel(&self, task_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tasks SET cancel_requested = 1
             WHERE id = $1 AND state IN ('received', 'queued', 'preparing', 'running')",
        )
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
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

    async fn finish_inbox(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE inbox SET state = $1, error = $2, handled_at = $3 WHERE id = $4")
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

    async fn claim_thread(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        anchor: &str,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let claim = thread_claims::Claim {
            platform,
            channel,
            thread,
            anchor,
            worker,
        };
        thread_claims::claim(&self.pool, &claim).await
    }

    async fn thread_holder(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<String>, StoreError> {
        thread_claims::holder(&self.pool, platform, channel, thread).await
    }

    async fn release_thread(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        anchor: &str,
        worker: &str,
    ) -> Result<(), StoreError> {
        let claim = thread_claims::Claim {
            platform,
            channel,
            thread,
            anchor,
            worker,
        };
        thread_claims::release(&self.pool, &claim).await
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

    async fn record_effect(&self, key: &str, result: &str) -> Result<bool, StoreError> {
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
        Ok(done.rows_affected() == 1)
    }

    async fn release_request(&self, key: &str, worker: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE effects SET result = NULL WHERE key = $1 AND result = $2")
            .bind(key)
            .bind(worker)
            .execute(&self.pool)
            .await?;
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

    async fn approve(&self, task_id: &str, rollout: u32, by: &str) -> Result<Approval, StoreError> {
        sqlx::query(
            "INSERT INTO approvals (task_id, rollout_idx, approved_by, approved_at) VALUES ($1, $2, $3, $4)
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
        sqlx::query("SELECT * FROM approvals WHERE task_id = $1")
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
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE state IN ('queued', 'taken')")
                .fetch_one(&self.pool)
                .await?;
        Ok(n as u64)
    }

    async fn withdraw_approval(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM approvals WHERE task_id = $1")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
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

    async fn claim_publication(
        &self,
        task_id: &str,
        rollout: u32,
        branch: &str,
    ) -> Result<Publication, StoreError> {
        sqlx::query(
            "INSERT INTO publications (task_id, rollout_idx, state, branch, claimed_at)
             VALUES ($1, $2, 'publishing', $3, $4) ON CONFLICT (task_id) DO NOTHING",
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
            "UPDATE publications SET state = 'published', commit_sha = $1, url = $2, pr_number = $3,
             published_at = $4 WHERE task_id = $5",
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
        sqlx::query("DELETE FROM publications WHERE task_id = $1 AND state = 'publishing'")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn publication(&self, task_id: &str) -> Result<Option<Publication>, StoreError> {
        sqlx::query("SELECT * FROM publications WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(publish::publication_row)
            .transpose()
    }

    async fn lease_publication(
        &self,
        lease: &PublicationLease<'_>,
    ) -> Result<Option<Publication>, StoreError> {
        self.lease_publication_impl(lease).await
    }

    async fn renew_publication(
        &self,
        task_id: &str,
        attempt: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        self.renew_publication_impl(task_id, attempt, lease_until)
            .await
    }

    async fn complete_publication(
        &self,
        task_id: &str,
        commit: &str,
        url: &str,
        pr_number: Option<u64>,
    ) -> Result<Publication, StoreError> {
        self.complete_publication_impl(task_id, commit, url, pr_number)
            .await
    }

    async fn fail_publication(
        &self,
        task_id: &str,
        attempt: &str,
        error: &str,
        withdraw: bool,
    ) -> Result<bool, StoreError> {
        self.fail_publication_impl(task_id, attempt, error, withdraw)
            .await
    }

    async fn replace_effect(&self, key: &str, result: &str) -> Result<bool, StoreError> {
        self.replace_effect_impl(key, result).await
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

    #[tracing::instrument(name = "store.prune", skip(self))]
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
        housekeeping::prune(&self.pool, before).await
    }

    async fn create_plan(&self, p: &Plan) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plans (id, platform, workspace, channel, thread, trigger_ts, requester, repo,
                base_ref, attempts, spec_json, plan, revises, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
        sqlx::query("SELECT * FROM plans WHERE id = $1")
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
