//! `threadsmith run --from <task>:<k> TEXT`: the next round of a stored task, starting from its
//! rollout `k`'s change on the same base (see `crate::rounds`).

use anyhow::{Context, bail};

use crate::pipeline::TaskRequest;
use crate::store::{RoundLink, Store};
use crate::task_id::TaskId;

/// `<task>:<k>`: the task's id (or the start of it) and a rollout number.
pub fn parse_from(text: &str) -> anyhow::Result<(&str, u32)> {
    let (task, k) = text.rsplit_once(':').with_context(|| {
        format!(
            "`--from {text}`: give the task and the rollout, as `<task>:<k>` (e.g. `3f2a9c1b:2`)"
        )
    })?;
    let k: u32 = k
        .trim_start_matches('#')
        .parse()
        .ok()
        .filter(|k| *k >= 1)
        .with_context(|| format!("`--from {text}`: `{k}` is not a rollout number"))?;
    if task.is_empty() {
        bail!("`--from {text}`: give the task's id (or the start of it) before the `:`");
    }
    Ok((task, k))
}

/// The request of the round after `--from`'s task, and its row (without the new task's id).
pub async fn round_request(
    store: &dyn Store,
    where_: &str,
    from: &str,
    text: &str,
    attempts: Option<u32>,
) -> anyhow::Result<(TaskRequest, RoundLink)> {
    let (prefix, k) = parse_from(from)?;
    let task = super::show::find_task(store, prefix, where_).await?;
    let plan = match crate::rounds::plan_round(store, &task.id, Some(k), text).await? {
        Ok(plan) => plan,
        Err(message) => bail!("{message}"),
    };
    let request = TaskRequest {
        text: text.to_string(),
        repo: plan.from.repo.clone(),
        base: plan.from.base_ref.clone(),
        attempts: attempts.unwrap_or(plan.from.attempts),
        origin: "cli".into(),
        requester: std::env::var("USER").ok(),
        spec: Some(plan.spec()),
        task_id: Some(TaskId::new()),
        round: Some(plan.start.clone()),
    };
    Ok((request, plan.link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_takes_a_task_and_a_rollout() {
        assert_eq!(parse_from("3f2a9c1b:2").unwrap(), ("3f2a9c1b", 2));
        assert_eq!(parse_from("3f2a:#3").unwrap(), ("3f2a", 3));
        for bad in ["3f2a", "3f2a:", "3f2a:x", "3f2a:0", ":2"] {
            assert!(parse_from(bad).is_err(), "{bad}");
        }
    }
}
