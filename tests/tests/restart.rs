//! The bot killed with SIGKILL in the middle of a task, then started again: the real
//! `threadsmith serve` binary against the fake Slack, the scripted model and real Docker.

use std::time::{Duration, Instant};

use serde_json::json;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{ServeProcess, TestEnv, Turn, env, serve_env};

const CHANNEL: &str = "C111";
const ALICE: &str = "U222";

fn serve(env: &TestEnv, slack: &FakeSlack) -> ServeProcess {
    serve_env(env, slack)
}

async fn containers_of(env: &TestEnv, task: &str) -> usize {
    env.docker
        .list_managed()
        .await
        .expect("list containers")
        .into_iter()
        .filter(|c| c.task.as_deref() == Some(task))
        .count()
}

async fn wait_containers(env: &TestEnv, task: &str, want: impl Fn(usize) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let n = containers_of(env, task).await;
        if want(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} ({n} containers)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_killed_mid_task_reports_it_on_restart_and_leaves_nothing() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    std::fs::write(
        env.dir.path().join("threadsmith.toml"),
        format!(
            "attempts = 3\nstatus_edit_interval_ms = 0\ndefault_repo = \"{}\"\n[sandbox]\nmemory = \"768m\"\nworkspace_size = \"256m\"\ntmp_size = \"256m\"\n",
            repo.display()
        ),
    )
    .unwrap();
    // The spec comes at once; every rollout's first model call hangs (the gate never opens), so
    // three rollouts are running when the bot is killed.
    env.model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            json!({"title": "add() subtracts", "problem": "add 2 3 prints -1",
                   "expected": "5", "acceptance_checks": [], "hints": []}),
        )],
    );
    let gate = env.model.hold_rollouts(1..=3);

    let t0 = Instant::now();
    let first = serve(&env, &slack);
    slack.wait_connected().await;
    eprintln!("connected after {:?}", t0.elapsed());
    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1", None);
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent));
    let payload = slack.app_mention(CHANNEL, ALICE, "<@UBOT> fix this", &mention, Some(&parent));
    let e = slack.send_envelope("events_api", payload, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("the status message", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| m.is_bot())
        })
        .await;
    eprintln!("status after {:?}", t0.elapsed());
    let deadline = Instant::now() + Duration::from_secs(60);
    let task = loop {
        if let Some(t) = env.svc.store.recent_tasks(1).await.unwrap().pop() {
            break t;
        }
        assert!(Instant::now() < deadline, "the task was never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("task after {:?}", t0.elapsed());
    wait_containers(&env, &task.id, |n| n == 3, "three running rollouts").await;
    tokio::time::timeout(Duration::from_secs(60), env.model.wait_for_requests(4))
        .await
        .expect("every rollout is waiting on the model");

    eprintln!("three rollouts running after {:?}", t0.elapsed());
    drop(first); // SIGKILL
    assert_eq!(
        containers_of(&env, &task.id).await,
        3,
        "the dead bot left its containers"
    );

    let second = serve(&env, &slack);
    let started = Instant::now();
    let notice = slack
        .wait_for("the interruption reported in the thread", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.text.starts_with(
                    "threadsmith stopped (a restart or a crash) while this task was running",
                )
            })
        })
        .await;
    eprintln!("reported {:?} after the restart", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        notice.blocks.unwrap().to_string().contains("\"retry\""),
        "Retry is offered"
    );
    wait_containers(&env, &task.id, |n| n == 0, "the orphans removed").await;
    slack
        .wait_until("❌ on the request", |s| {
            s.reactions(CHANNEL, &mention).contains(&"x".to_string())
        })
        .await;
    let task_now = env.svc.store.task(&task.id).await.unwrap().unwrap();
    assert_eq!(task_now.state.as_str(), "failed");
    assert_eq!(
        env.svc.store.recent_tasks(10).await.unwrap().len(),
        1,
        "no second task"
    );
    let bots: Vec<_> = slack
        .thread(CHANNEL, &parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .collect();
    assert_eq!(bots.len(), 2, "one status message, one notice: {bots:?}");
    assert!(bots[0].text.contains("Stopped"), "{:?}", bots[0].text);
    assert!(
        !slack
            .reactions(CHANNEL, &mention)
            .contains(&"eyes".to_string())
    );

    drop(second);
    gate.notify_waiters();
    env.assert_nothing_left(&task.id).await;
}

/// A process that died after its task ended but before the summary went out: whichever process
/// starts next posts that summary, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_summary_left_unsent_by_a_dead_process_is_posted_once() {
    use threadsmith_bot::store::ChatTaskLink;

    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
    })
    .await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    threadsmith_tests::script_calc_fix(&env);
    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1", None);
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent));
    // The task ran to its end in a process on another machine, which then died.
    let report = env.run(&repo, 3, "add() subtracts").await;
    let task = report.task.id.clone();
    let store = &env.svc.store;
    store
        .link_chat_task(&ChatTaskLink {
            task_id: task.clone(),
            platform: "slack".into(),
            workspace: "T123".into(),
            channel: CHANNEL.into(),
            thread: parent.clone(),
            trigger_ts: Some(mention.clone()),
            requester: ALICE.into(),
            ..ChatTaskLink::default()
        })
        .await
        .unwrap();
    assert!(
        store
            .adopt_task(&task, Some(env.svc.worker_id()), "elsewhere:4242:1")
            .await
            .unwrap()
    );

    let mut posted = None;
    for round in 0..2 {
        let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
        slack.wait_connected().await;
        let summary = slack
            .wait_for("the summary", |s| {
                s.thread(CHANNEL, &parent).into_iter().find(|m| {
                    m.is_bot()
                        && m.blocks
                            .as_ref()
                            .is_some_and(|b| b.to_string().contains("\"approve\""))
                })
            })
            .await;
        slack
            .wait_until("✅ on the request", |s| {
                s.reactions(CHANNEL, &mention)
                    .contains(&"white_check_mark".to_string())
            })
            .await;
        assert_eq!(
            store.chat_task(&task).await.unwrap().unwrap().summary_ts,
            Some(summary.ts.clone()),
            "round {round}"
        );
        running.stop(&shutdown).await;
        let bots: Vec<_> = slack
            .thread(CHANNEL, &parent)
            .into_iter()
            .filter(|m| m.is_bot())
            .collect();
        let summaries = bots
            .iter()
            .filter(|m| {
                m.blocks
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains("\"approve\""))
            })
            .count();
        assert_eq!(summaries, 1, "one summary, after {} start(s)", round + 1);
        // The summary and the patches attached with it; a second start adds nothing.
        assert_eq!(
            *posted.get_or_insert(bots.len()),
            bots.len(),
            "round {round}: {bots:?}"
        );
    }
}

/// A process whose task another process adopted (its heartbeat lapsed, so it was taken for dead)
/// stops the task rather than finish it twice, and posts no summary: the adopter speaks for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_adopted_by_another_process_stops_here() {
    use threadsmith_bot::store::TaskState;

    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let repo_s = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.default_repo = Some(repo_s);
        c.attempts = Some(2);
        c.workers.poll_ms = Some(50);
    })
    .await;
    env.model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            json!({"title": "add() subtracts", "problem": "add 2 3 prints -1"}),
        )],
    );
    let gate = env.model.hold_rollouts(1..=2);
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;
    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    env.model.wait_for_requests(3).await;
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    wait_containers(&env, &task.id, |n| n == 2, "two running rollouts").await;

    // Another process adopts the task, as it would after this one's heartbeat lapsed.
    assert!(
        env.svc
            .store
            .adopt_task(&task.id, Some(env.svc.worker_id()), "elsewhere:7:1")
            .await
            .unwrap()
    );
    wait_containers(&env, &task.id, |n| n == 0, "the rollouts stopped here").await;
    // Looked at after every change of a task (this process runs it, on this store).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let mut changes = env.svc.store.task_changes();
        let t = env.svc.store.task(&task.id).await.unwrap().unwrap();
        if t.state == TaskState::Cancelled {
            break t;
        }
        tokio::time::timeout_at(deadline, changes.changed())
            .await
            .unwrap_or_else(|_| panic!("still {:?}", t.state))
            .unwrap();
    };
    assert_eq!(ended.worker.as_deref(), Some("elsewhere:7:1"));
    // Only the status message: no summary from the process that lost the task.
    running.stop(&shutdown).await;
    let bots: Vec<_> = slack
        .thread(CHANNEL, &parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .collect();
    assert_eq!(bots.len(), 1, "{bots:?}");
    gate.notify_waiters();
    env.assert_nothing_left(&task.id).await;
}

/// A request another live process is handling (it took the event again when this process's
/// lease lapsed) is left to it: nothing is posted and no task is started here.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_another_live_process_holds_is_left_to_it() {
    use threadsmith_bot::store::Worker;

    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let repo_s = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.default_repo = Some(repo_s);
    })
    .await;
    let store = &env.svc.store;
    let other = Worker {
        id: "elsewhere:9:1".into(),
        host: "elsewhere".into(),
        pid: 9,
        alive_until: 0,
    };
    store
        .heartbeat(&other, Duration::from_secs(600))
        .await
        .unwrap();
    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1", None);
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent));
    assert!(
        store
            .claim_request(&format!("request:slack:{CHANNEL}:{mention}"), &other.id)
            .await
            .unwrap()
    );

    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;
    let e = slack
        .send_envelope(
            "events_api",
            slack.app_mention(CHANNEL, ALICE, "<@UBOT> fix this", &mention, Some(&parent)),
            false,
        )
        .await;
    slack.ack(&e).await;
    // Acknowledged, so stored (journaled, then moved into the inbox); then handled.
    threadsmith_tests::settle(store.as_ref(), Duration::from_secs(60)).await;
    assert_eq!(store.inbox_len().await.unwrap(), 1);
    running.stop(&shutdown).await;
    let bots = slack
        .thread(CHANNEL, &parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .count();
    assert_eq!(bots, 0, "left to the other process");
    assert!(store.recent_tasks(5).await.unwrap().is_empty());
    assert!(slack.reactions(CHANNEL, &mention).is_empty());
}
