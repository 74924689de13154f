//! The built-in agent loop against a scripted model and an in-memory sandbox.

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::agent::model::Reply;
use crate::context::RolloutCtx;
use crate::sandbox::{Limits, Sandbox, SandboxBackend, SandboxSpec};
use crate::testing::{Answer, MemoryBackend, ModelTurn, ScriptedModel, Step};
use crate::types::{Phase, RolloutEvent};

const SAMPLING: Sampling = Sampling {
    temperature: 0.5,
    seed: 7,
};

fn spec() -> SandboxSpec {
    SandboxSpec {
        image: "img".into(),
        limits: Limits::default(),
        task_id: "t1".into(),
        rollout: 1,
        seed_volume: Some("seed".into()),
        start_with_network: false,
        lifetime: std::time::Duration::from_secs(3600),
    }
}

/// Runs the loop in a fresh sandbox of `backend` (its workspace copied in) until it ends.
async fn run(
    backend: &MemoryBackend,
    model: &ScriptedModel,
    max_steps: u32,
    deadline: Instant,
    cancel: &CancellationToken,
) -> (
    AgentEnd,
    Vec<crate::types::CommandRecord>,
    UnboundedReceiver<RolloutEvent>,
) {
    let sandbox: Box<dyn Sandbox> = backend.create_sandbox(&spec()).await.unwrap();
    let copy = ExecRequest::shell(crate::workspace::copy_script(), Duration::from_secs(5));
    assert!(sandbox.exec(copy, cancel).await.unwrap().success());
    let (tx, rx) = unbounded_channel();
    let mut ctx = RolloutCtx {
        sandbox: sandbox.as_ref(),
        index: 1,
        events: &tx,
        cancel,
        command_timeout: Duration::from_secs(60),
        commands: Vec::new(),
    };
    let end = run_builtin(
        &mut ctx,
        model,
        "Fix the answer.",
        SAMPLING,
        max_steps,
        deadline,
    )
    .await;
    (end, ctx.commands, rx)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fn last_tool_result(model: &ScriptedModel, request: usize) -> String {
    match model.requests()[request].messages.last() {
        Some(Message::Tool { content, .. }) => content.clone(),
        other => panic!("the last message is not a tool result: {other:?}"),
    }
}

#[tokio::test]
async fn finishing_ends_with_the_summary_and_confidence_after_the_tools_ran() {
    let backend = MemoryBackend::new().with_file("src/answer.txt", "41\n");
    let model = ScriptedModel::new();
    model
        .tool_call("read_file", json!({"path": "src/answer.txt"}))
        .tool_call(
            "write_file",
            json!({"path": "src/answer.txt", "content": "42\n"}),
        )
        .finish("Set the answer to **42**.", 0.8);
    let (end, commands, mut events) =
        run(&backend, &model, 10, far(), &CancellationToken::new()).await;
    assert_eq!(
        end,
        AgentEnd::Finished {
            summary: "Set the answer to **42**.".into(),
            confidence: Some(0.8)
        }
    );
    let kinds: Vec<_> = commands.iter().map(|c| (c.seq, c.kind)).collect();
    assert_eq!(
        kinds,
        [(1, CommandKind::ReadFile), (2, CommandKind::WriteFile)]
    );
    assert_eq!(commands[1].command, "write_file src/answer.txt (3 bytes)");
    assert_eq!(backend.files(1).unwrap()["src/answer.txt"], b"42\n");

    // The model saw the system prompt and the task, then each tool's result.
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        matches!(&requests[0].messages[..], [Message::System { .. }, Message::User { content }] if content == "Fix the answer.")
    );
    assert_eq!(requests[0].sampling, SAMPLING);
    assert!(
        last_tool_result(&model, 1).ends_with("]\n41\n"),
        "{}",
        last_tool_result(&model, 1)
    );
    assert!(last_tool_result(&model, 2).ends_with("]\nwritten"));
    assert_eq!(model.remaining(), 0);

    let mut phases = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let RolloutEvent::Phase { phase, .. } = e {
            phases.push(phase);
        }
    }
    assert_eq!(
        phases,
        [1, 2, 3].map(|step| Phase::Agent { step }),
        "one phase per step"
    );
}

#[tokio::test]
async fn giving_up_ends_with_the_reason() {
    let backend = MemoryBackend::new();
    let model = ScriptedModel::new();
    model.give_up("the task needs network access");
    let (end, commands, _) = run(&backend, &model, 10, far(), &CancellationToken::new()).await;
    assert_eq!(
        end,
        AgentEnd::GaveUp {
            reason: "the task needs network access".into()
        }
    );
    assert!(commands.is_empty());
}

#[tokio::test]
async fn the_step_limit_ends_the_loop() {
    let backend = MemoryBackend::new().on_script("ls", Answer::ok("README.md\n"));
    let model = ScriptedModel::new();
    for _ in 0..3 {
        model.tool_call("run_command", json!({"command": "ls"}));
    }
    let (end, commands, _) = run(&backend, &model, 2, far(), &CancellationToken::new()).await;
    assert_eq!(
        end,
        AgentEnd::TimedOut {
            reason: "the agent took 2 steps without finishing".into()
        }
    );
    assert_eq!(commands.len(), 2);
    assert_eq!(model.requests().len(), 2);
    assert_eq!(model.remaining(), 1, "no third request");
}

#[tokio::test(start_paused = true)]
async fn the_rollout_deadline_ends_a_wait_for_the_model() {
    let backend = MemoryBackend::new();
    let model = ScriptedModel::new();
    model.hang();
    let deadline = Instant::now() + Duration::from_secs(600);
    let (end, _, _) = run(&backend, &model, 10, deadline, &CancellationToken::new()).await;
    assert_eq!(
        end,
        AgentEnd::TimedOut {
            reason: "the rollout's time limit was reached while waiting for the model".into()
        }
    );
    assert!(Instant::now() >= deadline);
}

#[tokio::test]
async fn cancellation_ends_a_wait_for_the_model() {
    let backend = MemoryBackend::new();
    let model = ScriptedModel::new();
    model.hang();
    let cancel = CancellationToken::new();
    let sandbox = backend.create_sandbox(&spec()).await.unwrap();
    let (tx, _rx) = unbounded_channel();
    let mut ctx = RolloutCtx {
        sandbox: sandbox.as_ref(),
        index: 1,
        events: &tx,
        cancel: &cancel,
        command_timeout: Duration::from_secs(60),
        commands: Vec::new(),
    };
    let agent = run_builtin(&mut ctx, &model, "x", SAMPLING, 10, far());
    tokio::pin!(agent);
    // The loop is waiting for the model once the model has its request.
    tokio::select! {
        _ = &mut agent => panic!("the loop ended before it was cancelled"),
        _ = model.wait_for_requests(1) => {}
    }
    cancel.cancel();
    assert_eq!(agent.await, AgentEnd::Cancelled);
}

#[tokio::test]
async fn cancellation_ends_a_running_command() {
    let cancel = CancellationToken::new();
    let fire = cancel.clone();
    // The command hangs, and the task is cancelled while it runs.
    let backend = MemoryBackend::new().on(move |call, _| match &call.step {
        Step::Shell(s) if s == "sleep 600" => {
            fire.cancel();
            Some(Answer::hang())
        }
        _ => None,
    });
    let model = ScriptedModel::new();
    model.tool_call("run_command", json!({"command": "sleep 600"}));
    let (end, commands, _) = run(&backend, &model, 10, far(), &cancel).await;
    assert_eq!(end, AgentEnd::Cancelled);
    assert!(commands.is_empty(), "a cancelled command has no record");
    assert_eq!(model.remaining(), 0);
}

#[tokio::test]
async fn a_malformed_tool_call_is_answered_and_the_loop_goes_on() {
    let backend = MemoryBackend::new();
    let model = ScriptedModel::new();
    model
        .raw_tool_call("write_file", "{\"path\": \"a.txt\"")
        .raw_tool_call("rm_rf", "{}")
        .finish("done", 0.5);
    let (end, commands, _) = run(&backend, &model, 10, far(), &CancellationToken::new()).await;
    assert!(matches!(end, AgentEnd::Finished { .. }), "{end:?}");
    assert!(commands.is_empty());
    let first = last_tool_result(&model, 1);
    assert!(
        first.starts_with("error: the arguments of `write_file` are not valid"),
        "{first}"
    );
    assert!(last_tool_result(&model, 2).starts_with("error: "));
    assert!(backend.files(1).unwrap().is_empty(), "nothing was written");
}

#[tokio::test]
async fn a_model_error_ends_the_loop() {
    let backend = MemoryBackend::new();
    let model = ScriptedModel::new();
    model.fail(model::ModelError::Server {
        status: 502,
        body: "bad gateway".into(),
    });
    let (end, _, _) = run(&backend, &model, 10, far(), &CancellationToken::new()).await;
    assert_eq!(
        end,
        AgentEnd::Errored {
            reason: "the model failed: the model endpoint failed (HTTP 502): bad gateway".into()
        }
    );
}

#[tokio::test]
async fn a_reply_without_tool_calls_is_nudged_then_given_up_on() {
    let backend = MemoryBackend::new();
    let model = ScriptedModel::new();
    for _ in 0..4 {
        model.text("I think the answer is 42.");
    }
    let (end, _, _) = run(&backend, &model, 10, far(), &CancellationToken::new()).await;
    assert_eq!(
        end,
        AgentEnd::GaveUp {
            reason: "the model stopped calling tools without finishing".into()
        }
    );
    let nudged = model.requests()[1].messages.last().cloned();
    assert!(
        matches!(nudged, Some(Message::User { content }) if content.starts_with("Continue by calling a tool"))
    );
}

#[tokio::test]
async fn an_answer_with_neither_text_nor_tool_calls_goes_back_with_empty_text() {
    // Chat Completions refuses an assistant message whose content is null without tool calls.
    let backend = MemoryBackend::new();
    let model = ScriptedModel::new();
    model.push(ModelTurn::Reply(Reply {
        content: None,
        tool_calls: Vec::new(),
    }));
    model.give_up("nothing to do");
    let (end, _, _) = run(&backend, &model, 10, far(), &CancellationToken::new()).await;
    assert_eq!(
        end,
        AgentEnd::GaveUp {
            reason: "nothing to do".into()
        }
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let wire = serde_json::to_value(&requests[1].messages).unwrap();
    let assistant: Vec<_> = wire
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    assert_eq!(assistant.len(), 1, "{wire}");
    assert_eq!(assistant[0]["content"], "", "{wire}");
}
