//! The seam between the chat core (and the CLI) and what runs a task's rollouts: in Docker
//! ([`DockerTasks`], the pipeline itself), or scripted in the fast tests (`crate::testing`), so
//! that every handler above it can be tested in-process without Docker, git or a model.

use async_trait::async_trait;
use threadsmith_runner::{Runner, SandboxBackend, SandboxError};
use tokio_util::sync::CancellationToken;

use super::{ProgressSink, Services, TaskReport, TaskRequest};
use crate::store::{Store, StoreError};

/// Runs a task to its end, writing every state change to `svc.store` before passing it to
/// the sink (see [`super::run_task`], which callers use).
#[async_trait]
pub trait TaskRunner: Send + Sync {
    async fn run_task(
        &self,
        svc: &Services,
        req: TaskRequest,
        sink: &dyn ProgressSink,
        cancel: CancellationToken,
    ) -> Result<TaskReport, StoreError>;

    /// Removes what the rollouts of stopped processes left (see [`remove_orphans`]); how many
    /// sandboxes were removed.
    async fn remove_orphans(&self, live_workers: &[String]) -> Result<usize, SandboxError>;

    /// Whether the sandbox backend can be reached now (for `/readyz`).
    async fn backend_reachable(&self) -> Result<(), SandboxError>;
}

/// Removes what the rollouts of stopped processes left. On a backend of one machine (Docker),
/// those whose process on this machine is gone; on a cluster that bot processes on several
/// machines share (Kubernetes), those whose owner is not among `live_workers` (the store's).
pub async fn remove_orphans(
    backend: &dyn SandboxBackend,
    live_workers: &[String],
) -> Result<usize, SandboxError> {
    if backend.owners_span_machines() {
        // Owned: the judgement is a `'static` trait object.
        let live = live_workers.to_vec();
        backend
            .remove_orphans(&move |owner: &str| !live.iter().any(|w| w == owner))
            .await
    } else {
        backend
            .remove_orphans(&threadsmith_runner::owner_is_dead)
            .await
    }
}

/// The workers whose heartbeat vouches for them now, and `me` (this process, registered or not).
pub async fn live_workers(store: &dyn Store, me: Option<&str>) -> Result<Vec<String>, StoreError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut live: Vec<String> = store
        .workers()
        .await?
        .into_iter()
        .filter(|w| w.alive_until > now)
        .map(|w| w.id)
        .collect();
    live.extend(me.map(String::from));
    Ok(live)
}

/// The pipeline: rollouts in Docker sandboxes.
pub struct DockerTasks {
    runner: Runner,
}

impl DockerTasks {
    pub fn new(runner: Runner) -> Self {
        Self { runner }
    }
}

#[async_trait]
impl TaskRunner for DockerTasks {
    async fn run_task(
        &self,
        svc: &Services,
        req: TaskRequest,
        sink: &dyn ProgressSink,
        cancel: CancellationToken,
    ) -> Result<TaskReport, StoreError> {
        super::run_in_docker(svc, &self.runner, req, sink, cancel).await
    }

    async fn remove_orphans(&self, live_workers: &[String]) -> Result<usize, SandboxError> {
        remove_orphans(self.runner.backend().as_ref(), live_workers).await
    }

    async fn backend_reachable(&self) -> Result<(), SandboxError> {
        self.runner.backend().reachable().await
    }
}
