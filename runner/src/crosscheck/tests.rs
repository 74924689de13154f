use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::run::{APPLY_TESTS_SCRIPT, PREPARE_SCRIPT, SANDBOX_NUMBER};
use super::*;
use crate::removals::Removals;
use crate::testing::{Answer, BackendCall, MemoryBackend, Step};
use crate::types::{RepoSettings, TaskPlan};

const TEST: &str = "run-the-tests";

fn plan(test: Option<&str>) -> TaskPlan {
    TaskPlan {
        task_id: "task-1".into(),
        instructions: String::new(),
        settings: RepoSettings {
            test: test.map(str::to_string),
            command_timeout: Duration::from_secs(5),
            ..RepoSettings::default()
        },
        seed_volume: "seed-1".into(),
        budget: None,
        environment: None,
        start_patch: None,
    }
}

fn candidate(index: u32, patch: &str, tests: &[&str]) -> Candidate {
    Candidate {
        index,
        patch: patch.into(),
        test_files: tests.iter().map(|t| t.to_string()).collect(),
    }
}

/// A sandbox that remembers the change it committed and the tests it was given (as files the
/// handler keeps), and answers the test command from `truth`: (change, tester's patch) → exit.
fn backend(truth: HashMap<(&'static str, &'static str), i64>) -> MemoryBackend {
    let truth = Arc::new(truth);
    MemoryBackend::new()
        .with_file("calc.py", "def add(a, b): return a - b\n")
        .on(move |call, files| {
            let Step::Shell(script) = &call.step else {
                return None;
            };
            let stdin = || {
                String::from_utf8_lossy(call.request.stdin.as_deref().unwrap_or_default())
                    .into_owned()
            };
            if script == PREPARE_SCRIPT {
                files.insert(".change".into(), stdin().into_bytes());
                return Some(Answer::ok(""));
            }
            if script == APPLY_TESTS_SCRIPT {
                if stdin().contains("does-not-apply") {
                    return Some(Answer::exit(1, "error: patch failed: tests/test_x.py:1\n"));
                }
                files.insert(".tests".into(), stdin().into_bytes());
                return Some(Answer::ok(""));
            }
            if script == TEST {
                if files.get(".tests").is_some_and(|t| t == b"hangs") {
                    return Some(Answer::hang());
                }
                let change = String::from_utf8_lossy(files.get(".change")?).into_owned();
                let tests = String::from_utf8_lossy(files.get(".tests")?).into_owned();
                let code = truth
                    .iter()
                    .find(|((c, t), _)| *c == change && *t == tests)
                    .map_or(1, |(_, code)| *code);
                return Some(Answer::exit(code, ""));
            }
            None
        })
}

async fn check(backend: &MemoryBackend, plan: &TaskPlan, candidates: &[Candidate]) -> Matrix {
    let removals = Removals::default();
    let bounds = Bounds {
        slots: 2,
        test_limit: Duration::from_secs(2),
    };
    let matrix = cross_check(
        backend,
        &removals,
        plan,
        candidates,
        bounds,
        &CancellationToken::new(),
    )
    .await;
    removals.settle(&plan.task_id).await;
    matrix
}

fn sandboxes(backend: &MemoryBackend) -> Vec<u32> {
    let mut numbers: Vec<u32> = backend
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            BackendCall::CreateSandbox(spec) => {
                assert!(!spec.start_with_network, "no network for the checks");
                Some(spec.rollout)
            }
            _ => None,
        })
        .collect();
    numbers.sort();
    numbers
}

#[tokio::test]
async fn each_test_runs_on_the_base_and_every_change_and_counts_only_if_it_fails_on_the_base() {
    // Rollout 1's test is weak: every change passes it. Rollout 2's test catches what 1 and
    // 3 miss. Rollout 3 wrote no test. Rollout 4's test passes on the base: it reproduces nothing.
    let backend = backend(HashMap::from([
        (("P1", "P1"), 0),
        (("P2", "P1"), 0),
        (("P3", "P1"), 0),
        (("P4", "P1"), 0),
        (("P2", "P2"), 0),
        (("", "P4"), 0),
        (("P4", "P4"), 0),
        (("P2", "P4"), 0),
    ]));
    let candidates = [
        candidate(1, "P1", &["tests/test_a.py"]),
        candidate(2, "P2", &["tests/test_b.py"]),
        candidate(3, "P3", &[]),
        candidate(4, "P4", &["tests/test_d.py"]),
        candidate(5, "", &[]),
    ];
    let matrix = check(&backend, &plan(Some(TEST)), &candidates).await;
    assert_eq!(matrix.skipped, None);
    assert_eq!(matrix.tests, vec![1, 2, 4]);
    assert_eq!(matrix.changes, vec![1, 2, 3, 4], "rollout 5 has no change");
    assert_eq!(
        matrix.runs.len(),
        3 * 5,
        "three tests on the base and four changes"
    );
    assert!(matrix.notes.is_empty(), "{:?}", matrix.notes);
    assert_eq!(matrix.valid_tests(), vec![1, 2]);
    assert_eq!(
        sandboxes(&backend),
        (0..=4).map(|j| SANDBOX_NUMBER + j).collect::<Vec<_>>(),
        "one fresh sandbox per change, the base's included"
    );

    let evidence = |k| matrix.reproduction(k).unwrap();
    assert_eq!(evidence(2).passed_from, vec![1, 2]);
    assert_eq!(evidence(2).own, OwnTest::Reproduces);
    assert_eq!(evidence(1).passed_from, vec![1]);
    assert_eq!(evidence(3).passed_from, vec![1]);
    assert_eq!(evidence(3).own, OwnTest::None);
    assert_eq!(evidence(4).own, OwnTest::PassesOnBase);
    assert_eq!(
        evidence(4).passed_from,
        vec![1],
        "its own test counts for nothing"
    );
    assert_eq!(evidence(5).passed_from, Vec::<u32>::new());
    assert!(evidence(1).valid == 2 && evidence(5).valid == 2);

    // Each test was put in place (its files as arguments, its patch on stdin) before each run.
    let base = backend.execs(SANDBOX_NUMBER);
    let applied: Vec<Vec<String>> = base
        .iter()
        .filter(|c| c.step == Step::Shell(APPLY_TESTS_SCRIPT.into()))
        .map(|c| c.request.argv[4..].to_vec())
        .collect();
    assert_eq!(
        applied,
        vec![
            vec!["tests/test_a.py".to_string()],
            vec!["tests/test_b.py".to_string()],
            vec!["tests/test_d.py".to_string()]
        ]
    );
    assert_eq!(base[0].step, Step::Copy);
}

#[tokio::test]
async fn skipped_and_said_so_without_a_test_command_or_a_test_file() {
    let backend = backend(HashMap::new());
    let with_tests = [candidate(1, "P1", &["tests/test_a.py"])];
    let matrix = check(&backend, &plan(None), &with_tests).await;
    assert_eq!(
        matrix.summary_line(),
        "Reproduction tests were not cross-checked: the repository has no test command."
    );
    assert_eq!(matrix.reproduction(1), None);
    let matrix = check(&backend, &plan(Some(TEST)), &[candidate(1, "P1", &[])]).await;
    assert_eq!(
        matrix.skipped.as_deref(),
        Some("no rollout wrote a test file")
    );
    assert!(
        sandboxes(&backend).is_empty(),
        "no sandbox for nothing to check"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_test_or_one_that_does_not_apply_is_not_run_and_bounded() {
    let backend = backend(HashMap::from([(("P1", "P1"), 0)]));
    let candidates = [
        candidate(1, "P1", &["tests/test_a.py"]),
        candidate(2, "hangs", &["tests/test_h.py"]),
        candidate(3, "does-not-apply", &["tests/test_x.py"]),
    ];
    let matrix = check(&backend, &plan(Some(TEST)), &candidates).await;
    assert_eq!(matrix.cell(1, None), Some(Cell::Failed));
    assert_eq!(matrix.cell(1, Some(1)), Some(Cell::Passed));
    assert_eq!(matrix.cell(2, None), Some(Cell::NotRun), "timed out");
    assert_eq!(matrix.cell(3, Some(1)), Some(Cell::NotRun), "did not apply");
    assert_eq!(matrix.reproduction(2).unwrap().own, OwnTest::NotRun);
    assert_eq!(matrix.runs.len(), 3 * 4);
    assert!(
        matrix.notes.iter().any(|n| n.starts_with(
            "rollout 3's test files on the base commit: the test files did not apply"
        )),
        "{:?}",
        matrix.notes
    );
    // Every command ran under the command's time limit, the tests under the shorter one.
    for call in backend.calls() {
        if let BackendCall::Exec(e) = call {
            let limit = if e.step == Step::Shell(TEST.into()) {
                2
            } else {
                5
            };
            assert_eq!(
                e.request.timeout,
                Duration::from_secs(limit),
                "{:?}",
                e.step
            );
        }
    }
}

#[tokio::test]
async fn a_cancelled_task_runs_nothing_more() {
    let backend = backend(HashMap::new());
    let cancel = CancellationToken::new();
    cancel.cancel();
    let removals = Removals::default();
    let candidates = [
        candidate(1, "P1", &["tests/test_a.py"]),
        candidate(2, "P2", &["tests/test_b.py"]),
    ];
    let matrix = cross_check(
        &backend,
        &removals,
        &plan(Some(TEST)),
        &candidates,
        Bounds {
            slots: 2,
            test_limit: Duration::from_secs(2),
        },
        &cancel,
    )
    .await;
    assert!(matrix.runs.iter().all(|r| r.result == Cell::NotRun));
    assert_eq!(matrix.runs.len(), 2 * 3);
    assert_eq!(matrix.notes, vec!["the task was cancelled".to_string()]);
    assert!(sandboxes(&backend).is_empty());
}

#[test]
fn the_plan_is_at_most_n_by_n_plus_one() {
    let candidates: Vec<Candidate> = (1..=4)
        .map(|k| candidate(k, "P", &["t/x_test.go"]))
        .collect();
    let planned = planned_runs(&candidates);
    assert_eq!(planned.len(), 5);
    assert_eq!(planned.iter().map(|(_, t)| t.len()).sum::<usize>(), 4 * 5);
    assert_eq!(planned[0].0, None, "the base first");
}

#[test]
fn the_matrix_is_stored_and_read_back_the_same() {
    let matrix = Matrix {
        skipped: None,
        tests: vec![1],
        changes: vec![1],
        runs: vec![
            Run {
                test_of: 1,
                on: None,
                result: Cell::Failed,
                ms: 3,
            },
            Run {
                test_of: 1,
                on: Some(1),
                result: Cell::Passed,
                ms: 4,
            },
        ],
        notes: vec![],
    };
    let text = serde_json::to_string(&matrix).unwrap();
    assert!(text.contains(r#""on":null,"result":"failed""#), "{text}");
    let back: Matrix = serde_json::from_str(&text).unwrap();
    assert_eq!(back, matrix);
    assert_eq!(back.reproduction(1).unwrap().own, OwnTest::Reproduces);
}

#[test]
fn a_test_runs_limit_follows_the_rollouts_own_test_runs_within_bounds() {
    let limit = Duration::from_secs(600);
    let secs = |s: &[u64]| {
        s.iter()
            .map(|s| Duration::from_secs(*s))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        test_limit(limit, secs(&[10, 40]).into_iter()),
        Duration::from_secs(120)
    );
    assert_eq!(test_limit(limit, secs(&[1]).into_iter()), MIN_TEST_LIMIT);
    assert_eq!(test_limit(limit, secs(&[500]).into_iter()), limit);
    assert_eq!(
        test_limit(limit, std::iter::empty()),
        limit,
        "no test run to go by"
    );
}
