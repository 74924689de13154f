//! Memory and the in-memory file systems of a sandbox: settings that could let files fill the
//! memory are refused, and a sandbox whose memory is full anyway ends its rollout at once with
//! the reason (not after minutes of a diff step thrashing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use threadsmith_bot::store::TaskState;
use threadsmith_runner::image::DEFAULT_IMAGE;
use threadsmith_runner::{Limits, Outcome, RepoSource, TaskPlan, sampling_for};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{Turn, env};
use tokio_util::sync::CancellationToken;

/// Writes more than the sandbox's memory into /workspace, then finishes.
fn fill_workspace(bytes: &str) -> Vec<Turn> {
    vec![
        Turn::Call(
            "run_command",
            json!({"command": format!("head -c {bytes} /dev/urandom > fill.bin; echo wrote")}),
        ),
        Turn::Call("finish", json!({"summary": "filled", "confidence": 0.1})),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_whose_memory_is_full_ends_its_rollout_at_once_with_the_reason() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let svc = &env.svc;
    let source = RepoSource::parse(&repo.display().to_string()).unwrap();
    let prepared = svc.repos.prepare(&source, None).await.unwrap();
    let task_id = format!("memfull{}", uuid::Uuid::new_v4().simple());
    let seed = env
        .runner
        .prepare_seed(
            &task_id,
            &svc.repos,
            &prepared,
            DEFAULT_IMAGE,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    // The settings the bot now refuses (a workspace larger than the memory), given to the runner
    // directly: the diff step must not thrash in a sandbox whose memory its files fill.
    let mut settings = threadsmith_bot::config::SandboxSection::default()
        .or(&svc.config.sandbox)
        .resolve(DEFAULT_IMAGE)
        .unwrap();
    settings.limits = Limits {
        memory_bytes: 256 << 20,
        workspace_bytes: 512 << 20,
        tmp_bytes: 64 << 20,
        ..settings.limits
    };
    assert!(threadsmith_runner::oom::check_memory_budget(&settings.limits).is_err());
    let plan = Arc::new(TaskPlan {
        task_id: task_id.clone(),
        instructions: "fill the workspace".into(),
        settings,
        seed_volume: seed,
        budget: None,
        start_patch: None,
        environment: None,
    });
    let sampling = sampling_for(1, &[0.5], 100);
    env.model.script(sampling.seed, fill_workspace("400M"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let started = Instant::now();
    let results = env
        .runner
        .run_rollouts(plan, vec![(1, sampling)], tx, CancellationToken::new())
        .await;
    let took = started.elapsed();
    drain.await.unwrap();
    let r = &results[0];
    eprintln!("ended in {took:?}: {:?} — {}", r.outcome, r.detail);
    assert_eq!(r.outcome, Outcome::Errored, "{}", r.detail);
    // Said for sure, from what Docker reports (not a guess from a killed command's status).
    assert!(
        r.detail.starts_with("the sandbox is out of memory")
            || r.detail
                .starts_with("the sandbox ran out of memory and stopped"),
        "{}",
        r.detail
    );
    assert!(
        took < Duration::from_secs(30),
        "the rollout ended in {took:?}, well under the 90 s the diff step used to thrash"
    );
    env.runner.release_task(&task_id).await;
    env.assert_nothing_left(&task_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_consistent_settings_a_full_workspace_is_a_full_disk() {
    // The harness's settings fit (workspace + tmp ≤ ¾ of memory): writing past the workspace
    // meets "No space left on device", and the rollout ends quickly with a reason.
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    env.model.script(1, fill_workspace("400M"));
    let started = Instant::now();
    let report = env.run(&repo, 1, "fill the workspace").await;
    let took = started.elapsed();
    assert_eq!(
        report.task.state,
        TaskState::Done,
        "{:?}",
        report.task.error
    );
    let r = &report.rollouts[0];
    eprintln!("ended in {took:?}: {:?} — {:?}", r.outcome, r.detail);
    let commands = env.svc.store.commands(&report.task.id, 1).await.unwrap();
    assert!(
        commands[0].output.contains("No space left on device"),
        "{:?}",
        commands[0].output
    );
    // The file cannot be part of a diff: the step says so at once instead of compressing it.
    assert_eq!(r.outcome, Some(Outcome::Errored));
    let detail = r.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("larger than 20 MB") && detail.contains("fill.bin"),
        "{detail}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    env.assert_nothing_left(&report.task.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_whose_sandbox_settings_do_not_fit_is_refused_before_any_container() {
    let env = env(|c| {
        c.sandbox.memory = Some("256m".into());
        c.sandbox.workspace_size = Some("512m".into());
    })
    .await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let report = env.run(&repo, 1, "fix it").await;
    assert_eq!(report.task.state, TaskState::Failed);
    let error = report.task.error.unwrap_or_default();
    assert!(
        error.contains("more than three quarters of sandbox.memory"),
        "{error}"
    );
    assert!(report.rollouts.is_empty());
}
