//! The store: tasks, rollouts, the commands they ran, and their diffs.
//!
//! Callers hold an `Arc<dyn Store>`; [`open`] picks the implementation from the database URL, so
//! a PostgreSQL store can be added beside [`sqlite::SqliteStore`] without touching callers.

pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use threadsmith_runner::rank::Ranked;
use threadsmith_runner::{CommandRecord, Diff, Outcome, RolloutResult, Sampling};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is not reachable at {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database could not be migrated: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database holds a value threadsmith cannot read: {0}")]
    Corrupt(String),
    #[error("unsupported database URL `{0}`: use sqlite://path/to/file.db")]
    Unsupported(String),
}

/// A task's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Received,
    Preparing,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 6] = [
        TaskState::Received,
        TaskState::Preparing,
        TaskState::Running,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Received => "received",
            TaskState::Preparing => "preparing",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A task as first stored.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    pub origin: String,
    pub requester: Option<String>,
    pub title: String,
    pub spec: String,
    pub repo: String,
    pub base_ref: Option<String>,
    pub attempts: u32,
    /// The structured spec, as JSON.
    pub spec_json: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub state: TaskState,
    pub origin: String,
    pub requester: Option<String>,
    pub title: String,
    pub spec: String,
    pub repo: String,
    pub base_ref: Option<String>,
    pub base_commit: Option<String>,
    pub attempts: u32,
    pub error: Option<String>,
    pub spec_json: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredTest {
    pub passed: bool,
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub output: String,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRow {
    pub index: u32,
    pub phase: String,
    pub step: u32,
    pub outcome: Option<Outcome>,
    pub detail: Option<String>,
    pub summary: Option<String>,
    pub confidence: Option<f64>,
    pub sampling: Option<Sampling>,
    pub test: Option<StoredTest>,
    pub lines_added: u64,
    pub lines_removed: u64,
    pub files_changed: u64,
    pub rank: Option<u32>,
    pub rank_reason: Option<String>,
    pub network: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub agent_duration: Option<Duration>,
}

/// Where a chat task lives and which of its messages are the bot's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatTaskLink {
    pub task_id: String,
    pub platform: String,
    pub workspace: String,
    pub channel: String,
    pub thread: String,
    pub trigger_ts: Option<String>,
    pub requester: String,
    pub status_ts: Option<String>,
    pub summary_ts: Option<String>,
    pub retry_of: Option<String>,
    pub feedback: Option<String>,
}

/// An approval: who chose which rollout. One per task.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub task_id: String,
    pub rollout: u32,
    pub approved_by: String,
    pub approved_at: DateTime<Utc>,
}

/// What an approval produced on the git host.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub task_id: String,
    pub rollout: u32,
    /// `publishing` until the branch and pull request exist, then `published`.
    pub state: String,
    pub branch: String,
    pub commit: Option<String>,
    /// The pull request's address (or, in push-only mode, the branch's).
    pub url: Option<String>,
    pub pr_number: Option<u64>,
}

/// A plan proposed in a thread ("@threadsmith plan").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub id: String,
    pub platform: String,
    pub workspace: String,
    pub channel: String,
    pub thread: String,
    pub trigger_ts: Option<String>,
    pub requester: String,
    pub repo: String,
    pub base_ref: Option<String>,
    pub attempts: Option<u32>,
    pub spec_json: String,
    pub plan: String,
    pub revises: Option<String>,
}

/// A question waiting for the requester's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub id: String,
    pub platform: String,
    pub workspace: String,
    pub channel: String,
    pub thread: String,
    pub trigger_ts: Option<String>,
    pub requester: String,
    /// `fix` or `plan`.
    pub kind: String,
    pub instructions: Option<String>,
    pub base_ref: Option<String>,
    pub attempts: Option<u32>,
    pub message_ts: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A queued chat event.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub id: i64,
    pub event: String,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn create_task(&self, task: &NewTask) -> Result<(), StoreError>;
    async fn set_task_state(
        &self,
        id: &str,
        state: TaskState,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    async fn set_task_base(&self, id: &str, base_ref: &str, commit: &str)
    -> Result<(), StoreError>;
    async fn create_rollouts(
        &self,
        task_id: &str,
        rollouts: &[(u32, Sampling)],
    ) -> Result<(), StoreError>;
    async fn set_rollout_phase(
        &self,
        task_id: &str,
        index: u32,
        phase: &str,
        step: u32,
    ) -> Result<(), StoreError>;
    /// Idempotent: the same command recorded twice is stored once.
    async fn add_command(
        &self,
        task_id: &str,
        index: u32,
        record: &CommandRecord,
    ) -> Result<(), StoreError>;
    /// Stores a rollout's end: outcome, test, diff, and any command not yet recorded.
    async fn finish_rollout(&self, task_id: &str, result: &RolloutResult)
    -> Result<(), StoreError>;
    async fn set_ranks(&self, task_id: &str, ranked: &[Ranked]) -> Result<(), StoreError>;

    async fn task(&self, id: &str) -> Result<Option<TaskRow>, StoreError>;
    /// Tasks whose id starts with `prefix`, newest first.
    async fn find_tasks(&self, prefix: &str) -> Result<Vec<TaskRow>, StoreError>;
    async fn recent_tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError>;
    /// In rank order when ranked, else in rollout order.
    async fn rollouts(&self, task_id: &str) -> Result<Vec<RolloutRow>, StoreError>;
    async fn commands(&self, task_id: &str, index: u32) -> Result<Vec<CommandRecord>, StoreError>;
    async fn diff(&self, task_id: &str, index: u32) -> Result<Option<Diff>, StoreError>;

    // --- chat ---------------------------------------------------------------------------
    /// Stores an incoming event unless one with the same key was stored before; `None` means a
    /// duplicate delivery.
    async fn enqueue(
        &self,
        dedupe_key: &str,
        platform: &str,
        event: &str,
    ) -> Result<Option<i64>, StoreError>;
    /// How many events were ever stored (duplicates and rejected requests are not).
    async fn inbox_len(&self) -> Result<u64, StoreError>;
    /// How many stored events are not handled yet.
    async fn inbox_pending(&self) -> Result<u64, StoreError>;
    /// One platform's events not yet handled with an id above `after`, oldest first.
    async fn queued(
        &self,
        platform: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError>;
    async fn finish_inbox(&self, id: i64, error: Option<&str>) -> Result<(), StoreError>;
    async fn link_chat_task(&self, link: &ChatTaskLink) -> Result<(), StoreError>;
    async fn chat_task(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError>;
    /// The task a message triggered, if any.
    async fn chat_task_by_trigger(
        &self,
        platform: &str,
        channel: &str,
        trigger_ts: &str,
    ) -> Result<Option<ChatTaskLink>, StoreError>;
    /// Chat tasks of a platform that never reached an end (done, failed, cancelled).
    async fn unfinished_chat_tasks(&self, platform: &str) -> Result<Vec<ChatTaskLink>, StoreError>;
    /// The task that retries `task_id`, if any.
    async fn retry_of(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError>;
    async fn set_status_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError>;
    async fn set_summary_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError>;
    /// Records an effect's idempotency key; false when it was recorded before.
    async fn record_effect(&self, key: &str, result: &str) -> Result<bool, StoreError>;
    async fn effect(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Approves a rollout unless the task is approved already; returns the approval in force.
    async fn approve(&self, task_id: &str, rollout: u32, by: &str) -> Result<Approval, StoreError>;
    async fn approval(&self, task_id: &str) -> Result<Option<Approval>, StoreError>;
    /// Withdraws an approval whose rollout could not be published, so another can be approved.
    async fn withdraw_approval(&self, task_id: &str) -> Result<(), StoreError>;
    /// The task's unguessable web token, made on first use.
    async fn web_token(&self, task_id: &str) -> Result<String, StoreError>;
    async fn task_by_web_token(&self, token: &str) -> Result<Option<TaskRow>, StoreError>;
    /// Starts (or resumes) publishing an approved rollout; returns the publication in force,
    /// which is the earlier one when it was published already.
    async fn claim_publication(
        &self,
        task_id: &str,
        rollout: u32,
        branch: &str,
    ) -> Result<Publication, StoreError>;
    async fn finish_publication(
        &self,
        task_id: &str,
        commit: &str,
        url: &str,
        pr_number: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Forgets an unfinished publication (the patch did not apply): a later Approve starts over.
    async fn drop_publication(&self, task_id: &str) -> Result<(), StoreError>;
    async fn publication(&self, task_id: &str) -> Result<Option<Publication>, StoreError>;
    async fn ask(&self, question: &Question) -> Result<(), StoreError>;
    async fn question(&self, id: &str) -> Result<Option<Question>, StoreError>;
    /// Closes an open question as `answered` or `expired`; false when it was not open.
    async fn close_question(&self, id: &str, state: &str) -> Result<bool, StoreError>;
    /// Open questions, soonest to expire first.
    async fn open_questions(&self) -> Result<Vec<Question>, StoreError>;
    async fn create_plan(&self, plan: &Plan) -> Result<(), StoreError>;
    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError>;
    async fn channel_repo(
        &self,
        platform: &str,
        channel: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn set_channel_repo(
        &self,
        platform: &str,
        channel: &str,
        repo: &str,
    ) -> Result<(), StoreError>;
}

/// Opens the store a database URL names, applying migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        Err(StoreError::Unsupported(url.to_string()))
    }
}
