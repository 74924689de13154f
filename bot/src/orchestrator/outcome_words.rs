//! A rollout's outcome as the summary states it: untested rollouts say why, and a test command
//! that was detected (not configured) is named.

use threadsmith_runner::Outcome;
use threadsmith_runner::testdetect;

use crate::store::{RolloutRow, TaskTests};

/// `tests` is the task's stored test command; a task stored by an earlier version has none,
/// and its rollouts' `detail` ("the tests pass: `cargo test`, detected from …") is read instead.
pub(crate) fn outcome_words(r: &RolloutRow, tests: Option<&TaskTests>) -> String {
    let Some(outcome) = r.outcome else {
        return r.phase.clone();
    };
    let detected = match tests {
        Some(t) => t
            .detected_from
            .as_deref()
            .map(|from| testdetect::words(&t.command, Some(from))),
        None => legacy_detected(r.detail.as_deref()).map(str::to_string),
    };
    match (outcome, detected) {
        (Outcome::Untested, _) => "untested: the repository has no test command".into(),
        (Outcome::Succeeded | Outcome::TestsFailed, Some(words)) => {
            format!("{} (tests: {words})", outcome.label())
        }
        (o, _) => o.label().to_string(),
    }
}

/// The detected test command's words in a `detail` written by an earlier version.
fn legacy_detected(detail: Option<&str>) -> Option<&str> {
    detail
        .filter(|d| d.contains(", detected from "))
        .and_then(|d| d.split_once(": "))
        .map(|(_, words)| words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: Outcome, detail: &str) -> RolloutRow {
        RolloutRow {
            index: 1,
            phase: "done".into(),
            step: 0,
            outcome: Some(outcome),
            detail: Some(detail.into()),
            summary: None,
            confidence: None,
            sampling: None,
            test: None,
            lines_added: 0,
            lines_removed: 0,
            files_changed: 0,
            rank: None,
            rank_reason: None,
            rank_headline: None,
            environment: None,
            rank_reasons: Vec::new(),
            network: None,
            started_at: None,
            finished_at: None,
            agent_duration: None,
            cost: Default::default(),
        }
    }

    fn detected(command: &str, from: &str) -> TaskTests {
        TaskTests {
            command: command.into(),
            detected_from: Some(from.into()),
        }
    }

    #[test]
    fn untested_and_detected_tests_are_said() {
        assert_eq!(
            outcome_words(&row(Outcome::Untested, testdetect::UNTESTED), None),
            "untested: the repository has no test command"
        );
        let cargo = detected("cargo test", "Cargo.toml");
        assert_eq!(
            outcome_words(&row(Outcome::Succeeded, "the tests pass"), Some(&cargo)),
            "succeeded (tests: `cargo test`, detected from Cargo.toml (none is configured))"
        );
        let make = detected("make test", "the Makefile's `test` target");
        assert_eq!(
            outcome_words(&row(Outcome::TestsFailed, "the tests failed"), Some(&make)),
            "tests failed (tests: `make test`, detected from the Makefile's `test` target (none is configured))"
        );
        // A configured command is not named.
        let configured = TaskTests {
            command: "bash test.sh".into(),
            detected_from: None,
        };
        assert_eq!(
            outcome_words(
                &row(Outcome::Succeeded, "the tests pass"),
                Some(&configured)
            ),
            "succeeded"
        );
    }

    /// The field decides, not the free text: words in a detail that looks like the old form
    /// are not taken for a detected command when the task says what ran.
    #[test]
    fn the_stored_field_wins_over_the_detail() {
        let configured = TaskTests {
            command: "cargo test".into(),
            detected_from: None,
        };
        let tricky = row(
            Outcome::Succeeded,
            "the tests pass: `rm -rf`, detected from a comment (none is configured)",
        );
        assert_eq!(outcome_words(&tricky, Some(&configured)), "succeeded");
    }

    /// Rows written by the previous version carry the words in `detail` only.
    #[test]
    fn rows_from_the_previous_version_render_as_before() {
        assert_eq!(
            outcome_words(
                &row(
                    Outcome::Succeeded,
                    "the tests pass: `cargo test`, detected from Cargo.toml (none is configured)"
                ),
                None
            ),
            "succeeded (tests: `cargo test`, detected from Cargo.toml (none is configured))"
        );
        assert_eq!(
            outcome_words(&row(Outcome::Succeeded, "the tests pass"), None),
            "succeeded"
        );
    }
}
