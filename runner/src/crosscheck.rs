//! Cross-checks: once every rollout has ended, each rollout's reproduction test (its test files,
//! see [`crate::testfiles`]) is run with the repository's test command on the base commit and on
//! every rollout's change, each in a fresh sandbox with the rollouts' limits and no network.
//!
//! A test that fails on the base reproduces the problem and counts; where it then passes, that
//! change fixes what it reproduces (evidence for the change). A test that passes on the base
//! reproduces nothing: it gets no credit, and is no evidence for anyone.
//!
//! The runs are bounded: one sandbox per change (the base, and each rollout with a change),
//! running the tests one after the other with the working copy reset between them, so at most
//! N × (N + 1) test runs for N rollouts, each under the command's time limit, at most as many
//! sandboxes at once as the task has rollouts (the slots it was admitted with).
//! The evidence ([`Matrix`]) is stored, so that ranking is the same when it is read back.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rank::{OwnTest, Reproduction};

mod run;
#[cfg(test)]
mod tests;

pub use run::cross_check;

/// How far the cross-checks may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Sandboxes at once (the task's rollout slots).
    pub slots: usize,
    /// The time limit of one test run (see [`test_limit`]).
    pub test_limit: Duration,
}

/// The shortest a test run's limit gets.
pub const MIN_TEST_LIMIT: Duration = Duration::from_secs(60);

/// A test run's time limit: three times the longest the rollouts' own test runs took, at least
/// [`MIN_TEST_LIMIT`], at most the command's limit — adding one test file does not make a test
/// suite take much longer, and a run that hangs should not hold the task for the full limit.
pub fn test_limit(
    command_timeout: Duration,
    rollout_tests: impl Iterator<Item = Duration>,
) -> Duration {
    let longest = rollout_tests.max().unwrap_or(command_timeout);
    (longest * 3).max(MIN_TEST_LIMIT).min(command_timeout)
}

/// A rollout as the cross-checks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub index: u32,
    /// Its change (`git diff --binary` against the base); empty: no change to check.
    pub patch: String,
    /// The paths of the change that are tests.
    pub test_files: Vec<String>,
}

/// How one test run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// The test command passed.
    Passed,
    /// It failed.
    Failed,
    /// It could not be run: the test files or the change did not apply, the sandbox failed, the
    /// command timed out or was killed, or the task was cancelled.
    NotRun,
}

impl Cell {
    pub fn words(self) -> &'static str {
        match self {
            Cell::Passed => "passes",
            Cell::Failed => "fails",
            Cell::NotRun => "not run",
        }
    }
}

/// One test run: rollout `test_of`'s test files on `on`'s change (`None`: the base commit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub test_of: u32,
    pub on: Option<u32>,
    pub result: Cell,
    /// How long the test command took, in milliseconds (0 when it did not run).
    #[serde(default)]
    pub ms: u64,
}

/// The cross-checks' evidence for a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Matrix {
    /// Why the cross-checks did not run, for people ("the repository has no test command");
    /// `None` when they ran.
    #[serde(default)]
    pub skipped: Option<String>,
    /// The rollouts whose test files were run, in rollout order.
    #[serde(default)]
    pub tests: Vec<u32>,
    /// The rollouts whose changes they were run on, in rollout order (the base is always one).
    #[serde(default)]
    pub changes: Vec<u32>,
    #[serde(default)]
    pub runs: Vec<Run>,
    /// What went wrong on the way (a sandbox that could not start, a cancellation), for people.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Matrix {
    /// Cross-checks that did not run, and why.
    pub fn skipped(why: impl Into<String>) -> Self {
        Self {
            skipped: Some(why.into()),
            ..Self::default()
        }
    }

    /// How `test_of`'s tests did on `on` (`None`: the base); `None` if that run is not stored.
    pub fn cell(&self, test_of: u32, on: Option<u32>) -> Option<Cell> {
        self.runs
            .iter()
            .find(|r| r.test_of == test_of && r.on == on)
            .map(|r| r.result)
    }

    /// The tests that count: they fail on the base commit.
    pub fn valid_tests(&self) -> Vec<u32> {
        self.tests
            .iter()
            .copied()
            .filter(|&k| self.cell(k, None) == Some(Cell::Failed))
            .collect()
    }

    /// The evidence for rollout `index`'s change; `None` when the cross-checks did not run.
    pub fn reproduction(&self, index: u32) -> Option<Reproduction> {
        if self.skipped.is_some() {
            return None;
        }
        let valid = self.valid_tests();
        let passed_from = valid
            .iter()
            .copied()
            .filter(|&k| self.cell(k, Some(index)) == Some(Cell::Passed))
            .collect();
        let own = if !self.tests.contains(&index) {
            OwnTest::None
        } else {
            match self.cell(index, None) {
                Some(Cell::Failed) => OwnTest::Reproduces,
                Some(Cell::Passed) => OwnTest::PassesOnBase,
                Some(Cell::NotRun) | None => OwnTest::NotRun,
            }
        };
        Some(Reproduction {
            passed_from,
            valid: valid.len() as u32,
            own,
        })
    }

    /// One line for people: what ran, or why nothing did.
    pub fn summary_line(&self) -> String {
        if let Some(why) = &self.skipped {
            return format!("Reproduction tests were not cross-checked: {why}.");
        }
        let valid = self.valid_tests().len();
        format!(
            "Reproduction tests: {} of {} rollout{} wrote one that fails on the base commit; each was run on {} change{} ({} runs).",
            valid,
            self.tests.len(),
            if self.tests.len() == 1 { "" } else { "s" },
            self.changes.len(),
            if self.changes.len() == 1 { "" } else { "s" },
            self.runs.len()
        )
    }
}

/// The test runs the cross-checks make for `candidates`, in order: for each change (the base
/// first, then each rollout with a change), the test files of each rollout that has any. At most
/// N × (N + 1).
pub fn planned_runs(candidates: &[Candidate]) -> Vec<(Option<u32>, Vec<u32>)> {
    let tests: Vec<u32> = candidates
        .iter()
        .filter(|c| !c.test_files.is_empty())
        .map(|c| c.index)
        .collect();
    if tests.is_empty() {
        return Vec::new();
    }
    std::iter::once(None)
        .chain(
            candidates
                .iter()
                .filter(|c| !c.patch.trim().is_empty())
                .map(|c| Some(c.index)),
        )
        .map(|on| (on, tests.clone()))
        .collect()
}
