//! The task's environment plan (see runner/src/environment.rs): the key of the snapshot its
//! rollouts may start from, made from the repository's settings and its base commit's files.

use threadsmith_runner::environment::EnvironmentPlan;
use threadsmith_runner::{PreparedRepo, RepoSettings};

use super::{PipelineFailure, Services, user};
use crate::config::{SandboxSection, environment_plan};

/// `None` when the repository has no setup or the cache is off. A repository whose files cannot
/// be listed runs its setup in every rollout (logged), as before the cache.
pub(super) async fn plan(
    svc: &Services,
    section: &SandboxSection,
    settings: &RepoSettings,
    prepared: &PreparedRepo,
) -> Result<Option<EnvironmentPlan>, PipelineFailure> {
    if settings.setup.is_none() {
        return Ok(None);
    }
    let listing = match svc.repos.tree_listing(prepared).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "could not list the repository's files; the environment cache is not used");
            return Ok(None);
        }
    };
    let repo = prepared.source.display_name();
    environment_plan(&svc.config, section, settings, &repo, &listing)
        .map_err(|e| user(format!("The repository's {e}")))
}
