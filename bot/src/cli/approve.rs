//! `threadsmith approve <task> <rollout>`: approves a rollout and publishes it. Several at once
//! (other shells, chat clicks in bot processes) converge on one branch and one pull request;
//! each prints it. Approving another rollout after one is approved says which one is.

use std::process::ExitCode;
use std::sync::Arc;

use threadsmith_runner::RepoCache;

use super::show;
use crate::config::Config;
use crate::publish::{Mode, PublishError, Publisher};
use crate::store::Store;

pub async fn approve(config: Config, task: &str, rollout: u32) -> anyhow::Result<ExitCode> {
    let store = crate::store::open(&config.database_url()).await?;
    let task = show::find_task(store.as_ref(), task, &config.database_url()).await?;
    let repos = RepoCache::new(config.data_dir());
    let publisher = Publisher::new(Arc::new(config), store.clone(), repos)?;
    publisher.check()?;
    if publisher.mode() == Mode::Off {
        // The CLI's approval is for publishing: nothing is recorded that nothing would act on.
        anyhow::bail!("{}", PublishError::Off);
    }
    if !store
        .rollouts(&task.id)
        .await?
        .iter()
        .any(|r| r.index == rollout)
    {
        anyhow::bail!(
            "task {} has no rollout {rollout}",
            crate::task_id::short_id(&task.id)
        );
    }
    let who = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "someone".into())
    );
    let approval = store.approve(&task.id, rollout, &who).await?;
    if approval.rollout != rollout {
        eprintln!(
            "{}",
            already_approved(
                store.as_ref(),
                &task.id,
                approval.rollout,
                &approval.approved_by,
                rollout
            )
            .await?
        );
        return Ok(ExitCode::FAILURE);
    }
    let ctx = crate::publish::Context::default();
    match publisher.publish(&task.id, rollout, &ctx).await {
        Ok(p) if p.rollout != rollout => {
            eprintln!(
                "{}",
                already_approved(
                    store.as_ref(),
                    &task.id,
                    p.rollout,
                    &approval.approved_by,
                    rollout
                )
                .await?
            );
            Ok(ExitCode::FAILURE)
        }
        Ok(p) => {
            match p.pr_number {
                Some(n) => println!("pull request #{n}: {}", p.url),
                None => println!("branch {}: {}", p.branch, p.url),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// "Rollout k is the approved one (and where it is)": never the asked-for rollout's address.
async fn already_approved(
    store: &dyn Store,
    task_id: &str,
    approved: u32,
    by: &str,
    asked: u32,
) -> anyhow::Result<String> {
    let short = &task_id[..task_id.len().min(8)];
    let mut text = format!(
        "task {short} is already approved: rollout {approved} by {by}, so rollout {asked} was not approved"
    );
    match store.publication(task_id).await? {
        Some(p)
            if p.state == crate::store::PublicationState::Published && p.rollout == approved =>
        {
            let what = match p.pr_number {
                Some(n) => format!("pull request #{n}"),
                None => format!("branch {}", p.branch),
            };
            text.push_str(&format!(
                "; rollout {approved} is published as {what}: {}",
                p.url.unwrap_or_default()
            ));
        }
        _ => text.push_str(&format!("; rollout {approved} is not published yet")),
    }
    Ok(text)
}
