//! Wiring: the services a command runs on, built in one place from the config — the store, the
//! runner (its sandbox backend, Docker or Kubernetes, and the model client), the repository
//! cache, the publisher and this process's liveness (in [`Services::new`]). `threadsmith run`
//! (in `cli/`) and `threadsmith serve` (`serve.rs`) both start here, so neither imports the other.

use std::sync::Arc;

use anyhow::Context;
use threadsmith_runner::sandbox::kubernetes::{Kubernetes, PolicyCheck};
use threadsmith_runner::{ChatModel, Docker, ModelClient, RepoCache, Runner, SandboxBackend};

use crate::config::{Backend, Config};
use crate::pipeline::Services;

/// The runner over `docker`, with the model client when a model is configured (the test
/// harness uses it too).
pub fn runner(docker: Docker, model: Option<ModelClient>) -> Runner {
    Runner::with_docker(docker, model)
}

/// The runner over any backend: the one place a [`Runner`] is made for the bot.
pub fn runner_on(backend: Arc<dyn SandboxBackend>, model: Option<ModelClient>) -> Runner {
    Runner::new(backend, model.map(|m| Arc::new(m) as Arc<dyn ChatModel>))
}

/// The sandbox backend the config names, ready for rollouts: Docker (connected), or a
/// Kubernetes namespace (connected, its NetworkPolicy in place).
pub async fn backend(config: &Config) -> anyhow::Result<Arc<dyn SandboxBackend>> {
    Ok(match config.backend()? {
        Backend::Docker => Arc::new(Docker::connect().await?),
        Backend::Kubernetes(options) => {
            let namespace = options.namespace.clone();
            let cluster = Kubernetes::connect(*options).await?;
            if cluster.prepare().await? == PolicyCheck::Created {
                tracing::info!(%namespace, "created the NetworkPolicy that keeps rollout pods off the network");
            }
            Arc::new(cluster)
        }
    })
}

/// Opens the store, connects to the sandbox backend and removes what dead processes left
/// behind.
pub async fn services(config: Config) -> anyhow::Result<Services> {
    let store = crate::store::open(&config.database_url()).await?;
    let backend = backend(&config).await?;
    let removed = match crate::pipeline::live_workers(store.as_ref(), None).await {
        Ok(live) => crate::pipeline::remove_orphans(backend.as_ref(), &live)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    match removed {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            removed = n,
            "removed sandboxes left by dead threadsmith processes"
        ),
        Err(e) => tracing::warn!(error = %e, "could not look for orphaned sandboxes"),
    }
    let model = match config.model_config() {
        Some(m) => Some(ModelClient::new(m).context("setting up the model client")?),
        None => None,
    };
    let repos = RepoCache::new(config.data_dir());
    Services::new(config, store, runner_on(backend, model), repos)
        .context("the [publish] or [github] settings")
}
