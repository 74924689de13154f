//! After every rollout has ended, before ranking: the cross-checks of the rollouts' reproduction
//! tests (run by the runner, see `threadsmith_runner::crosscheck`), stored with the task, and the
//! ranking's inputs with their evidence.

use threadsmith_runner::crosscheck::{Bounds, Candidate, Matrix, test_limit};
use threadsmith_runner::rank::RankInput;
use threadsmith_runner::{Outcome, RolloutResult, Runner, TaskPlan};
use tokio_util::sync::CancellationToken;

use super::Services;
use crate::store::StoreError;

/// The rollouts the cross-checks look at: every one that ended with a change (a cancelled one's
/// change is unfinished), with its test files.
pub fn candidates(results: &[RolloutResult]) -> Vec<Candidate> {
    results
        .iter()
        .filter(|r| r.outcome != Outcome::Cancelled && !r.diff.is_empty())
        .map(|r| Candidate {
            index: r.index,
            patch: r.diff.patch.clone(),
            test_files: r.diff.test_files.clone(),
        })
        .collect()
}

/// Runs the cross-checks (or says why not: turned off, cancelled, no test command, no test
/// file) and stores them before anything is ranked on them. They use the task's rollout slots:
/// at most as many sandboxes at once as it had rollouts, once those are removed; each
/// test run under three times the longest the rollouts' own took (see [`test_limit`]).
pub async fn cross_check(
    svc: &Services,
    runner: &Runner,
    plan: &TaskPlan,
    results: &[RolloutResult],
    cancel: &CancellationToken,
) -> Result<Matrix, StoreError> {
    let clock = std::time::Instant::now();
    let matrix = if !svc.config.ranking.reproduction() {
        Matrix::skipped("they are turned off (`ranking.reproduction = false`)")
    } else if cancel.is_cancelled() {
        Matrix::skipped("the task was cancelled")
    } else {
        let candidates = candidates(results);
        // The rollouts' sandboxes go first: the task never holds more than its slots.
        runner.settle_removals(&plan.task_id).await;
        let bounds = Bounds {
            slots: results.len().max(1),
            test_limit: test_limit(
                plan.settings.command_timeout,
                results
                    .iter()
                    .filter_map(|r| r.test.as_ref().map(|t| t.duration)),
            ),
        };
        runner.cross_check(plan, &candidates, bounds, cancel).await
    };
    tracing::info!(
        task = plan.task_id,
        runs = matrix.runs.len(),
        skipped = matrix.skipped.as_deref().unwrap_or("no"),
        ms = clock.elapsed().as_millis() as u64,
        "cross-checks done"
    );
    svc.store.set_crosschecks(&plan.task_id, &matrix).await?;
    Ok(matrix)
}

/// What ranking looks at: each rollout's result with the cross-checks' evidence for it.
pub fn rank_inputs(results: &[RolloutResult], matrix: Option<&Matrix>) -> Vec<RankInput> {
    results
        .iter()
        .map(|r| RankInput {
            reproduction: matrix.and_then(|m| m.reproduction(r.index)),
            ..RankInput::from(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use threadsmith_runner::crosscheck::{Cell, Run};
    use threadsmith_runner::rank::{self, OwnTest};
    use threadsmith_runner::{Diff, PhaseTimings};

    use super::*;

    fn result(index: u32, outcome: Outcome, confidence: f64, tests: &[&str]) -> RolloutResult {
        let now = chrono::Utc::now();
        RolloutResult {
            index,
            outcome,
            detail: String::new(),
            summary: None,
            confidence: Some(confidence),
            test: None,
            diff: Diff {
                patch: format!("diff --git a/f b/f\n+{index}\n"),
                files: Vec::new(),
                test_files: tests.iter().map(|t| t.to_string()).collect(),
            },
            commands: Vec::new(),
            sampling: None,
            network: None,
            started_at: now,
            finished_at: now,
            agent_duration: Duration::ZERO,
            timings: PhaseTimings::default(),
            cost: Default::default(),
            environment: None,
        }
    }

    fn run(test_of: u32, on: Option<u32>, result: Cell) -> Run {
        Run {
            test_of,
            on,
            result,
            ms: 1,
        }
    }

    #[test]
    fn a_change_that_passes_the_other_rollouts_reproduction_test_ranks_first() {
        // Both pass the repository's tests; rollout 1 is more confident, but only rollout 2's
        // change passes rollout 2's reproduction test, which fails on the base.
        let results = [
            result(1, Outcome::Succeeded, 0.95, &[]),
            result(2, Outcome::Succeeded, 0.4, &["tests/test_case.py"]),
            result(3, Outcome::Cancelled, 0.9, &["tests/test_c.py"]),
        ];
        let found = candidates(&results);
        assert_eq!(
            found.iter().map(|c| c.index).collect::<Vec<_>>(),
            vec![1, 2],
            "a cancelled rollout's change is not checked"
        );
        let matrix = Matrix {
            tests: vec![2],
            changes: vec![1, 2],
            runs: vec![
                run(2, None, Cell::Failed),
                run(2, Some(1), Cell::Failed),
                run(2, Some(2), Cell::Passed),
            ],
            ..Matrix::default()
        };
        let inputs = rank_inputs(&results, Some(&matrix));
        let ranked = rank::rank(&inputs);
        assert_eq!(ranked[0].index, 2);
        assert_eq!(ranked[0].headline, "passes 1/1 reproduction tests");
        assert!(
            ranked[1]
                .reason
                .contains("fewer reproduction tests pass (0 < 1)"),
            "{}",
            ranked[1].reason
        );
        assert_eq!(
            inputs[1].reproduction.as_ref().map(|r| r.own),
            Some(OwnTest::Reproduces)
        );
        // Without the cross-checks, the old order: confidence.
        assert_eq!(rank::rank(&rank_inputs(&results, None))[0].index, 1);
        let skipped = Matrix::skipped("the repository has no test command");
        assert!(
            rank_inputs(&results, Some(&skipped))
                .iter()
                .all(|i| i.reproduction.is_none())
        );
    }
}
