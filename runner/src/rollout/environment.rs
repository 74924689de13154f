//! A rollout's environment (see [`crate::environment`]): started from a snapshot — the setup
//! skipped — or set up, then saved for the next rollouts when this one holds the build lease.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::environment::{self, Acquired, BuildLease, EnvironmentUse};
use crate::sandbox::{Sandbox, SandboxBackend};
use crate::types::{RepoSettings, TaskPlan};

/// How a rollout's sandbox starts.
pub(super) struct EnvStart {
    /// What the sandbox is made from: the rollout image, or a snapshot of it.
    pub image: String,
    /// Started from a snapshot: the copy puts its files back and the setup does not run.
    pub from_snapshot: bool,
    /// This rollout builds the missing snapshot once its setup succeeds.
    pub lease: Option<BuildLease>,
    /// What the result says.
    pub used: Option<EnvironmentUse>,
}

/// The longest a rollout waits for another to build the snapshot it needs: the other's setup
/// and save (a command's limit each), and a minute to spare. Past it, it runs the setup itself.
fn build_wait(command_timeout: Duration) -> Duration {
    command_timeout * 2 + Duration::from_secs(60)
}

/// Looks the snapshot up; waits while another rollout builds it. Any failure of the cache means
/// only that the setup runs (and is logged).
pub(super) async fn start(
    backend: &dyn SandboxBackend,
    plan: &TaskPlan,
    cancel: &CancellationToken,
) -> EnvStart {
    let settings = &plan.settings;
    let plain = EnvStart::plain(settings);
    let (Some(env), Some(cache), Some(_)) =
        (&plan.environment, backend.environments(), &settings.setup)
    else {
        return plain;
    };
    if env.ttl.is_zero() {
        return plain;
    }
    let wait = build_wait(settings.command_timeout);
    match cache.acquire(&settings.image, env, wait, cancel).await {
        Ok(Acquired::Hit(snapshot)) => EnvStart {
            image: snapshot.id.clone(),
            from_snapshot: true,
            lease: None,
            used: Some(EnvironmentUse {
                snapshot: snapshot.name,
                from_snapshot: true,
            }),
        },
        Ok(Acquired::Build(lease)) => EnvStart {
            lease: Some(lease),
            ..plain
        },
        Ok(Acquired::Skip(why)) => {
            tracing::info!(
                task = plan.task_id,
                why,
                "running the setup without the environment cache"
            );
            plain
        }
        Err(e) => {
            tracing::warn!(task = plan.task_id, error = %e, "the environment cache failed; running the setup");
            plain
        }
    }
}

impl EnvStart {
    /// From the rollout image, the setup run, nothing saved.
    pub(super) fn plain(settings: &RepoSettings) -> Self {
        Self {
            image: settings.image.clone(),
            from_snapshot: false,
            lease: None,
            used: None,
        }
    }

    /// After a successful setup: saves the snapshot when this rollout holds the lease, then
    /// prunes the cache to its budget. A failure is logged: the rollout goes on.
    pub(super) async fn save(
        &mut self,
        backend: &dyn SandboxBackend,
        plan: &TaskPlan,
        sandbox: &dyn Sandbox,
        cancel: &CancellationToken,
    ) {
        let (Some(lease), Some(cache), Some(env)) =
            (self.lease.take(), backend.environments(), &plan.environment)
        else {
            return;
        };
        match cache
            .save(lease, sandbox, plan.settings.command_timeout, cancel)
            .await
        {
            Ok(snapshot) => {
                tracing::info!(
                    task = plan.task_id,
                    snapshot = snapshot.name,
                    bytes = snapshot.bytes,
                    "saved an environment snapshot"
                );
                self.used = Some(EnvironmentUse {
                    snapshot: snapshot.name,
                    from_snapshot: false,
                });
                // The replaced and, over the budget, the oldest. Not by this repository's
                // time to live: another's may be longer (`threadsmith cleanup` prunes those).
                match environment::prune(cache, Duration::MAX, env.budget_bytes).await {
                    Ok(gone) if !gone.is_empty() => {
                        tracing::info!(removed = gone.len(), "pruned environment snapshots");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not prune environment snapshots"),
                }
            }
            Err(e) => {
                tracing::warn!(task = plan.task_id, error = %e, "could not save the environment snapshot");
            }
        }
    }

    /// Gives an unused lease back (the setup failed, or the rollout ended before it).
    pub(super) async fn release(&mut self, backend: &dyn SandboxBackend) {
        if let (Some(lease), Some(cache)) = (self.lease.take(), backend.environments()) {
            cache.release(lease).await;
        }
    }
}
