//! `threadsmith env`: the environment snapshots kept on the sandbox backend (see
//! runner/src/environment.rs): listed, and pruned to `sandbox.environment_ttl` and
//! `sandbox.environment_cache_size` (or all of them). `threadsmith cleanup` prunes too.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use threadsmith_runner::SandboxBackend;
use threadsmith_runner::environment::{self, Snapshot};

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List the snapshots: name, repository, age, size, and whether they expired.
    List,
    /// Remove the expired snapshots, then the oldest until the rest fit the cache's size.
    Prune {
        /// Remove every snapshot (those a running sandbox uses stay).
        #[arg(long)]
        all: bool,
    },
}

pub async fn env_command(config: Config, command: EnvCommand) -> anyhow::Result<ExitCode> {
    let backend = crate::wiring::backend(&config).await?;
    let Some(cache) = backend.environments() else {
        println!(
            "the {} sandbox backend keeps no environment snapshots: the setup runs in every rollout",
            backend.name()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let ttl = config.environment_ttl()?;
    match command {
        EnvCommand::List => {
            let all = cache
                .list()
                .await
                .context("listing environment snapshots")?;
            if all.is_empty() {
                println!("no environment snapshots");
            }
            let now = Utc::now();
            for s in &all {
                println!("{}", line(s, ttl, now));
            }
            let total: u64 = all.iter().map(|s| s.bytes).sum();
            let budget = config.environment_cache_size()?;
            println!(
                "{} snapshot(s), {} of {} MiB",
                all.len(),
                total >> 20,
                budget >> 20
            );
        }
        EnvCommand::Prune { all } => {
            let (ttl, budget) = if all {
                (std::time::Duration::ZERO, 0)
            } else {
                (ttl, config.environment_cache_size()?)
            };
            let removed = environment::prune(cache, ttl, budget)
                .await
                .context("pruning environment snapshots")?;
            println!("removed {} environment snapshot(s)", removed.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `threadsmith cleanup`'s part: prunes to the settings; how many snapshots went.
pub async fn prune_to_settings(
    config: &Config,
    backend: &dyn SandboxBackend,
) -> anyhow::Result<usize> {
    let Some(cache) = backend.environments() else {
        return Ok(0);
    };
    let removed = environment::prune(
        cache,
        config.environment_ttl()?,
        config.environment_cache_size()?,
    )
    .await
    .context("pruning environment snapshots")?;
    Ok(removed.len())
}

fn line(s: &Snapshot, ttl: std::time::Duration, now: chrono::DateTime<Utc>) -> String {
    let age = (now - s.created).num_minutes().max(0);
    let state = if s.name.is_empty() {
        "replaced"
    } else if s.expired(ttl, now) {
        "expired"
    } else {
        "fresh"
    };
    let name = if s.name.is_empty() { &s.id } else { &s.name };
    format!(
        "{name}  {repo}  {age} min old  {kib} KiB  {state}",
        repo = s.repo,
        kib = s.bytes >> 10
    )
}
