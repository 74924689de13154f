//! Reproduction tests, end to end (real Docker and git, a scripted model): each rollout's test is
//! run on the base and on every change, and the change that passes the others' tests ranks
//! first even when the repository's own tests cannot tell the rollouts apart.

use serde_json::json;
use threadsmith_runner::Outcome;
use threadsmith_runner::crosscheck::Cell;
use threadsmith_tests::gitrepo::repo_with;
use threadsmith_tests::{Backend, Turn, env_on};

/// `add` subtracts. The repository's tests check only `sub`, and run every `tests/*.sh`.
const BUGGY: &str = "add() { echo $(( $1 - $2 )); }\nsub() { echo $(( $1 - $2 )); }\n";
const REPO_TESTS: &str = r#"#!/bin/bash
. ./calc.sh
fail=0
if [ "$(sub 5 3)" = 2 ]; then echo "ok - sub"; else echo "not ok - sub"; fail=1; fi
for t in tests/*.sh; do
  [ -e "$t" ] || continue
  if bash "$t"; then echo "ok - $t"; else echo "not ok - $t"; fail=1; fi
done
exit $fail
"#;

/// Rollout 1 over-fits: `add 2 3` is special-cased.
const OVERFIT: &str = "add() { if [ \"$1 $2\" = \"2 3\" ]; then echo 5; else echo $(( $1 - $2 )); fi; }\nsub() { echo $(( $1 - $2 )); }\n";
const OVERFIT_TEST: &str = ". ./calc.sh\n[ \"$(add 2 3)\" = 5 ]\n";
/// Rollout 2 fixes it, and its test checks more than the reported case.
const FIXED: &str = "add() { echo $(( $1 + $2 )); }\nsub() { echo $(( $1 - $2 )); }\n";
const FIXED_TEST: &str = ". ./calc.sh\n[ \"$(add 2 3)\" = 5 ] && [ \"$(add 10 4)\" = 14 ]\n";

fn rollout(calc: &str, test_path: &str, test: &str, confidence: f64) -> Vec<Turn> {
    vec![
        Turn::Call("write_file", json!({"path": test_path, "content": test})),
        Turn::Call("write_file", json!({"path": "calc.sh", "content": calc})),
        Turn::Call(
            "finish",
            json!({"summary": "Fixed `add`.", "confidence": confidence}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_that_passes_the_other_rollouts_reproduction_test_ranks_first() {
    let env = env_on(Backend::Docker, |_| {}).await;
    let repo = repo_with(
        &env.dir.path().join("calc"),
        &[
            ("calc.sh", BUGGY),
            ("test.sh", REPO_TESTS),
            (".threadsmith.toml", "test = \"bash test.sh\"\n"),
        ],
    );
    env.model
        .script(1, rollout(OVERFIT, "tests/add_2_3.sh", OVERFIT_TEST, 0.95));
    env.model
        .script(2, rollout(FIXED, "tests/add.sh", FIXED_TEST, 0.5));

    let clock = std::time::Instant::now();
    let report = env.run(&repo, 2, "add(2, 3) gives -1").await;
    let task_time = clock.elapsed();
    assert_eq!(report.task.error, None);
    let order: Vec<(u32, Outcome)> = report
        .rollouts
        .iter()
        .map(|r| (r.index, r.outcome.unwrap()))
        .collect();
    // Both pass the repository's tests; rollout 1 is more confident, yet ranks second.
    assert_eq!(
        order,
        vec![(2, Outcome::Succeeded), (1, Outcome::Succeeded)],
        "{:?}",
        report.rollouts
    );
    assert_eq!(
        report.rollouts[0].rank_headline.as_deref(),
        Some("passes 2/2 reproduction tests")
    );
    let second = report.rollouts[1]
        .rank_reason
        .as_deref()
        .unwrap_or_default();
    assert!(
        second.contains("fewer reproduction tests pass (1 < 2)"),
        "{second}"
    );

    let store = env.svc.store.as_ref();
    let task = &report.task.id;
    let diff = store.diff(task, 1).await.unwrap().unwrap();
    assert_eq!(diff.test_files, vec!["tests/add_2_3.sh".to_string()]);
    let matrix = store.crosschecks(task).await.unwrap().unwrap();
    assert!(matrix.notes.is_empty(), "{:?}", matrix.notes);
    let last_rollout = report
        .rollouts
        .iter()
        .filter_map(|r| r.finished_at)
        .max()
        .unwrap();
    println!(
        "task {:.2} s; cross-checks (from the last rollout's end to the task's) {:.2} s; test commands {} ms in all",
        task_time.as_secs_f64(),
        (report.task.updated_at - last_rollout).num_milliseconds() as f64 / 1000.0,
        matrix.runs.iter().map(|r| r.ms).sum::<u64>()
    );
    assert_eq!(matrix.tests, vec![1, 2]);
    assert_eq!(matrix.changes, vec![1, 2]);
    let cells: Vec<(u32, Option<u32>, Cell)> = matrix
        .runs
        .iter()
        .map(|r| (r.test_of, r.on, r.result))
        .collect();
    assert_eq!(
        cells,
        vec![
            (1, None, Cell::Failed),
            (1, Some(1), Cell::Passed),
            (1, Some(2), Cell::Passed),
            (2, None, Cell::Failed),
            (2, Some(1), Cell::Failed),
            (2, Some(2), Cell::Passed),
        ]
    );

    // The agent was asked for a reproduction test first.
    let system = env.model.received_by(1)[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        system.contains("write a test that reproduces the problem"),
        "{system}"
    );
    env.assert_nothing_left(task).await;
}
