//! The store: tasks, rollouts, the commands they ran, and their diffs; the chat inbox (a work
//! queue with leases), effects' idempotency keys, approvals, and the workers (bot processes)
//! sharing the database.
//!
//! Callers hold an `Arc<dyn Store>`; [`open`] picks the database from its URL: SQLite
//! (`sqlite://file.db`, the default) or PostgreSQL (`postgres://…`), both served by
//! [`sql::SqlStore`].

pub mod inbox_writer;
mod publication_state;
mod rows;
pub mod sql;
mod stage;

pub use publication_state::PublicationState;
pub use rows::*;
pub use stage::{Stage, TaskState, stage};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use threadsmith_runner::rank::Ranked;
use threadsmith_runner::{CommandRecord, Diff, RolloutResult, Sampling};

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
    /// A failure shared by several callers (one transaction for a group of events).
    #[error("database error: {0}")]
    Shared(String),
    #[error("the database holds a value threadsmith cannot read: {0}")]
    Corrupt(String),
    #[error(
        "unsupported database URL `{0}`: use sqlite://path/to/file.db or postgres://user:password@host/database"
    )]
    Unsupported(String),
}

/// Hides a database URL's password.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[async_trait]
pub trait Store: Send + Sync {
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
    /// The newest `limit` tasks asked for in a chat channel, newest first.
    async fn recent_channel_tasks(
        &self,
        platform: &str,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<TaskRow>, StoreError>;
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
    /// by [`Store::heartbeat`].
    async fn claim_inbox(
        &self,
        platform: &str,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError>;
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
    /// Records an effect's idempotency key; false when it was recorded before.
    async fn record_effect(&self, key: &str, result: &str) -> Result<bool, StoreError>;
    async fn effect(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Claims a request (`key`) for `worker`: true when it is this worker's now — first claim,
    /// already its own, or taken over from a worker that is no longer alive; false while another
    /// live worker holds it.
    async fn claim_request(&self, key: &str, worker: &str) -> Result<bool, StoreError>;
    /// Gives a claimed request back once its handling ended, so that a later event of the same
    /// request (an answered question, a plan's Run it) can claim it in any process.
    async fn release_request(&self, key: &str, worker: &str) -> Result<(), StoreError>;
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
    /// Records `result` under `key` unless it is that already; false when nothing changed
    /// (an edit that would show the same thing again).
    async fn replace_effect(&self, key: &str, result: &str) -> Result<bool, StoreError>;
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

    // --- housekeeping -------------------------------------------------------------------
    /// Deletes inbox events handled before `before` (queued and leased ones are kept, whatever
    /// their age) and idempotency records made before it. A delivery of a pruned event would be
    /// taken as new, so the retention must outlast the platforms' redelivery (minutes).
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError>;

    // --- metrics ------------------------------------------------------------------------
    /// What `/metrics` shows, read at scrape time over the whole database (every process
    /// shows the same): tasks by state, rollouts running, the inbox's unhandled events. Also
    /// the query `/readyz` asks to know that the database answers.
    async fn gauges(&self) -> Result<Gauges, StoreError>;
}

/// Opens the store a database URL names (`sqlite://…` or `postgres://…`), applying migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sql::SqlStore::open(url).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_password_is_hidden() {
        assert_eq!(
            redact_url("postgres://bot:hunter2@db.internal:5432/threadsmith"),
            "postgres://bot:***@db.internal:5432/threadsmith"
        );
        assert_eq!(
            redact_url("sqlite://threadsmith.db"),
            "sqlite://threadsmith.db"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn task_states_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
        }
    }
}
