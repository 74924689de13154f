//! Hostile and broken input end to end: a thread of 10,000 messages with a 1 MB one, delivered
//! 4 times, while the model answers the spec request with invalid JSON; a repository of 2 GB;
//! an agent that writes 100,000 files. Each ends with a clear outcome and the bot keeps serving.

use std::time::{Duration, Instant};

use serde_json::json;
use threadsmith_bot::serve;
use threadsmith_bot::store::TaskState;
use threadsmith_runner::Outcome;
use threadsmith_runner::secret::Secret;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::gitrepo::{calc_repo, repo_with};
use threadsmith_tests::{Turn, env};
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "C900";
const ALICE: &str = "U100";
const BOB: &str = "U200";

#[tokio::test(flavor = "multi_thread")]
async fn a_10000_message_thread_with_a_1mb_message_and_a_garbage_spec_still_runs_once() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = slack.api_base();
    let repo_s = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.signing_secret = Some(Secret::new("signing-secret"));
        c.default_repo = Some(repo_s);
        c.attempts = Some(1);
    })
    .await;
    // The spec request gets invalid JSON every time (the first try and both retries).
    env.model.script(
        0,
        vec![Turn::Garbage("{\"choices\": [{\"message\": {\"content\": nul".into()); 3],
    );
    let shutdown = CancellationToken::new();
    let _running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;

    // The thread: a 1 MB message first, 9,998 replies, then the request: 10,000 messages.
    let huge = format!(
        "add() is broken, here is the whole log:\n{}\nEND OF LOG",
        "at calc.sh line 1: add 2 3 -> -1\n".repeat(32 * 1024)
    );
    assert!(huge.len() > 1 << 20);
    let parent = slack.post_as_user(CHANNEL, ALICE, &huge, None);
    for i in 0..9_998 {
        let who = if i % 2 == 0 { BOB } else { ALICE };
        slack.post_as_user(CHANNEL, who, &format!("reply {i}"), Some(&parent));
    }
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent));
    assert_eq!(slack.thread(CHANNEL, &parent).len(), 10_000);
    let payload = slack.app_mention(CHANNEL, ALICE, "<@UBOT> fix this", &mention, Some(&parent));
    // Delivered 4 times (Slack retries when it thinks an ack was lost).
    for _ in 0..4 {
        let e = slack
            .send_envelope("events_api", payload.clone(), false)
            .await;
        slack.ack(&e).await;
    }

    // The bot keeps serving meanwhile: a help request elsewhere is answered.
    let other = slack.post_as_user(CHANNEL, BOB, "unrelated", None);
    let help = slack.post_as_user(CHANNEL, BOB, "<@UBOT> help", Some(&other));
    let e = slack
        .send_envelope(
            "events_api",
            slack.app_mention(CHANNEL, BOB, "<@UBOT> help", &help, Some(&other)),
            false,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the help answer", |s| {
            s.thread(CHANNEL, &other).iter().any(|m| m.is_bot())
        })
        .await;

    let fallback = slack
        .wait_for("the notice that the thread goes as it is", |s| {
            s.thread(CHANNEL, &parent)
                .into_iter()
                .find(|m| m.is_bot() && m.text.contains("could not summarise the thread"))
        })
        .await;
    assert!(
        fallback.text.len() < 2_000,
        "a short notice: {}",
        fallback.text.len()
    );
    // What the requester needs, not the endpoint's internals.
    assert!(
        !fallback.text.contains("chat completion") && !fallback.text.contains("choices"),
        "{}",
        fallback.text
    );
    // Looked at after every change of a task (the bot serves in this process, on this store).
    let task = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        loop {
            let mut changes = env.svc.store.task_changes();
            let tasks = env.svc.store.recent_tasks(10).await.unwrap();
            if let Some(t) = tasks
                .iter()
                .find(|t| matches!(t.state, TaskState::Done | TaskState::Failed))
            {
                assert_eq!(tasks.len(), 1, "4 deliveries, one task");
                break t.clone();
            }
            tokio::time::timeout_at(deadline, changes.changed())
                .await
                .unwrap_or_else(|_| panic!("the task never ended: {tasks:?}"))
                .unwrap();
        }
    };
    assert_eq!(task.state, TaskState::Done, "{:?}", task.error);
    // What the model and the agents were given is bounded, and keeps both ends of the thread.
    let spec_request = env
        .model
        .received()
        .into_iter()
        .find(|r| r.seed.is_none_or(|s| s == 0))
        .expect("a spec request");
    let sent = spec_request.body.to_string();
    assert!(sent.len() < 200_000, "spec request of {} bytes", sent.len());
    assert!(sent.contains("add() is broken") && sent.contains("END OF LOG"));
    assert!(sent.contains("characters cut") && sent.contains("messages left out"));
    assert!(sent.contains("reply 9997"), "the latest replies are kept");
    assert!(
        task.spec.len() < 200_000,
        "spec of {} bytes",
        task.spec.len()
    );
    slack
        .wait_until("the summary", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("retry"))
            })
        })
        .await;
    let bots = slack
        .thread(CHANNEL, &parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .count();
    assert_eq!(bots, 3, "status, fallback notice, summary: nothing doubled");
    shutdown.cancel();
    env.assert_nothing_left(&task.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2_gb_repository_is_refused_before_anything_is_copied() {
    let env = env(|_| {}).await;
    let dir = env.dir.path().join("big");
    let repo = repo_with(&dir, &[("README.md", "big\n")]);
    // 2 GB of files (sparse on disk, a few MB once packed). The harness gives rollouts a 256 MB
    // workspace, so three quarters of it is the most a checkout may take.
    for i in 0..4 {
        let f = std::fs::File::create(repo.join(format!("blob{i}.bin"))).unwrap();
        f.set_len(512 << 20).unwrap();
    }
    threadsmith_tests::gitrepo::git(&repo, &["add", "-A"]);
    threadsmith_tests::gitrepo::git(&repo, &["commit", "--quiet", "-m", "2 GB of data"]);
    let started = Instant::now();
    let report = env.run(&repo, 2, "fix the data").await;
    assert_eq!(report.task.state, TaskState::Failed);
    let error = report.task.error.clone().unwrap_or_default();
    assert!(
        error.contains("The repository's files take 2.0 GB")
            && error.contains("more than a rollout can work on (192.0 MB)")
            && error.contains("limits.repo_size"),
        "{error}"
    );
    assert!(report.rollouts.is_empty(), "no rollout started");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "refused before copying: {:?}",
        started.elapsed()
    );
    env.assert_nothing_left(&report.task.id).await;
    // The bot still works: a normal repository runs.
    let small = calc_repo(&env.dir.path().join("calc"));
    let ok = env.run(&small, 1, "fix add").await;
    assert_eq!(ok.task.state, TaskState::Done, "{:?}", ok.task.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_writing_100000_files_ends_errored_with_the_reason() {
    let env = env(|c| {
        c.sandbox.workspace_size = Some("512m".into());
        c.sandbox.memory = Some("1g".into());
    })
    .await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    env.model.script(
        1,
        vec![
            Turn::Call(
                "run_command",
                json!({"command": "mkdir gen && cd gen && seq 1 100000 | xargs touch && ls | wc -l"}),
            ),
            Turn::Call("finish", json!({"summary": "wrote many files", "confidence": 0.9})),
        ],
    );
    let report = env.run(&repo, 1, "make many files").await;
    assert_eq!(report.task.state, TaskState::Done);
    let r = &report.rollouts[0];
    assert_eq!(r.outcome, Some(Outcome::Errored), "{r:?}");
    let detail = r.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("the change touches 100000 files (more than 5000), so it was not kept"),
        "{detail}"
    );
    let commands = env.svc.store.commands(&report.task.id, 1).await.unwrap();
    assert!(
        commands.iter().any(|c| c.output.contains("100000")),
        "the agent's command ran: {commands:?}"
    );
    assert_eq!(
        env.svc
            .store
            .diff(&report.task.id, 1)
            .await
            .unwrap()
            .map(|d| d.files.len())
            .unwrap_or(0),
        0
    );
    env.assert_nothing_left(&report.task.id).await;
    // The bot still works: the next task runs (its rollout gives up at once).
    let next = env.run(&repo, 1, "look again").await;
    assert_eq!(next.task.state, TaskState::Done, "{:?}", next.task.error);
    assert_eq!(next.rollouts[0].outcome, Some(Outcome::GaveUp));
}
