//! The store's interface, one trait per concern; [`Store`] is all of them, and whatever
//! implements them all is a [`Store`] (callers hold an `Arc<dyn Store>`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use threadsmith_runner::crosscheck::Matrix;
use threadsmith_runner::rank::Ranked;
use threadsmith_runner::{CommandRecord, Diff, RolloutResult, Sampling};
use tokio::sync::watch;

use super::{
    Approval, ChatTaskLink, Gauges, InboxItem, InstructionFile, Load, NewEvent, NewTask, Plan,
    Pruned, Publication, PublicationLease, Question, RolloutLimits, RolloutRow, StoreError,
    StoredJudgement, TaskRow, TaskState, TaskTests, Worker,
};

/// The whole store: every concern's trait.
pub trait Store:
    TaskStore
    + RolloutStore
    + InboxStore
    + WorkerStore
    + ChatStore
    + ThreadStore
    + EffectStore
    + ApprovalStore
    + PublicationStore
    + QuestionStore
    + PlanStore
    + JudgementStore
    + super::RoundStore
{
}

impl<T> Store for T where
    T: TaskStore
        + RolloutStore
        + InboxStore
        + WorkerStore
        + ChatStore
        + ThreadStore
        + EffectStore
        + ApprovalStore
        + PublicationStore
        + QuestionStore
        + PlanStore
        + JudgementStore
        + super::RoundStore
{
}

/// Tasks: creating them, their state, base and test command, finding them.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Moves whenever this process stores a task or changes its state, base or worker (see
    /// [`super::Changes`]): subscribe, read, then wait for a change.
    fn task_changes(&self) -> watch::Receiver<u64>;
    async fn create_task(&self, task: &NewTask) -> Result<(), StoreError>;
    /// Moves a task to `state`. An end (done, failed, cancelled) is final: a task that ended
    /// stays as it ended (a process that lost its task to another cannot overwrite the end the
    /// other gave it).
    async fn set_task_state(
        &self,
        id: &str,
        state: TaskState,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    async fn set_task_base(&self, id: &str, base_ref: &str, commit: &str)
    -> Result<(), StoreError>;
    /// Records the test command the task's rollouts run (and what it was detected from).
    async fn set_task_tests(&self, id: &str, tests: &TaskTests) -> Result<(), StoreError>;
    /// Records the repository's instructions for agents the task's rollouts were given.
    async fn set_task_instructions(
        &self,
        id: &str,
        files: &[InstructionFile],
    ) -> Result<(), StoreError>;
    async fn task(&self, id: &str) -> Result<Option<TaskRow>, StoreError>;
    /// Tasks whose id starts with `prefix`, newest first.
    async fn find_tasks(&self, prefix: &str) -> Result<Vec<TaskRow>, StoreError>;
    async fn recent_tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError>;
    /// The newest `limit` tasks asked for in a chat channel, newest first.
    async fn recent_channel_tasks(
        &self,
        platform: &str,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<TaskRow>, StoreError>;
    /// The task's unguessable web token, made on first use.
    async fn web_token(&self, task_id: &str) -> Result<String, StoreError>;
    async fn task_by_web_token(&self, token: &str) -> Result<Option<TaskRow>, StoreError>;
    /// Adds spec and plan calls to the task's usage, and records the model they used.
    async fn add_task_usage(
        &self,
        id: &str,
        model: Option<&str>,
        usage: &threadsmith_runner::ModelUsage,
    ) -> Result<(), StoreError>;
    /// Tokens measured since `since` (rollouts ended since, spec and plan calls of tasks
    /// created since), of `requester`'s tasks only when given: the daily limits' count.
    async fn tokens_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        requester: Option<&str>,
    ) -> Result<u64, StoreError>;
}

/// Rollouts, the commands they ran, their diffs and ranking.
#[async_trait]
pub trait RolloutStore: Send + Sync {
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
    /// In rank order when ranked, else in rollout order.
    async fn rollouts(&self, task_id: &str) -> Result<Vec<RolloutRow>, StoreError>;
    async fn commands(&self, task_id: &str, index: u32) -> Result<Vec<CommandRecord>, StoreError>;
    async fn diff(&self, task_id: &str, index: u32) -> Result<Option<Diff>, StoreError>;
    /// Stores the task's cross-checks (every rollout's tests on the base and every change).
    async fn set_crosschecks(&self, task_id: &str, matrix: &Matrix) -> Result<(), StoreError>;
    /// The task's cross-checks; `None` when none were stored.
    async fn crosschecks(&self, task_id: &str) -> Result<Option<Matrix>, StoreError>;
}

/// The chat inbox: a work queue of stored events with leases, and its housekeeping.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Moves whenever this process stores, takes or handles an event (see [`super::Changes`]):
    /// subscribe, read, then wait for a change.
    fn inbox_changes(&self) -> watch::Receiver<u64>;
    /// Where events are journaled on their way into the inbox (see `store/journal/`): beside a
    /// SQLite file; `None` for other databases, where they are committed directly.
    fn inbox_journal_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Wakes [`InboxStore::inbox_changes`]' watchers for a change outside the database: a
    /// journal emptied once its events were moved into the inbox.
    fn inbox_touched(&self) {}
    /// Stores an incoming event unless one with the same key was stored before; `None` means a
    /// duplicate delivery.
    async fn enqueue(
        &self,
        dedupe_key: &str,
        platform: &str,
        event: &str,
    ) -> Result<Option<i64>, StoreError>;
    /// Stores several events in one transaction, each unless one with the same key was stored
    /// before (or earlier in `events`); answers in order, `None` for a duplicate.
    async fn enqueue_many(&self, events: &[NewEvent]) -> Result<Vec<Option<i64>>, StoreError>;
    /// How many events were ever stored (duplicates and rejected requests are not).
    async fn inbox_len(&self) -> Result<u64, StoreError>;
    /// How many stored events are not handled yet.
    async fn inbox_pending(&self) -> Result<u64, StoreError>;
    /// Takes up to `limit` of a platform's events for `worker`, oldest first: queued ones, and
    /// taken ones whose lease expired. Two workers never take the same event (on PostgreSQL:
    /// `FOR UPDATE SKIP LOCKED`; SQLite has one writer). The lease lasts `lease` and is renewed
    /// by [`WorkerStore::heartbeat`].
    async fn claim_inbox(
        &self,
        platform: &str,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError>;
    async fn finish_inbox(&self, id: i64, error: Option<&str>) -> Result<(), StoreError>;
    /// Deletes inbox events handled before `before` (queued and leased ones are kept, whatever
    /// their age) and idempotency records made before it. A delivery of a pruned event would be
    /// taken as new, so the retention must outlast the platforms' redelivery (minutes).
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError>;
    /// What `/metrics` shows, read at scrape time over the whole database (every process
    /// shows the same): tasks by state, rollouts running, the inbox's unhandled events. Also
    /// the query `/readyz` asks to know that the database answers.
    async fn gauges(&self) -> Result<Gauges, StoreError>;
}

/// Workers (bot processes) sharing the database: heartbeats, the tasks dead ones left, admission, cancellation.
#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// Registers a worker or renews it: it is alive for `ttl` more, and so are the leases on
    /// the events it holds.
    async fn heartbeat(&self, worker: &Worker, ttl: Duration) -> Result<(), StoreError>;
    async fn workers(&self) -> Result<Vec<Worker>, StoreError>;
    /// Forgets a worker known to be dead: its leases expire now and its tasks are orphans.
    async fn retire_worker(&self, id: &str) -> Result<(), StoreError>;
    /// Tasks whose worker is not alive (or never recorded) and that it left half done, oldest
    /// first: unfinished ones, and chat tasks that ended but whose summary was never posted.
    async fn orphaned_tasks(&self) -> Result<Vec<TaskRow>, StoreError>;
    /// Moves a task from worker `from` to `to`; false when another worker took it first.
    async fn adopt_task(
        &self,
        task_id: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, StoreError>;
    /// Moves a queued task to `preparing` when its rollouts fit under the limits, counting the
    /// rollouts of live workers' admitted tasks; false when it must wait. Atomic across
    /// processes.
    async fn admit_task(&self, task_id: &str, limits: &RolloutLimits) -> Result<bool, StoreError>;
    /// Asks whichever worker runs an unfinished task to cancel it; false when it has ended.
    async fn request_cancel(&self, task_id: &str) -> Result<bool, StoreError>;
    /// Unfinished tasks of `worker` whose cancellation was asked for.
    async fn cancel_requests(&self, worker: &str) -> Result<Vec<String>, StoreError>;
    /// What runs and waits now, as seen from `task_id` (its requester and repository).
    async fn load(&self, task_id: &str) -> Result<Load, StoreError>;
}

/// A task's place in chat, requests queued behind a thread's running task, a channel's repository.
#[async_trait]
pub trait ChatStore: Send + Sync {
    async fn link_chat_task(&self, link: &ChatTaskLink) -> Result<(), StoreError>;
    async fn chat_task(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError>;
    /// The task a message triggered, if any.
    async fn chat_task_by_trigger(
        &self,
        platform: &str,
        channel: &str,
        trigger_ts: &str,
    ) -> Result<Option<ChatTaskLink>, StoreError>;
    /// The newest unfinished task of a thread, if any.
    async fn active_thread_task(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<ChatTaskLink>, StoreError>;
    /// Queues a request (`event`, its stored JSON) behind a thread's running task; false when
    /// it is queued already.
    async fn queue_request(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        trigger_ts: &str,
        event: &str,
    ) -> Result<bool, StoreError>;
    /// The oldest request queued in a thread: its `trigger_ts`, event and when it was queued
    /// (Unix ms; with the `trigger_ts`, a key for its handling).
    async fn next_queued_request(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<(String, String, i64)>, StoreError>;
    /// Removes a queued request once it is back in the inbox.
    async fn unqueue_request(
        &self,
        platform: &str,
        channel: &str,
        trigger_ts: &str,
    ) -> Result<(), StoreError>;
    /// The task that retries `task_id`, if any.
    async fn retry_of(&self, task_id: &str) -> Result<Option<ChatTaskLink>, StoreError>;
    async fn set_status_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError>;
    async fn set_summary_ts(&self, task_id: &str, ts: &str) -> Result<(), StoreError>;
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

/// Thread claims: one request at a time holds a thread, across processes.
#[async_trait]
pub trait ThreadStore: Send + Sync {
    /// Claims a thread for request `anchor` (the message that asked), across processes: true
    /// when it is free, its holder's worker is no longer alive, or this request holds it
    /// already; false while another request holds it.
    async fn claim_thread(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        anchor: &str,
        worker: &str,
    ) -> Result<bool, StoreError>;
    /// The request holding a thread (its anchor), while its worker is alive.
    async fn thread_holder(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Gives a thread back when request `anchor`'s task ended (if `worker` still holds it).
    async fn release_thread(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        anchor: &str,
        worker: &str,
    ) -> Result<(), StoreError>;
}

/// Effects' idempotency keys and the claims on a request.
#[async_trait]
pub trait EffectStore: Send + Sync {
    /// Moves whenever this process records, replaces, claims or gives back an effect (see
    /// [`super::Changes`]): subscribe, read, then wait for a change.
    fn effect_changes(&self) -> watch::Receiver<u64>;
    /// Records an effect's idempotency key; false when it was recorded before.
    async fn record_effect(&self, key: &str, result: &str) -> Result<bool, StoreError>;
    async fn effect(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Records `result` under `key` unless it is that already; false when nothing changed
    /// (an edit that would show the same thing again).
    async fn replace_effect(&self, key: &str, result: &str) -> Result<bool, StoreError>;
    /// Claims a request (`key`) for `worker`: true when it is this worker's now — first claim,
    /// already its own, or taken over from a worker that is no longer alive; false while another
    /// live worker holds it.
    async fn claim_request(&self, key: &str, worker: &str) -> Result<bool, StoreError>;
    /// Gives a claimed request back once its handling ended, so that a later event of the same
    /// request (an answered question, a plan's Run it) can claim it in any process.
    async fn release_request(&self, key: &str, worker: &str) -> Result<(), StoreError>;
}

/// Approvals of a rollout.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Approves a rollout unless the task is approved already; returns the approval in force.
    async fn approve(&self, task_id: &str, rollout: u32, by: &str) -> Result<Approval, StoreError>;
    async fn approval(&self, task_id: &str) -> Result<Option<Approval>, StoreError>;
    /// Withdraws an approval whose rollout could not be published, so another can be approved.
    async fn withdraw_approval(&self, task_id: &str) -> Result<(), StoreError>;
}

/// Publishing an approved rollout: claims, leases held by one attempt at a time, results.
#[async_trait]
pub trait PublicationStore: Send + Sync {
    /// Moves whenever this process ends, drops or takes over a publication (see
    /// [`super::Changes`]): subscribe, read, then wait for a change.
    fn publication_changes(&self) -> watch::Receiver<u64>;
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
    /// Takes the task's publication for `attempt` until `lease_until` (Unix ms), when the
    /// approval in force is of `rollout`: a new row; a lapsed `publishing` one (kept as claimed);
    /// or, when `retry_failed`, a `failed` one. Returns the row in force, whoever holds it.
    async fn lease_publication(
        &self,
        lease: &PublicationLease<'_>,
    ) -> Result<Option<Publication>, StoreError>;
    /// Pushes `attempt`'s lease forward; false when it no longer holds the row.
    async fn renew_publication(
        &self,
        task_id: &str,
        attempt: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError>;
    /// Records what was published (first result wins; attempts converge on one branch and
    /// pull request) and returns the publication in force.
    async fn complete_publication(
        &self,
        task_id: &str,
        commit: &str,
        url: &str,
        pr_number: Option<u64>,
    ) -> Result<Publication, StoreError>;
    /// Ends `attempt`'s publication as failed with `error`, and in the same transaction
    /// withdraws the approval when `withdraw`; false (nothing changed) when `attempt` no longer
    /// holds an unfinished row, so a failure never undoes another attempt's work.
    async fn fail_publication(
        &self,
        task_id: &str,
        attempt: &str,
        error: &str,
        withdraw: bool,
    ) -> Result<bool, StoreError>;
}

/// Questions asked in a thread and waiting for an answer.
#[async_trait]
pub trait QuestionStore: Send + Sync {
    async fn ask(&self, question: &Question) -> Result<(), StoreError>;
    async fn question(&self, id: &str) -> Result<Option<Question>, StoreError>;
    /// Closes an open question as `answered` or `expired`; false when it was not open.
    async fn close_question(&self, id: &str, state: &str) -> Result<bool, StoreError>;
    /// Open questions, soonest to expire first.
    async fn open_questions(&self) -> Result<Vec<Question>, StoreError>;
}

/// Plans: a proposed task shown before it runs.
#[async_trait]
pub trait PlanStore: Send + Sync {
    async fn create_plan(&self, plan: &Plan) -> Result<(), StoreError>;
    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError>;
}

/// The judge's answers: asked once per task and set of candidates, reused by any re-rank.
#[async_trait]
pub trait JudgementStore: Send + Sync {
    /// Stores `judgement` unless an answer for the same candidates is stored already; returns
    /// the one stored (the first wins, so every process ranks alike).
    async fn keep_judgement(
        &self,
        task_id: &str,
        judgement: &StoredJudgement,
    ) -> Result<StoredJudgement, StoreError>;
    /// The answer stored for these candidates (in rollout order), if any.
    async fn judgement(
        &self,
        task_id: &str,
        candidates: &[u32],
    ) -> Result<Option<StoredJudgement>, StoreError>;
}
