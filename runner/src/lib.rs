//! threadsmith's runner: sandboxes, the agent loop, best-of-N rollouts and their ranking.
//!
//! It knows nothing of chat, of the database or of GitHub. It is given a task plan (the spec as
//! Markdown, the repository's settings, a seed made from the base commit) and reports what
//! happens as [`RolloutEvent`]s and, at the end, [`RolloutResult`]s.

pub mod agent;
pub mod context;
pub mod crosscheck;
pub mod environment;
pub mod image;
pub mod metrics;
pub mod oom;
pub mod output;
pub mod process;
pub mod rank;
pub mod removals;
pub mod repo;
pub mod rollout;
pub mod sandbox;
pub mod secret;
pub mod testdetect;
pub mod testfiles;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod usage;
pub mod workspace;

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use agent::chat::ChatModel;
pub use agent::model::{ModelClient, ModelConfig, Sampling};
pub use removals::Removals;
pub use repo::{PreparedRepo, RepoCache, RepoError, RepoSource};
pub use sandbox::{
    Docker, Limits, Sandbox, SandboxBackend, SandboxError, owner_is_dead, owner_label,
};
pub use types::*;
pub use usage::{BudgetStop, ModelUsage, RolloutCost, TokenBudget, TokenUsage, UsageMeter};

/// Runs rollouts. Holds the sandbox backend and, for the built-in agent, the model; nothing else
/// (no chat or GitHub credentials).
#[derive(Clone)]
pub struct Runner {
    backend: Arc<dyn SandboxBackend>,
    model: Option<Arc<dyn ChatModel>>,
    /// Sandboxes whose rollout has ended, being removed (awaited by [`Runner::release_task`]).
    removals: Arc<Removals>,
}

/// The sampling of rollout `index` (from 1): seeds and temperatures differ between rollouts.
pub fn sampling_for(index: u32, temperatures: &[f32], base_seed: u64) -> Sampling {
    let temperature = if temperatures.is_empty() {
        0.7
    } else {
        temperatures[(index as usize - 1) % temperatures.len()]
    };
    Sampling {
        temperature,
        seed: base_seed + u64::from(index),
    }
}

impl Runner {
    pub fn new(backend: Arc<dyn SandboxBackend>, model: Option<Arc<dyn ChatModel>>) -> Self {
        Self {
            backend,
            model,
            removals: Arc::default(),
        }
    }

    /// Rollouts in Docker containers, the built-in agent talking to `model`.
    pub fn with_docker(docker: Docker, model: Option<ModelClient>) -> Self {
        Self::new(
            Arc::new(docker),
            model.map(|m| Arc::new(m) as Arc<dyn ChatModel>),
        )
    }

    /// Where the rollouts run.
    pub fn backend(&self) -> &Arc<dyn SandboxBackend> {
        &self.backend
    }

    /// Makes the task's seed (one upload per task); `cancel` stops the packing of its archive.
    pub async fn prepare_seed(
        &self,
        task_id: &str,
        cache: &RepoCache,
        repo: &PreparedRepo,
        image: &str,
        cancel: &CancellationToken,
    ) -> Result<String, SeedError> {
        self.backend.require_image(image).await?;
        let archive = cache.seed_archive(repo, cancel).await?;
        Ok(self.backend.create_seed(task_id, image, archive).await?)
    }

    /// Runs the given rollouts concurrently. Each ends with a result, whatever happens to the
    /// others; the results come back in rollout order.
    pub async fn run_rollouts(
        &self,
        plan: Arc<TaskPlan>,
        rollouts: Vec<(u32, Sampling)>,
        events: UnboundedSender<RolloutEvent>,
        cancel: CancellationToken,
    ) -> Vec<RolloutResult> {
        let mut set = JoinSet::new();
        for (index, sampling) in rollouts.iter().copied() {
            let runner = self.clone();
            let plan = plan.clone();
            let events = events.clone();
            let cancel = cancel.clone();
            set.spawn(async move {
                rollout::run_rollout(
                    runner.backend.as_ref(),
                    runner.model.as_deref(),
                    &plan,
                    index,
                    sampling,
                    &events,
                    &cancel,
                    &runner.removals,
                )
                .await
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(e) => tracing::error!(error = %e, "a rollout task died"),
            }
        }
        // A rollout whose task panicked still gets a result.
        for (index, sampling) in rollouts {
            if !results.iter().any(|r| r.index == index) {
                let now = chrono::Utc::now();
                results.push(RolloutResult {
                    index,
                    outcome: Outcome::Errored,
                    detail: "the rollout crashed inside threadsmith (this is a bug)".into(),
                    summary: None,
                    confidence: None,
                    test: None,
                    diff: Diff::default(),
                    commands: Vec::new(),
                    sampling: Some(sampling),
                    network: None,
                    started_at: now,
                    finished_at: now,
                    agent_duration: std::time::Duration::ZERO,
                    timings: PhaseTimings::default(),
                    cost: Default::default(),
                    environment: None,
                });
            }
        }
        results.sort_by_key(|r| r.index);
        results
    }

    /// Runs the cross-checks of the task's ended rollouts (see [`crosscheck`]) within `bounds`,
    /// stopped by `cancel`. Their sandboxes are removed like the rollouts'.
    pub async fn cross_check(
        &self,
        plan: &TaskPlan,
        candidates: &[crosscheck::Candidate],
        bounds: crosscheck::Bounds,
        cancel: &CancellationToken,
    ) -> crosscheck::Matrix {
        crosscheck::cross_check(
            self.backend.as_ref(),
            &self.removals,
            plan,
            candidates,
            bounds,
            cancel,
        )
        .await
    }

    /// Waits until the sandboxes of the task's ended rollouts are removed (each is removed in
    /// the background once its result is known); how long each removal took.
    pub async fn settle_removals(&self, task_id: &str) -> Vec<std::time::Duration> {
        self.removals.settle(task_id).await
    }

    /// Removes every container and volume of the task (its seed included), once the removals
    /// of its rollouts' sandboxes under way are over.
    pub async fn release_task(&self, task_id: &str) {
        self.removals.settle(task_id).await;
        if let Err(e) = self.backend.remove_task(task_id).await {
            tracing::warn!(task = task_id, error = %e, "could not clean up the task's containers");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}
