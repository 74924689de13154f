//! One publishing attempt at a time per task, across processes.
//!
//! Every Approve of a task (a click in any process, a `threadsmith approve`) is an attempt with
//! its own id. The attempt that leases the task's `publications` row does the work and renews
//! its lease meanwhile; the others wait for its outcome and answer with it: the same branch and
//! pull request, or the same failure. Only the attempt holding the row can record its end, so a
//! failure never undoes another attempt's success; the approval is withdrawn in the same
//! transaction as the failure is recorded (and not at all when the pull request may exist: an
//! answer from GitHub that could not be read). A holder that died stops renewing its lease and
//! is taken over; the steps themselves converge on what is already on the git host (the branch
//! with this task's trailer, the pull request from that branch).

use std::time::Duration;

use super::{Context, PublishError, Published, Publisher};
use crate::store::{Publication, PublicationLease, PublicationState, StoreError};

/// How long a lease lasts without renewal, and how often it is renewed.
const LEASE: Duration = Duration::from_secs(60);
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// How often a waiting attempt looks at the holder's progress when no change wakes it (another
/// process on SQLite, a lease that lapsed), and for how long at most it waits.
const LOOK_AGAIN: Duration = Duration::from_millis(200);
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

fn lease_until() -> i64 {
    chrono::Utc::now().timestamp_millis() + LEASE.as_millis() as i64
}

fn published(row: Publication, reused: bool, updated: bool) -> Result<Published, PublishError> {
    match (row.url, row.commit) {
        (Some(url), Some(commit)) => Ok(Published {
            rollout: row.rollout,
            branch: row.branch,
            commit,
            url,
            pr_number: row.pr_number,
            reused,
            updated,
        }),
        _ => Err(PublishError::Store(StoreError::Corrupt(format!(
            "the publication of {} has no address",
            row.task_id
        )))),
    }
}

impl Publisher {
    /// Pushes the approved rollout and opens its pull request, or returns what an earlier (or a
    /// concurrent) attempt made; a concurrent attempt's failure is returned as
    /// [`PublishError::FailedElsewhere`].
    pub async fn publish(
        &self,
        task_id: &str,
        rollout: u32,
        ctx: &Context,
    ) -> Result<Published, PublishError> {
        let mode = self.mode();
        if mode == super::Mode::Off {
            return Err(PublishError::Off);
        }
        // Attempts of this process queue here; other processes' through the lease.
        let lock = {
            let mut locks = self.locks.lock().await;
            locks.entry(task_id.to_string()).or_default().clone()
        };
        let _guard = lock.lock().await;

        let task = self
            .store
            .task(task_id)
            .await?
            .ok_or_else(|| PublishError::NoSuchRollout {
                task: task_id.to_string(),
                rollout,
            })?;
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        // A later round of a task whose pull request is open updates that one.
        let follows = self.follows_pull_request(task_id).await?;
        let branch = match &follows {
            Some(earlier) => earlier.branch.clone(),
            None => self.branch_name(task_id, rollout),
        };
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        let mut waited = false;
        let row = loop {
            // Subscribed before reading, so that an end written in between still wakes the wait.
            let mut changes = self.store.publication_changes();
            let row = self
                .store
                .lease_publication(&PublicationLease {
                    task_id,
                    rollout,
                    branch: &branch,
                    attempt: &attempt,
                    lease_until: lease_until(),
                    retry_failed: !waited,
                })
                .await?
                .ok_or(PublishError::NotApproved { rollout })?;
            match row.state {
                PublicationState::Published => return published(row, true, follows.is_some()),
                PublicationState::Publishing
                    if row.attempt.as_deref() == Some(attempt.as_str()) =>
                {
                    break row;
                }
                PublicationState::Publishing => {
                    waited = true;
                    // The holder's end wakes this at once (on PostgreSQL from any process);
                    // without notices (another process on SQLite) it is seen at the next look,
                    // and so is a lease that lapsed.
                    tokio::select! {
                        Ok(()) = changes.changed() => {}
                        _ = tokio::time::sleep(LOOK_AGAIN) => {}
                        _ = tokio::time::sleep_until(deadline) => {
                            return Err(PublishError::StillPublishing);
                        }
                    }
                }
                PublicationState::Failed => {
                    return Err(PublishError::FailedElsewhere {
                        rollout: row.rollout,
                        detail: row.error.unwrap_or_else(|| "an unknown error".into()),
                    });
                }
            }
        };
        // An unfinished claim (a holder that died) is finished as claimed: its rollout's
        // approval is the one in force.
        let work =
            self.publish_claimed(&task, row.rollout, &row.branch, mode, ctx, follows.as_ref());
        let renew = self.renew(task_id, &attempt);
        let outcome = tokio::select! {
            r = work => r,
            () = renew => Err(PublishError::StillPublishing),
        };
        match outcome {
            Ok(p) => {
                let row = self
                    .store
                    .complete_publication(task_id, &p.commit, &p.url, p.pr_number)
                    .await?;
                tracing::info!(task = task_id, rollout = row.rollout, branch = %row.branch, url = ?row.url, reused = p.reused, "published a rollout");
                published(row, p.reused, p.updated)
            }
            Err(e) => {
                // The pull request may exist when GitHub's answer could not be read: the
                // approval stays, and approving that rollout again looks it up.
                let withdraw = !matches!(e, PublishError::Unreadable { .. });
                if let Err(store) = self
                    .store
                    .fail_publication(task_id, &attempt, &e.to_string(), withdraw)
                    .await
                {
                    tracing::warn!(task = task_id, error = %store, "could not record a failed publication");
                }
                Err(e)
            }
        }
    }

    /// Keeps an attempt's lease while it works (it never ends by itself).
    async fn renew(&self, task_id: &str, attempt: &str) {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self
                .store
                .renew_publication(task_id, attempt, lease_until())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(task = task_id, "another attempt took over the publication")
                }
                Err(e) => {
                    tracing::warn!(task = task_id, error = %e, "could not renew the publication's lease")
                }
            }
        }
    }
}
