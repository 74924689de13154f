//! Wiring: the services a command runs on, built in one place from the config — the store, the
//! runner (Docker and the model client), the repository cache, the publisher and this process's
//! liveness (in [`Services::new`]). `threadsmith run` (in `cli/`) and `threadsmith serve`
//! (`serve.rs`) both start here, so neither imports the other.

use anyhow::Context;
use threadsmith_runner::{Docker, ModelClient, RepoCache, Runner};

use crate::config::Config;
use crate::pipeline::Services;

/// The runner over `docker`, with the model client when a model is configured. The one place a
/// [`Runner`] is made for the bot (the test harness uses it too).
pub fn runner(docker: Docker, model: Option<ModelClient>) -> Runner {
    Runner::with_docker(docker, model)
}

/// Opens the store, connects to Docker and removes what dead processes left behind.
pub async fn services(config: Config) -> anyhow::Result<Services> {
    let store = crate::store::open(&config.database_url()).await?;
    let docker = Docker::connect().await?;
    match docker.remove_orphans().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            removed = n,
            "removed containers left by dead threadsmith processes"
        ),
        Err(e) => tracing::warn!(error = %e, "could not look for orphaned containers"),
    }
    let model = match config.model_config() {
        Some(m) => Some(ModelClient::new(m).context("setting up the model client")?),
        None => None,
    };
    let repos = RepoCache::new(config.data_dir());
    Services::new(config, store, runner(docker, model), repos)
        .context("the [publish] or [github] settings")
}
