//! Follow-up rounds: what a round starts from (the chosen rollout's change, on the same base),
//! its spec, and the words that name a round. Started by a follow-up mention
//! (`follow_up.rs`), a Retry from a rollout (`retry.rs`) or the CLI (`threadsmith run --from`).

use crate::pipeline::RoundStart;
use crate::spec::{RoundContext, TaskSpec};
use crate::store::{RolloutRow, RoundLink, Store, StoreError, TaskRow, TaskState};

/// A round ready to start: where it starts and what its agents are told.
#[derive(Debug, Clone)]
pub struct RoundPlan {
    /// The round's row; `task_id` is filled in when the task's id is known.
    pub link: RoundLink,
    pub start: RoundStart,
    pub context: RoundContext,
    /// The task it builds on (its repository, base and spec).
    pub from: TaskRow,
}

impl RoundPlan {
    /// The spec of the round when the thread is not read again: the earlier task's, with the
    /// round's section.
    pub fn spec(&self) -> TaskSpec {
        let mut spec = self
            .from
            .spec_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<TaskSpec>(j).ok())
            .unwrap_or_else(|| TaskSpec::from_text(&self.from.spec));
        spec.feedback = None;
        spec.round = Some(self.context.clone());
        spec
    }
}

/// "rollout #2 of round 1" (or "rollout #2" when the task has one round only).
pub fn rollout_words(k: u32, round: u32, rounds: usize) -> String {
    if round == 1 && rounds <= 1 {
        format!("rollout #{k}")
    } else {
        format!("rollout #{k} of round {round}")
    }
}

/// Which rollout of a round the next one starts from: `from` if given, else the approved
/// one, else the top-ranked one with a change. `Err` is the user's message.
pub fn choose_rollout(
    rollouts: &[RolloutRow],
    approved: Option<u32>,
    from: Option<u32>,
    round: u32,
) -> Result<u32, String> {
    let changed = |r: &&RolloutRow| r.files_changed > 0;
    let with_change: Vec<u32> = rollouts.iter().filter(changed).map(|r| r.index).collect();
    let listed = || {
        with_change
            .iter()
            .map(|k| format!("`#{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match from {
        Some(k) => match rollouts.iter().find(|r| r.index == k) {
            None => Err(format!(
                "Round {round} has no rollout #{k}: it had {n} (#1 to #{n}). Say `from #1` to `from #{n}`.",
                n = rollouts.len()
            )),
            Some(r) if r.files_changed == 0 && with_change.is_empty() => Err(format!(
                "Rollout #{k} of round {round} changed nothing, and neither did the others, so there is no change to build on. Retry from scratch instead."
            )),
            Some(r) if r.files_changed == 0 => Err(format!(
                "Rollout #{k} of round {round} changed nothing, so there is nothing to build on. Rollouts with a change: {}.",
                listed()
            )),
            Some(r) => Ok(r.index),
        },
        None => {
            if let Some(k) = approved.filter(|k| with_change.contains(k)) {
                return Ok(k);
            }
            let mut ranked: Vec<&RolloutRow> = rollouts.iter().filter(changed).collect();
            ranked.sort_by_key(|r| (r.rank.unwrap_or(u32::MAX), r.index));
            ranked.first().map(|r| r.index).ok_or_else(|| {
                format!(
                    "No rollout of round {round} changed anything, so there is no change to build on. Retry from scratch instead, or say what to change and start a new thread."
                )
            })
        }
    }
}

/// Plans the round after `task_id` (a finished task), from its rollout `from` (or the
/// default). `Ok(Err(message))`: it cannot start, and the message says why.
pub async fn plan_round(
    store: &dyn Store,
    task_id: &str,
    from: Option<u32>,
    request: &str,
) -> Result<Result<RoundPlan, String>, StoreError> {
    let Some(task) = store.task(task_id).await? else {
        return Ok(Err(format!("There is no task `{task_id}`.")));
    };
    let place = store.place(task_id).await?;
    let chain = store.chain(task_id).await?;
    let round = place.round;
    if task.state != TaskState::Done {
        let why = match task.state {
            TaskState::Failed => "it failed",
            TaskState::Cancelled => "it was cancelled",
            _ => "it is still running",
        };
        return Ok(Err(format!(
            "Round {round} has no rollouts to build on: {why}."
        )));
    }
    let Some(base_commit) = task.base_commit.clone() else {
        return Ok(Err(format!(
            "Round {round} recorded no base commit, so no round can build on it."
        )));
    };
    let rollouts = store.rollouts(task_id).await?;
    let approved = store.approval(task_id).await?.map(|a| a.rollout);
    let k = match choose_rollout(&rollouts, approved, from, round) {
        Ok(k) => k,
        Err(message) => return Ok(Err(message)),
    };
    let Some(diff) = store
        .diff(task_id, k)
        .await?
        .filter(|d| !d.patch.trim().is_empty())
    else {
        return Ok(Err(format!(
            "Rollout #{k} of round {round} has no stored change to build on."
        )));
    };
    let next = chain.iter().map(|(r, _)| *r).max().unwrap_or(round) + 1;
    let from_words = rollout_words(k, round, chain.len().max(2));
    Ok(Ok(RoundPlan {
        link: RoundLink {
            task_id: String::new(),
            root: place.root,
            round: next,
            from_task: task_id.to_string(),
            from_rollout: k,
            request: Some(request.trim().to_string()).filter(|r| !r.is_empty()),
        },
        start: RoundStart {
            base_commit,
            patch: diff.patch.clone(),
        },
        context: RoundContext::new(next, from_words, request, &diff.patch),
        from: task,
    }))
}

/// The round history of the chain `task_id` belongs to, one line each: "round 1", "round 2
/// (from rollout #2 of round 1): keep the output format".
pub async fn history(store: &dyn Store, task_id: &str) -> Result<Vec<String>, StoreError> {
    let place = store.place(task_id).await?;
    let mut lines = vec!["round 1".to_string()];
    let later = store.later_rounds(&place.root).await?;
    let round_of = |t: &str| {
        if t == place.root {
            1
        } else {
            later.iter().find(|l| l.task_id == t).map_or(0, |l| l.round)
        }
    };
    for l in &later {
        let mut line = format!(
            "round {} (from rollout #{} of round {})",
            l.round,
            l.from_rollout,
            round_of(&l.from_task)
        );
        if let Some(r) = &l.request {
            line.push_str(&format!(": {r}"));
        }
        lines.push(line);
    }
    Ok(lines)
}

/// The summary's line about rounds: `None` for a task without follow-ups.
pub async fn summary_line(store: &dyn Store, task_id: &str) -> Result<Option<String>, StoreError> {
    let place = store.place(task_id).await?;
    let chain = store.chain(task_id).await?;
    let last = chain.iter().map(|(r, _)| *r).max().unwrap_or(1);
    Ok(match &place.link {
        None if chain.len() <= 1 => None,
        None => Some(format!(
            "Round 1 of {last}: later rounds follow in this thread. Approving a rollout here still works."
        )),
        Some(link) => {
            let from_round = chain
                .iter()
                .find(|(_, t)| *t == link.from_task)
                .map_or(1, |(r, _)| *r);
            let mut line = format!(
                "Round {} of this task, from rollout #{} of round {from_round}: each diff is the whole change against the base.",
                place.round, link.from_rollout
            );
            if place.round < last {
                line.push_str(&format!(" Round {last} follows in this thread."));
            }
            Some(line)
        }
    })
}

/// A round's own increment, file by file: how each file of its whole change (against the
/// base) differs from the change it started from. Whole-file sections of the two patches are
/// compared: identical ones are carried over, the others are what the round did.
pub fn increment(start: &str, whole: &str) -> Vec<String> {
    fn sections(patch: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in patch.split_inclusive('\n') {
            if let Some(header) = line.strip_prefix("diff --git ") {
                let path = header
                    .trim_end()
                    .rsplit_once(" b/")
                    .map_or(header.trim_end(), |(_, b)| b)
                    .to_string();
                out.push((path, String::new()));
            }
            if let Some((_, text)) = out.last_mut() {
                text.push_str(line);
            }
        }
        out
    }
    let before = sections(start);
    let after = sections(whole);
    let mut lines = Vec::new();
    for (path, text) in &after {
        match before.iter().find(|(p, _)| p == path) {
            Some((_, t)) if t == text => {}
            Some(_) => lines.push(format!("{path}: changed further in this round")),
            None => lines.push(format!("{path}: changed in this round only")),
        }
    }
    for (path, _) in &before {
        if !after.iter().any(|(p, _)| p == path) {
            lines.push(format!(
                "{path}: its earlier change was undone in this round"
            ));
        }
    }
    if lines.is_empty() {
        lines.push("nothing: the whole change is the one this round started from".to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_increment_names_what_the_round_changed_file_by_file() {
        let start = "diff --git a/a.sh b/a.sh\n-x\n+y\ndiff --git a/b.sh b/b.sh\n-1\n+2\ndiff --git a/c.sh b/c.sh\n+c\n";
        let whole = "diff --git a/a.sh b/a.sh\n-x\n+y\ndiff --git a/b.sh b/b.sh\n-1\n+3\ndiff --git a/d.sh b/d.sh\n+d\n";
        assert_eq!(
            super::increment(start, whole),
            vec![
                "b.sh: changed further in this round",
                "d.sh: changed in this round only",
                "c.sh: its earlier change was undone in this round",
            ]
        );
        assert_eq!(
            super::increment(start, start),
            vec!["nothing: the whole change is the one this round started from"]
        );
    }

    use super::*;

    fn row(index: u32, rank: u32, files: u64) -> RolloutRow {
        RolloutRow {
            index,
            phase: "done".into(),
            step: 0,
            outcome: None,
            detail: None,
            summary: None,
            confidence: None,
            sampling: None,
            test: None,
            lines_added: files,
            lines_removed: 0,
            files_changed: files,
            rank: Some(rank),
            rank_reason: None,
            rank_headline: None,
            rank_reasons: Vec::new(),
            network: None,
            started_at: None,
            finished_at: None,
            agent_duration: None,
            cost: Default::default(),
            environment: None,
        }
    }

    #[test]
    fn the_default_is_the_approved_rollout_else_the_top_ranked_change() {
        let rows = [row(1, 2, 1), row(2, 3, 1), row(3, 1, 0)];
        assert_eq!(choose_rollout(&rows, Some(2), None, 1), Ok(2));
        // Rank 1 changed nothing: the best rollout with a change.
        assert_eq!(choose_rollout(&rows, None, None, 1), Ok(1));
        // An approved rollout without a change is no starting point.
        assert_eq!(choose_rollout(&rows, Some(3), None, 1), Ok(1));
        assert_eq!(choose_rollout(&rows, None, Some(2), 1), Ok(2));
    }

    #[test]
    fn a_missing_or_empty_rollout_is_said() {
        let rows = [row(1, 1, 1), row(2, 2, 0), row(3, 3, 2)];
        assert_eq!(
            choose_rollout(&rows, None, Some(9), 1).unwrap_err(),
            "Round 1 has no rollout #9: it had 3 (#1 to #3). Say `from #1` to `from #3`."
        );
        assert_eq!(
            choose_rollout(&rows, None, Some(2), 2).unwrap_err(),
            "Rollout #2 of round 2 changed nothing, so there is nothing to build on. Rollouts with a change: `#1`, `#3`."
        );
        let none = [row(1, 1, 0)];
        assert!(
            choose_rollout(&none, None, None, 1)
                .unwrap_err()
                .starts_with("No rollout of round 1 changed anything")
        );
        assert!(
            choose_rollout(&none, None, Some(1), 1)
                .unwrap_err()
                .contains("neither did the others")
        );
    }

    #[test]
    fn rollouts_are_named_with_their_round_once_there_are_rounds() {
        assert_eq!(rollout_words(2, 1, 1), "rollout #2");
        assert_eq!(rollout_words(2, 1, 2), "rollout #2 of round 1");
        assert_eq!(rollout_words(1, 3, 3), "rollout #1 of round 3");
    }
}
