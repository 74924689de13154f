//! A rollout's outcome as the summary states it: untested rollouts say why, and a test command
//! that was detected (not configured) is named.

use threadsmith_runner::Outcome;

use crate::store::RolloutRow;

pub(crate) fn outcome_words(r: &RolloutRow) -> String {
    let Some(outcome) = r.outcome else {
        return r.phase.clone();
    };
    let detected = r
        .detail
        .as_deref()
        .filter(|d| d.contains(", detected from "))
        .and_then(|d| d.split_once(": "))
        .map(|(_, words)| words);
    match (outcome, detected) {
        (Outcome::Untested, _) => "untested: the repository has no test command".into(),
        (Outcome::Succeeded | Outcome::TestsFailed, Some(words)) => {
            format!("{} (tests: {words})", outcome.label())
        }
        (o, _) => o.label().to_string(),
    }
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
            network: None,
            started_at: None,
            finished_at: None,
            agent_duration: None,
        }
    }

    #[test]
    fn untested_and_detected_tests_are_said() {
        assert_eq!(
            outcome_words(&row(
                Outcome::Untested,
                threadsmith_runner::testdetect::UNTESTED
            )),
            "untested: the repository has no test command"
        );
        assert_eq!(
            outcome_words(&row(
                Outcome::Succeeded,
                "the tests pass: `cargo test`, detected from Cargo.toml (none is configured)"
            )),
            "succeeded (tests: `cargo test`, detected from Cargo.toml (none is configured))"
        );
        assert_eq!(
            outcome_words(&row(Outcome::Succeeded, "the tests pass")),
            "succeeded"
        );
    }
}
