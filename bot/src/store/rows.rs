//! The rows the store reads and writes, in threadsmith's own terms.

use std::time::Duration;

use chrono::{DateTime, Utc};
use threadsmith_runner::{Outcome, Sampling};

use super::TaskState;

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
    /// The worker (bot process) that runs it.
    pub worker: Option<String>,
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
    /// The worker (bot process) running or last running it.
    pub worker: Option<String>,
    /// The test command its rollouts ran; `None` when it had none, or when it was stored by an
    /// earlier version (which kept only words in each rollout's `detail`).
    pub tests: Option<TaskTests>,
    /// The spec and plan calls made for it (its rollouts' are on each rollout).
    pub spec_usage: threadsmith_runner::ModelUsage,
    /// The model its calls used, for the price table; `None` before it was kept.
    pub model: Option<String>,
    /// The repository's instructions for agents given to its rollouts (empty when it had
    /// none, or when it was stored by an earlier version).
    pub instruction_files: Vec<InstructionFile>,
}

/// One source of a repository's instructions for agents (an `AGENTS.md`, or the `instructions`
/// of `.threadsmith.toml`) and how much of it the agent was given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstructionFile {
    /// The path in the repository: `AGENTS.md`, `services/api/AGENTS.md`, `.threadsmith.toml`.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// How many of its bytes the agent was given: all, fewer (cut at the size budget), or none
    /// (the budget was spent by the files before it).
    pub shown: u64,
}

/// The test command a task's rollouts ran, and what it was detected from when the repository
/// configures none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTests {
    pub command: String,
    /// E.g. `Cargo.toml` or `the Makefile's `test` target`; `None` when it was configured.
    pub detected_from: Option<String>,
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
    /// The deciding evidence in a few words (the summary shows it).
    pub rank_headline: Option<String>,
    /// All the ranking's evidence, one line each (the pages show it).
    pub rank_reasons: Vec<String>,
    pub network: Option<String>,
    /// Whether it started from an environment snapshot, or saved one, and which (words).
    pub environment: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub agent_duration: Option<Duration>,
    /// Tokens, model calls, time in the model and in the sandbox (zero before it ended).
    pub cost: threadsmith_runner::RolloutCost,
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
    pub state: super::PublicationState,
    pub branch: String,
    pub commit: Option<String>,
    /// The pull request's address (or, in push-only mode, the branch's).
    pub url: Option<String>,
    pub pr_number: Option<u64>,
    /// The attempt that holds (or last held) the row: only it may finish or fail it.
    pub attempt: Option<String>,
    /// Until when (Unix ms) a `publishing` attempt holds it; a lapsed lease may be taken over.
    pub lease_until: Option<i64>,
    /// Why the last attempt failed (`state = 'failed'`).
    pub error: Option<String>,
}

/// What `Store::lease_publication` is asked for.
#[derive(Debug, Clone)]
pub struct PublicationLease<'a> {
    pub task_id: &'a str,
    pub rollout: u32,
    pub branch: &'a str,
    pub attempt: &'a str,
    pub lease_until: i64,
    pub retry_failed: bool,
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
    /// How often the event was taken, this time included: above 1 when the worker that took it
    /// before died (its lease expired) before finishing it.
    pub attempts: u32,
}

/// A bot process sharing the database.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// Unix ms until which its heartbeat vouches for it.
    pub alive_until: i64,
}

/// Limits on rollouts running at once, for admitting a task; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RolloutLimits {
    pub global: Option<u32>,
    pub per_user: Option<u32>,
    pub per_repo: Option<u32>,
}

/// What runs now and what waits, among live workers' tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub running_rollouts: u64,
    pub user_running_rollouts: u64,
    pub repo_running_rollouts: u64,
    pub queued_tasks: u64,
    pub user_queued_tasks: u64,
    /// Queued tasks created before the one asked about.
    pub ahead: u64,
}

/// An event to store in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// One per delivery that matters: a redelivery has the same key.
    pub dedupe_key: String,
    pub platform: String,
    /// The event in threadsmith's own terms, as JSON.
    pub event: String,
}

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Handled (done or failed) inbox events.
    pub events: u64,
    /// Idempotency records of side effects and request claims.
    pub effects: u64,
}

/// What [`InboxStore::gauges`](super::InboxStore::gauges) reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauges {
    /// Every state, in [`TaskState::ALL`]'s order, with how many tasks are in it.
    pub tasks: Vec<(super::TaskState, u64)>,
    /// Rollouts not ended, of tasks preparing or running.
    pub rollouts_running: u64,
    /// Inbox events queued or taken, not handled yet.
    pub inbox_pending: u64,
    /// When the oldest of them arrived.
    pub oldest_pending: Option<chrono::DateTime<chrono::Utc>>,
}

/// The judge's answer for a task's rollouts tied on test evidence, as stored (the first answer
/// stored wins, so a re-rank anywhere reuses it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJudgement {
    /// The rollouts compared, in rollout order.
    pub candidates: Vec<u32>,
    /// The model asked.
    pub model: String,
    pub answer: JudgeAnswer,
}

/// What the judge said, or why it could not be had.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeAnswer {
    /// One verdict per candidate, in rollout order.
    Verdicts(Vec<RolloutVerdict>),
    /// Why, in words for people (the ranking's reasons say it).
    Failed(String),
}

/// The judge's verdict on one rollout.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutVerdict {
    pub rollout: u32,
    pub verdict: threadsmith_runner::rank::Verdict,
    pub reason: String,
}
