//! The seam between the chat core (and the CLI) and what runs a task's rollouts: in Docker
//! ([`DockerTasks`], the pipeline itself), or scripted in the fast tests (`crate::testing`), so
//! that every handler above it can be tested in-process without Docker, git or a model.

use async_trait::async_trait;
use threadsmith_runner::{Runner, SandboxError};
use tokio_util::sync::CancellationToken;

use super::{ProgressSink, Services, TaskReport, TaskRequest};
use crate::store::StoreError;

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

    /// Removes what the rollouts of stopped processes left on this host; how many were
    /// removed.
    async fn remove_orphans(&self) -> Result<usize, SandboxError>;

    /// Whether the sandbox backend can be reached now (for `/readyz`).
    async fn backend_reachable(&self) -> Result<(), SandboxError>;
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

    async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        self.runner
            .backend()
            .remove_orphans(&threadsmith_runner::owner_is_dead)
            .await
    }

    async fn backend_reachable(&self) -> Result<(), SandboxError> {
        self.runner.backend().reachable().await
    }
}
