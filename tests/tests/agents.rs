//! The external agent kind, the opted-in setup phase, and cancellation.

use std::sync::Arc;

use serde_json::json;
use threadsmith_bot::pipeline::{self, NoProgress};
use threadsmith_bot::store::TaskState;
use threadsmith_runner::{CommandKind, Outcome};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{Turn, env, request};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn an_external_agent_runs_in_the_sandbox_with_the_spec_file() {
    let env = env(|c| {
        c.sandbox.agent = Some("external".into());
        // A stand-in for an agent CLI: reads the spec, fixes add(), says what it did.
        c.sandbox.external_command = Some(
            "grep -q 'add test fails' {spec_file} && cd {workspace} && sed -i '1s/-/+/' calc.sh && echo 'patched calc.sh'"
                .into(),
        );
    })
    .await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let report = env.run(&repo, 1, "The add test fails").await;
    assert_eq!(report.task.error, None);
    let r = &report.rollouts[0];
    assert_eq!(r.outcome, Some(Outcome::Succeeded), "{r:?}");
    assert_eq!(r.network, None, "no network unless opted in");
    assert!(r.summary.as_deref().unwrap().contains("patched calc.sh"));
    assert!(
        env.model.received().is_empty(),
        "the built-in model is not used"
    );
    let commands = env.svc.store.commands(&report.task.id, 1).await.unwrap();
    assert_eq!(commands[0].kind, CommandKind::External);
    assert!(commands[0].command.contains("/tmp/threadsmith-spec.md"));
    env.assert_nothing_left(&report.task.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opted_in_setup_phase_has_network_and_the_agent_does_not() {
    let env = env(|c| {
        c.sandbox.setup =
            Some("cat /proc/net/dev > /tmp/setup-net; echo set up > .setup-done".into());
        c.sandbox.setup_network = Some(true);
    })
    .await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    env.model.script(
        1,
        vec![
            Turn::Call("run_command", json!({"command": "cat .setup-done; cat /tmp/setup-net; echo ---; cat /proc/net/dev"})),
            Turn::Call("give_up", json!({"reason": "only looking"})),
        ],
    );
    let report = env.run(&repo, 1, "look at the network").await;
    let r = &report.rollouts[0];
    assert_eq!(
        r.network.as_deref(),
        Some("the setup command had network access (opted in)")
    );
    let commands = env.svc.store.commands(&report.task.id, 1).await.unwrap();
    assert_eq!(commands[0].kind, CommandKind::Setup);
    assert_eq!(commands[0].exit_code, Some(0));
    let out = &commands[1].output;
    let (during_setup, during_agent) = out.split_once("---").unwrap();
    assert!(during_setup.contains("set up"));
    assert!(
        during_setup.contains("eth0"),
        "setup had a network interface: {out}"
    );
    assert!(!during_agent.contains("eth0"), "the agent has none: {out}");
    env.assert_nothing_left(&report.task.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_task_kills_and_removes_its_containers() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let never = Arc::new(Notify::new());
    for seed in 1..=2 {
        env.model.script(
            seed,
            vec![
                Turn::Call("run_command", json!({"command": "sleep 600"})),
                Turn::Gated(never.clone(), Box::new(Turn::Text("unreachable".into()))),
            ],
        );
    }
    let cancel = CancellationToken::new();
    let svc = env.svc.clone();
    let task = tokio::spawn({
        let cancel = cancel.clone();
        async move { pipeline::run_task(&svc, request(&repo, 2, "sleep"), &NoProgress, cancel).await }
    });
    // Both rollouts are inside their `sleep 600` once each has asked the model once.
    env.model.wait_for_requests(2).await;
    let task_id = env.svc.store.recent_tasks(1).await.unwrap()[0].id.clone();
    let running = env.docker.list_managed().await.unwrap();
    assert_eq!(
        running
            .iter()
            .filter(|c| c.task.as_deref() == Some(task_id.as_str()))
            .count(),
        2
    );
    cancel.cancel();
    let report = task.await.unwrap().unwrap();
    assert_eq!(report.task.state, TaskState::Cancelled);
    assert!(
        report
            .rollouts
            .iter()
            .all(|r| r.outcome == Some(Outcome::Cancelled))
    );
    env.assert_nothing_left(&task_id).await;
}
