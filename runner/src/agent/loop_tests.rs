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
        budget: None,
        usage: Default::default(),
        model_time: Duration::ZERO,
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
        budget: None,
        usage: Default::default(),
        model_time: Duration::ZERO,
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
        usage: None,
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

/// A budget of `limit` tokens, as the bot's is: what was spent, against the limit.
#[derive(Debug)]
struct Limit {
    limit: u64,
    spent: std::sync::Mutex<u64>,
    checks: std::sync::Mutex<Vec<u64>>,
}

impl crate::usage::TokenBudget for Limit {
    fn check(&self, next: u64) -> Result<(), crate::usage::BudgetStop> {
        self.checks.lock().unwrap().push(next);
        let spent = *self.spent.lock().unwrap();
        if spent >= self.limit || spent + next > self.limit {
            return Err(crate::usage::BudgetStop(format!(
                "the task's token limit ({}) was reached",
                self.limit
            )));
        }
        Ok(())
    }

    fn spend(&self, usage: Option<crate::usage::TokenUsage>) {
        *self.spent.lock().unwrap() += usage.map_or(0, |u| u.total());
    }
}

async fn run_with_budget(
    model: &ScriptedModel,
    budget: Option<&dyn crate::usage::TokenBudget>,
) -> (AgentEnd, crate::usage::ModelUsage, usize) {
    let backend = MemoryBackend::new();
    let sandbox = backend.create_sandbox(&spec()).await.unwrap();
    let cancel = CancellationToken::new();
    let copy = ExecRequest::shell(crate::workspace::copy_script(), Duration::from_secs(5));
    assert!(sandbox.exec(copy, &cancel).await.unwrap().success());
    let (tx, _rx) = unbounded_channel();
    let mut ctx = RolloutCtx {
        sandbox: sandbox.as_ref(),
        index: 1,
        events: &tx,
        cancel: &cancel,
        command_timeout: Duration::from_secs(60),
        commands: Vec::new(),
        budget,
        usage: Default::default(),
        model_time: Duration::ZERO,
    };
    let end = run_builtin(&mut ctx, model, "Fix it.", SAMPLING, 20, far()).await;
    (end, ctx.usage, ctx.commands.len())
}

fn writes(model: &ScriptedModel, n: usize) {
    for i in 0..n {
        model.tool_call(
            "write_file",
            json!({"path": format!("f{i}.txt"), "content": "x\n"}),
        );
    }
}

#[tokio::test]
async fn a_token_limit_stops_the_loop_before_the_request_that_would_pass_it() {
    let model = ScriptedModel::new();
    model.with_usage(Some(crate::usage::TokenUsage {
        prompt: 1000,
        completion: 100,
    }));
    writes(&model, 5);
    model.finish("done", 0.9);
    let budget = Limit {
        limit: 2500,
        spent: Default::default(),
        checks: Default::default(),
    };
    let (end, usage, commands) = run_with_budget(&model, Some(&budget)).await;
    assert_eq!(
        end,
        AgentEnd::LimitReached {
            reason: "the task's token limit (2500) was reached; stopped before model request 3"
                .into()
        }
    );
    // Two requests answered (and their tools run), the third never sent.
    assert_eq!(model.requests().len(), 2);
    assert_eq!(commands, 2);
    assert_eq!(
        (
            usage.calls,
            usage.unmeasured,
            usage.prompt_tokens,
            usage.completion_tokens
        ),
        (2, 0, 2000, 200)
    );
    // Each check guessed the next request from the last one's size.
    assert_eq!(*budget.checks.lock().unwrap(), vec![0, 1100, 1100]);
    assert_eq!(*budget.spent.lock().unwrap(), 2200);
}

#[tokio::test]
async fn usage_is_summed_and_an_endpoint_without_usage_is_unknown() {
    let model = ScriptedModel::new();
    model.with_usage(Some(crate::usage::TokenUsage {
        prompt: 300,
        completion: 20,
    }));
    writes(&model, 1);
    model.with_usage(None);
    model.finish("done", 0.9);
    let (end, usage, _) = run_with_budget(&model, None).await;
    assert!(matches!(end, AgentEnd::Finished { .. }), "{end:?}");
    assert_eq!((usage.calls, usage.unmeasured, usage.total()), (2, 1, 320));
    assert_eq!(usage.tokens_words(), "at least 320 tokens");

    let silent = ScriptedModel::new();
    silent.finish("done", 0.9);
    let (_, usage, _) = run_with_budget(&silent, None).await;
    assert_eq!(usage.tokens_words(), "tokens unknown");
}
