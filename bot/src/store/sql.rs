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
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use threadsmith_runner::rank::Ranked;
use threadsmith_runner::{CommandRecord, Diff, RolloutResult, Sampling};

use super::{
    Approval, ChatTaskLink, Gauges, InboxItem, Load, NewEvent, NewTask, Plan, Pruned, Publication,
    PublicationLease, Question, RolloutLimits, RolloutRow, Store, StoreError, TaskRow, TaskState,
    Worker,
};

mod approvals;
mod chat_links;
mod effects;
mod gauges;
mod housekeeping;
mod inbox;
mod plans;
mod publish;
mod questions;
mod queue;
mod rollouts;
mod task_tests;
mod tasks;
mod thread_claims;
mod workers;

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

#[async_trait]
impl Store for SqlStore {
    async fn create_task(&self, task: &NewTask) -> Result<(), StoreError> {
        self.create_task_impl(task).await
    }

    async fn set_task_state(
        &self,
        id: &str,
        state: TaskState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.set_task_state_impl(id, state, error).await
    }

    async fn set_task_base(
        &self,
        id: &str,
        base_ref: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        self.set_task_base_impl(id, base_ref, commit).await
    }

    #[tracing::instrument(name = "store.set_task_tests", skip(self))]
    async fn set_task_tests(&self, id: &str, tests: &super::TaskTests) -> Result<(), StoreError> {
        task_tests::set(&self.pool, id, tests).await
    }

    async fn create_rollouts(
        &self,
        task_id: &str,
        rollouts: &[(u32, Sampling)],
    ) -> Result<(), StoreError> {
        self.create_rollouts_impl(task_id, rollouts).await
    }

    async fn set_rollout_phase(
        &self,
        task_id: &str,
        index: u32,
        phase: &str,
        step: u32,
    ) -> Result<(), StoreError> {
        self.set_rollout_phase_impl(task_id, index, phase, step)
            .await
    }

    async fn add_command(
        &self,
        task_id: &str,
        index: u32,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        self.add_command_impl(task_id, index, record).await
    }

    async fn finish_rollout(&self, task_id: &str, r: &RolloutResult) -> Result<(), StoreError> {
        self.finish_rollout_impl(task_id, r).await
    }

    async fn set_ranks(&self, task_id: &str, ranked: &[Ranked]) -> Result<(), StoreError> {
        self.set_ranks_impl(task_id, ranked).await
    }

    async fn task(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        self.task_impl(id).await
    }

    async fn find_tasks(&self, prefix: &str) -> Result<Vec<TaskRow>, StoreError> {
        self.find_tasks_impl(prefix).await
    }

    async fn recent_tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError> {
        self.recent_tasks_impl(limit).await
    }

    async fn recent_channel_tasks(
        &self,
        platform: &str,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<TaskRow>, StoreError> {
        self.recent_channel_tasks_impl(platform, channel, limit)
            .await
    }

    async fn rollouts(&self, task_id: &str) -> Result<Vec<RolloutRow>, StoreError> {
        self.rollouts_impl(task_id).await
    }

    async fn commands(&self, task_id: &str, index: u32) -> Result<Vec<CommandRecord>, StoreError> {
        self.commands_impl(task_id, index).await
    }

    async fn diff(&self, task_id: &str, index: u32) -> Result<Option<Diff>, StoreError> {
        self.diff_impl(task_id, index).await
    }

    async fn enqueue(
        &self,
        dedupe_key: &str,
        platform: &str,
        event: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.enqueue_impl(dedupe_key, platform, event).await
    }

    #[tracing::instrument(name = "store.enqueue_many", skip_all, fields(events = events.len()))]
    async fn enqueue_many(&self, events: &[NewEvent]) -> Result<Vec<Option<i64>>, StoreError> {
        inbox::enqueue_many(&self.pool, events).await
    }

    async fn inbox_len(&self) -> Result<u64, StoreError> {
        self.inbox_len_impl().await
    }

    async fn claim_inbox(
        &self,
        platform: &str,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        self.claim_inbox_impl(platform, worker, lease, limit).await
    }

    async fn heartbeat(&self, worker: &Worker, ttl: Duration) -> Result<(), StoreError> {
        self.heartbeat_impl(worker, ttl).await
    }

    async fn workers(&self) -> Result<Vec<Worker>, StoreError> {
        self.workers_impl().await
    }

    async fn retire_worker(&self, id: &str) -> Result<(), StoreError> {
        self.retire_worker_impl(id).await
    }

    async fn orphaned_tasks(&self) -> Result<Vec<TaskRow>, StoreError> {
        self.orphaned_tasks_impl().await
    }

    async fn adopt_task(
        &self,
        task_id: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, StoreError> {
        self.adopt_task_impl(task_id, from, to).await
    }

    async fn admit_task(&self, task_id: &str, limits: &RolloutLimits) -> Result<bool, StoreError> {
        self.admit_task_impl(task_id, limits).await
    }

    async fn request_cancel(&self, task_id: &str) -> Result<bool, StoreError> {
        self.request_cancel_impl(task_id).await
    }

    async fn cancel_requests(&self, worker: &str) -> Result<Vec<String>, StoreError> {
        self.cancel_requests_impl(worker).await
    }

    async fn load(&self, task_id: &str) -> Result<Load, StoreError> {
        self.load_impl(task_id).await
    }

    async fn finish_inbox(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        self.finish_inbox_impl(id, error).await
    }

    async fn link_chat_task(&self, l: &ChatTaskLink) -> Result<(), StoreError> {
        self.link_chat_task_impl(l).await
    }

    async fn chat_task(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError> {
        self.chat_task_impl(task_id).await
    }

    async fn chat_task_by_trigger(
        &self,
        platform: &str,
        channel: &str,
        trigger_ts: &str,
    ) -> Result<Option<ChatTaskLink>, StoreError> {
        self.chat_task_by_trigger_impl(platform, channel, trigger_ts)
            .await
    }

    async fn active_thread_task(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<ChatTaskLink>, StoreError> {
        self.active_thread_task_impl(platform, channel, thread)
            .await
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
        self.queue_request_impl(platform, channel, thread, trigger_ts, event)
            .await
    }

    async fn next_queued_request(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        self.next_queued_request_impl(platform, channel, thread)
            .await
    }

    async fn unqueue_request(
        &self,
        platform: &str,
        channel: &str,
        trigger_ts: &str,
    ) -> Result<(), StoreError> {
        self.unqueue_request_impl(platform, channel, trigger_ts)
            .await
    }

    async fn retry_of(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError> {
        self.retry_of_impl(task_id).await
    }

    async fn set_status_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError> {
        self.set_status_ts_impl(task_id, ts).await
    }

    async fn set_summary_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError> {
        self.set_summary_ts_impl(task_id, ts).await
    }

    async fn record_effect(&self, key: &str, result: &str) -> Result<bool, StoreError> {
        self.record_effect_impl(key, result).await
    }

    async fn claim_request(&self, key: &str, worker: &str) -> Result<bool, StoreError> {
        self.claim_request_impl(key, worker).await
    }

    async fn release_request(&self, key: &str, worker: &str) -> Result<(), StoreError> {
        self.release_request_impl(key, worker).await
    }

    async fn effect(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.effect_impl(key).await
    }

    async fn approve(&self, task_id: &str, rollout: u32, by: &str) -> Result<Approval, StoreError> {
        self.approve_impl(task_id, rollout, by).await
    }

    async fn approval(&self, task_id: &str) -> Result<Option<Approval>, StoreError> {
        self.approval_impl(task_id).await
    }

    async fn inbox_pending(&self) -> Result<u64, StoreError> {
        self.inbox_pending_impl().await
    }

    async fn withdraw_approval(&self, task_id: &str) -> Result<(), StoreError> {
        self.withdraw_approval_impl(task_id).await
    }

    async fn web_token(&self, task_id: &str) -> Result<String, StoreError> {
        self.web_token_impl(task_id).await
    }

    async fn task_by_web_token(&self, token: &str) -> Result<Option<TaskRow>, StoreError> {
        self.task_by_web_token_impl(token).await
    }

    async fn claim_publication(
        &self,
        task_id: &str,
        rollout: u32,
        branch: &str,
    ) -> Result<Publication, StoreError> {
        self.claim_publication_impl(task_id, rollout, branch).await
    }

    async fn finish_publication(
        &self,
        task_id: &str,
        commit: &str,
        url: &str,
        pr_number: Option<u64>,
    ) -> Result<(), StoreError> {
        self.finish_publication_impl(task_id, commit, url, pr_number)
            .await
    }

    async fn drop_publication(&self, task_id: &str) -> Result<(), StoreError> {
        self.drop_publication_impl(task_id).await
    }

    async fn publication(&self, task_id: &str) -> Result<Option<Publication>, StoreError> {
        self.publication_impl(task_id).await
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
        self.channel_repo_impl(platform, channel).await
    }

    async fn set_channel_repo(
        &self,
        platform: &str,
        channel: &str,
        repo: &str,
    ) -> Result<(), StoreError> {
        self.set_channel_repo_impl(platform, channel, repo).await
    }

    #[tracing::instrument(name = "store.prune", skip(self))]
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
        housekeeping::prune(&self.pool, before).await
    }

    async fn gauges(&self) -> Result<Gauges, StoreError> {
        gauges::gauges(&self.pool).await
    }

    async fn create_plan(&self, p: &Plan) -> Result<(), StoreError> {
        self.create_plan_impl(p).await
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        self.plan_impl(id).await
    }

    async fn ask(&self, q: &Question) -> Result<(), StoreError> {
        self.ask_impl(q).await
    }

    async fn question(&self, id: &str) -> Result<Option<Question>, StoreError> {
        self.question_impl(id).await
    }

    async fn close_question(&self, id: &str, state: &str) -> Result<bool, StoreError> {
        self.close_question_impl(id, state).await
    }

    async fn open_questions(&self) -> Result<Vec<Question>, StoreError> {
        self.open_questions_impl().await
    }
}
