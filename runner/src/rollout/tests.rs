//! One rollout end to end against an in-memory sandbox and a scripted model.

use serde_json::json;
use tokio::sync::mpsc::unbounded_channel;

use super::*;
use crate::testing::{Answer, BackendCall, MemoryBackend, ScriptedModel, Step};
use crate::types::{CommandKind, FileChange, RepoSettings};

const SAMPLING: Sampling = Sampling {
    temperature: 0.2,
    seed: 3,
};

fn plan(settings: RepoSettings) -> TaskPlan {
    TaskPlan {
        task_id: "task-1".into(),
        instructions: "Make the answer 42.".into(),
        settings,
        seed_volume: "seed-1".into(),
        budget: None,
        start_patch: None,
        environment: None,
    }
}

fn tested() -> RepoSettings {
    RepoSettings {
        test: Some("cargo test".into()),
        ..RepoSettings::default()
    }
}

/// A model that fixes the answer, then finishes.
fn fixing_model() -> ScriptedModel {
    let model = ScriptedModel::new();
    model
        .tool_call(
            "write_file",
            json!({"path": "src/answer.txt", "content": "42\n"}),
        )
        .finish("The answer is now 42.", 0.9);
    model
}

fn repo() -> MemoryBackend {
    MemoryBackend::new()
        .with_file("src/answer.txt", "41\n")
        .with_file("README.md", "# answers\n")
}

struct Run {
    result: RolloutResult,
    events: Vec<RolloutEvent>,
}

async fn run(backend: &MemoryBackend, model: Option<&ScriptedModel>, plan: &TaskPlan) -> Run {
    run_cancellable(backend, model, plan, &CancellationToken::new()).await
}

async fn run_cancellable(
    backend: &MemoryBackend,
    model: Option<&ScriptedModel>,
    plan: &TaskPlan,
    cancel: &CancellationToken,
) -> Run {
    let (tx, mut rx) = unbounded_channel();
    let model = model.map(|m| m as &dyn ChatModel);
    let removals = Removals::default();
    let result = run_rollout(backend, model, plan, 2, SAMPLING, &tx, cancel, &removals).await;
    removals.settle(&plan.task_id).await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    Run { result, events }
}

fn phases(events: &[RolloutEvent]) -> Vec<Phase> {
    events
        .iter()
        .filter_map(|e| match e {
            RolloutEvent::Phase { index: 2, phase } => Some(*phase),
            _ => None,
        })
        .collect()
}

fn steps(backend: &MemoryBackend) -> Vec<Step> {
    backend.execs(2).into_iter().map(|e| e.step).collect()
}

#[tokio::test]
async fn a_fix_that_passes_the_tests_succeeds_with_its_diff_and_commands() {
    let backend = repo().on_script("cargo test", Answer::ok("test result: ok. 3 passed\n"));
    let model = fixing_model();
    let Run { result, events } = run(&backend, Some(&model), &plan(tested())).await;

    assert_eq!(result.outcome, Outcome::Succeeded, "{}", result.detail);
    assert_eq!(result.detail, "the tests pass");
    assert_eq!(result.summary.as_deref(), Some("The answer is now 42."));
    assert_eq!(result.confidence, Some(0.9));
    assert_eq!(result.sampling, Some(SAMPLING));
    assert_eq!(result.network, None);
    assert_eq!(
        result.diff.files,
        [FileChange {
            path: "src/answer.txt".into(),
            old_path: None,
            added: Some(1),
            removed: Some(1),
        }]
    );
    assert!(
        result.diff.patch.contains("-41\n+42\n"),
        "{}",
        result.diff.patch
    );
    let test = result.test.as_ref().unwrap();
    assert!(test.passed);
    assert_eq!(test.output, "test result: ok. 3 passed\n");
    let commands: Vec<_> = result
        .commands
        .iter()
        .map(|c| (c.seq, c.kind, c.command.as_str()))
        .collect();
    assert_eq!(
        commands,
        [
            (
                1,
                CommandKind::WriteFile,
                "write_file src/answer.txt (3 bytes)"
            ),
            (2, CommandKind::Test, "cargo test"),
        ]
    );

    assert_eq!(
        phases(&events),
        [
            Phase::Starting,
            Phase::Agent { step: 0 },
            Phase::Agent { step: 1 },
            Phase::Agent { step: 2 },
            Phase::CollectingDiff,
            Phase::Testing,
        ]
    );
    // Each command is reported as it ends, the result once, last.
    let reported: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            RolloutEvent::Command { record, .. } => Some(record.seq),
            _ => None,
        })
        .collect();
    assert_eq!(reported, [1, 2]);
    assert!(matches!(
        events.last(),
        Some(RolloutEvent::Finished { result: r })
            if r.outcome == result.outcome && r.commands == result.commands && r.diff == result.diff
    ));

    // The sandbox: made from the task's seed without network, used, removed.
    let calls = backend.calls();
    let Some(BackendCall::CreateSandbox(spec)) = calls.first() else {
        panic!("the sandbox is made first: {calls:?}");
    };
    assert_eq!(
        (
            spec.task_id.as_str(),
            spec.rollout,
            spec.seed_volume.as_deref(),
            spec.start_with_network
        ),
        ("task-1", 2, Some("seed-1"), false)
    );
    assert!(matches!(
        calls.last(),
        Some(BackendCall::Remove { rollout: 2 })
    ));
    assert_eq!(
        steps(&backend),
        [
            Step::Copy,
            Step::WriteFile {
                path: "src/answer.txt".into()
            },
            Step::Diff,
            Step::Shell("cargo test".into()),
        ]
    );
}

#[tokio::test]
async fn failing_tests_are_the_outcome() {
    let backend = repo().on_script("cargo test", Answer::exit(101, "test answer ... FAILED\n"));
    let Run { result, .. } = run(&backend, Some(&fixing_model()), &plan(tested())).await;
    assert_eq!(result.outcome, Outcome::TestsFailed);
    assert_eq!(result.detail, "the tests failed (exit code 101)");
    let test = result.test.unwrap();
    assert_eq!((test.passed, test.exit_code), (false, Some(101)));
    assert_eq!(result.diff.files.len(), 1, "the change is kept");
}

#[tokio::test]
async fn finishing_without_a_change_is_giving_up() {
    let model = ScriptedModel::new();
    model.finish("Nothing to do.", 0.3);
    let backend = repo();
    let Run { result, .. } = run(&backend, Some(&model), &plan(tested())).await;
    assert_eq!(result.outcome, Outcome::GaveUp);
    assert_eq!(
        result.detail,
        "the agent finished without changing any file"
    );
    assert!(result.diff.is_empty());
    assert!(result.test.is_none(), "no tests for no change");
    assert_eq!(steps(&backend), [Step::Copy, Step::Diff]);
}

#[tokio::test]
async fn a_setup_with_network_is_cut_off_before_the_agent_and_said() {
    let settings = RepoSettings {
        setup: Some("make deps".into()),
        setup_network: true,
        ..RepoSettings::default()
    };
    let backend = repo();
    let Run { result, events } = run(&backend, Some(&fixing_model()), &plan(settings)).await;
    assert_eq!(result.outcome, Outcome::Untested);
    assert_eq!(
        result.network.as_deref(),
        Some("the setup command had network access (opted in)")
    );
    assert_eq!(result.commands[0].kind, CommandKind::Setup);
    assert_eq!(
        phases(&events)[..3],
        [Phase::Starting, Phase::Setup, Phase::Agent { step: 0 }]
    );
    let calls = backend.calls();
    assert!(matches!(&calls[0], BackendCall::CreateSandbox(spec) if spec.start_with_network));
    let cut = calls
        .iter()
        .position(|c| matches!(c, BackendCall::CutNetwork { rollout: 2 }))
        .unwrap();
    let setup = calls
        .iter()
        .position(
            |c| matches!(c, BackendCall::Exec(e) if e.step == Step::Shell("make deps".into())),
        )
        .unwrap();
    let write = calls
        .iter()
        .position(|c| matches!(c, BackendCall::Exec(e) if matches!(e.step, Step::WriteFile { .. })))
        .unwrap();
    assert!(setup < cut && cut < write, "{calls:?}");
}

#[tokio::test]
async fn a_sandbox_that_cannot_be_made_is_an_errored_result() {
    let backend = repo().failing_creation("no room left");
    let model = fixing_model();
    let Run { result, events } = run(&backend, Some(&model), &plan(tested())).await;
    assert_eq!(result.outcome, Outcome::Errored);
    assert_eq!(
        result.detail,
        "could not start the sandbox: the memory sandbox backend failed while creating the sandbox: no room left"
    );
    assert!(result.commands.is_empty());
    assert_eq!(phases(&events), [Phase::Starting]);
    assert!(matches!(events.last(), Some(RolloutEvent::Finished { .. })));
    assert!(
        model.requests().is_empty(),
        "no model call without a sandbox"
    );
    assert!(steps(&backend).is_empty());
}

#[tokio::test]
async fn a_cancelled_rollout_removes_its_sandbox() {
    let cancel = CancellationToken::new();
    let fire = cancel.clone();
    let backend = repo().on(move |call, _| match &call.step {
        Step::WriteFile { .. } => {
            fire.cancel();
            Some(Answer::hang())
        }
        _ => None,
    });
    let Run { result, .. } =
        run_cancellable(&backend, Some(&fixing_model()), &plan(tested()), &cancel).await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert_eq!(result.detail, "the task was cancelled");
    assert!(matches!(
        backend.calls().last(),
        Some(BackendCall::Remove { rollout: 2 })
    ));
    assert_eq!(
        steps(&backend).len(),
        2,
        "nothing runs after the cancellation"
    );
}

#[tokio::test]
async fn without_a_model_the_builtin_agent_errs() {
    let backend = repo();
    let Run { result, .. } = run(&backend, None, &plan(tested())).await;
    assert_eq!(result.outcome, Outcome::Errored);
    assert!(
        result.detail.starts_with("no model endpoint is configured"),
        "{}",
        result.detail
    );
}

#[tokio::test]
async fn the_changes_test_files_are_recorded_by_convention_or_by_the_repositorys_globs() {
    let model = || {
        let model = ScriptedModel::new();
        model
            .tool_call(
                "write_file",
                json!({"path": "tests/test_answer.py", "content": "assert answer() == 42\n"}),
            )
            .tool_call(
                "write_file",
                json!({"path": "checks/answer.sh", "content": "grep -q 42 src/answer.txt\n"}),
            )
            .tool_call(
                "write_file",
                json!({"path": "src/answer.txt", "content": "42\n"}),
            )
            .finish("Fixed, with a test.", 0.9);
        model
    };
    let backend = repo().on_script("cargo test", Answer::ok(""));
    let Run { result, .. } = run(&backend, Some(&model()), &plan(tested())).await;
    assert_eq!(result.diff.files.len(), 3);
    assert_eq!(
        result.diff.test_files,
        vec!["tests/test_answer.py".to_string()]
    );

    let settings = RepoSettings {
        test_paths: Some(vec!["checks/*.sh".into()]),
        ..tested()
    };
    let backend = repo().on_script("cargo test", Answer::ok(""));
    let Run { result, .. } = run(&backend, Some(&model()), &plan(settings)).await;
    assert_eq!(result.diff.test_files, vec!["checks/answer.sh".to_string()]);
}
