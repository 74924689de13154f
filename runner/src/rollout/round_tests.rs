//! A follow-up round's start: the earlier change applied after the copy, before the agent.

use serde_json::json;
use tokio::sync::mpsc::unbounded_channel;

use super::*;
use crate::testing::{Answer, MemoryBackend, ScriptedModel, Step};
use crate::types::{CommandKind, RepoSettings};

const PATCH: &str = "diff --git a/src/answer.txt b/src/answer.txt\n--- a/src/answer.txt\n+++ b/src/answer.txt\n@@ -1 +1 @@\n-41\n+42\n";

fn plan() -> TaskPlan {
    TaskPlan {
        task_id: "task-1".into(),
        instructions: "Keep the answer.".into(),
        settings: RepoSettings::default(),
        seed_volume: "seed-1".into(),
        start_patch: Some(PATCH.into()),
        budget: None,
        environment: None,
    }
}

async fn run(backend: &MemoryBackend, model: &ScriptedModel) -> RolloutResult {
    let (tx, _rx) = unbounded_channel();
    let removals = Removals::default();
    let sampling = Sampling {
        temperature: 0.2,
        seed: 1,
    };
    let cancel = CancellationToken::new();
    let result = run_rollout(
        backend,
        Some(model as &dyn ChatModel),
        &plan(),
        1,
        sampling,
        &tx,
        &cancel,
        &removals,
    )
    .await;
    removals.settle("task-1").await;
    result
}

#[tokio::test]
async fn the_earlier_change_is_in_the_working_copy_before_the_agent_and_in_the_diff() {
    let backend = MemoryBackend::new()
        .with_file("src/answer.txt", "41\n")
        .on(|call, files| match call.step {
            Step::ApplyPatch if call.request.stdin.as_deref() == Some(PATCH.as_bytes()) => {
                files.insert("src/answer.txt".into(), b"42\n".to_vec());
                Some(Answer::ok(""))
            }
            _ => None,
        });
    let model = ScriptedModel::new();
    model
        .tool_call("read_file", json!({"path": "src/answer.txt"}))
        .finish("Kept the answer.", 0.7);
    let result = run(&backend, &model).await;
    let steps: Vec<Step> = backend.execs(1).into_iter().map(|e| e.step).collect();
    assert!(
        matches!(
            steps.as_slice(),
            [Step::Copy, Step::ApplyPatch, Step::ReadFile { .. }, ..]
        ),
        "{steps:?}"
    );
    assert_eq!(result.commands[0].kind, CommandKind::ApplyPatch);
    assert_eq!(
        result.commands[0].command,
        "apply the earlier round's change (6 lines)"
    );
    // The agent read the earlier change; the diff is the whole change against the base.
    let asked = format!("{:?}", model.requests());
    assert!(asked.contains("42"), "{asked}");
    assert!(result.diff.patch.contains("+42"), "{}", result.diff.patch);
}

#[tokio::test]
async fn a_start_that_does_not_apply_ends_the_rollout_before_the_agent_and_says_why() {
    let backend = MemoryBackend::new()
        .with_file("src/answer.txt", "40\n")
        .on(|call, _| match call.step {
            Step::ApplyPatch => Some(Answer::exit(1, "error: patch failed: src/answer.txt:1\n")),
            _ => None,
        });
    let model = ScriptedModel::new();
    let result = run(&backend, &model).await;
    assert_eq!(result.outcome, Outcome::Errored);
    assert!(
        result.detail.starts_with(
            "the earlier round's change did not apply to the working copy: error: patch failed"
        ),
        "{}",
        result.detail
    );
    assert!(model.requests().is_empty(), "the agent never started");
}
