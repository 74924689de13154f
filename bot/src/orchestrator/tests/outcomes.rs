//! How a task's end is marked: an untested change is neither a success nor a failure.

use threadsmith_runner::Outcome;

use super::*;
use crate::chat::{Reaction, RolloutKind};

#[tokio::test]
async fn an_untested_change_is_marked_neutral_not_failed() {
    let w = World::new().await;
    w.tasks
        .push(Script::Finish(vec![Outcome::Untested, Outcome::GaveUp]));
    let (thread, _task) = w.run_mention("1", "fix this").await;

    let summary = &w.summaries()[0];
    let kinds: Vec<_> = summary.rollouts.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, vec![RolloutKind::Untested, RolloutKind::Failed]);
    assert_eq!(
        summary.rollouts[0].outcome,
        "untested: the repository has no test command"
    );
    // The request ends with a neutral mark, not ❌.
    assert_eq!(
        w.port.reactions_on(&thread.thread),
        vec![Reaction::Untested]
    );
    w.settled().await;
}

#[tokio::test]
async fn a_passing_rollout_beats_an_untested_one_and_failures_stay_failures() {
    let w = World::new().await;
    w.tasks
        .push(Script::Finish(vec![Outcome::Untested, Outcome::Succeeded]));
    let (first, _) = w.run_mention("2", "fix this").await;
    assert_eq!(w.port.reactions_on(&first.thread), vec![Reaction::Done]);

    w.tasks
        .push(Script::Finish(vec![Outcome::TestsFailed, Outcome::Errored]));
    let (second, _) = w.run_mention("3", "fix this").await;
    assert_eq!(w.port.reactions_on(&second.thread), vec![Reaction::Failed]);
    w.settled().await;
}

/// The detected test command is read from the task's stored field: the rollouts' words
/// (`scripted: succeeded`) do not name it.
#[tokio::test]
async fn the_detected_test_command_is_named_from_the_stored_field() {
    let w = World::new().await;
    w.tasks.set_tests(crate::store::TaskTests {
        command: "make test".into(),
        detected_from: Some("the Makefile's `test` target".into()),
    });
    let (_thread, task) = w.run_mention("4", "fix this").await;
    assert_eq!(
        task.tests.and_then(|t| t.detected_from).as_deref(),
        Some("the Makefile's `test` target")
    );
    let outcomes: Vec<_> = w.summaries()[0]
        .rollouts
        .iter()
        .map(|r| r.outcome.clone())
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "succeeded (tests: `make test`, detected from the Makefile's `test` target (none is configured))",
            "tests failed (tests: `make test`, detected from the Makefile's `test` target (none is configured))",
        ]
    );
    w.settled().await;
}
