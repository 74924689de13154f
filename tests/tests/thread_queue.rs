//! One task at a time per thread: a second "fix this" while a task runs there is answered (once,
//! however often it is delivered), waits in the store, and starts by itself when the running
//! task ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use threadsmith_bot::config::RepoSection;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{Turn, env, serve_env};
use tokio::sync::Notify;

const CHANNEL: &str = "C111";
const ALICE: &str = "U222";
const BOB: &str = "U333";
const BUSY: &str = "A task is already running in this thread";

#[tokio::test(flavor = "multi_thread")]
async fn a_second_request_waits_for_the_running_task() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&dir.path().join("calc"));
    let api = slack.api_base();
    let url = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.attempts = Some(1);
        c.repos = vec![RepoSection {
            name: "acme/calc".into(),
            url,
            ..Default::default()
        }];
        c.default_repo = Some("acme/calc".into());
    })
    .await;
    env.model.script(
        0,
        vec![
            Turn::Call("write_spec", json!({"title": "First", "problem": "p"})),
            Turn::Call("write_spec", json!({"title": "Second", "problem": "p"})),
        ],
    );
    let gate = Arc::new(Notify::new());
    env.model.script(
        1,
        vec![
            Turn::Gated(
                gate.clone(),
                Box::new(Turn::Call("give_up", json!({"reason": "first"}))),
            ),
            Turn::Call("give_up", json!({"reason": "second"})),
        ],
    );
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    let parent = slack.post_as_user(CHANNEL, ALICE, "add is broken", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    // The first task runs (its rollout waits on the model).
    env.model.wait_for_requests(2).await;
    slack
        .wait_until("the first status message with Cancel", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("\"cancel\""))
            })
        })
        .await;

    // A second request in the thread, delivered twice.
    let text = "<@UBOT> fix this, and sub too";
    let second = slack.post_as_user(CHANNEL, BOB, text, Some(&parent));
    let payload = slack.app_mention(CHANNEL, BOB, text, &second, Some(&parent));
    for _ in 0..2 {
        let e = slack
            .send_envelope("events_api", payload.clone(), false)
            .await;
        slack.ack(&e).await;
    }
    let busy = slack
        .wait_for("the busy reply", |s| {
            s.thread(CHANNEL, &parent)
                .into_iter()
                .find(|m| m.is_bot() && m.text.contains(BUSY))
        })
        .await;
    assert!(busy.text.contains("queued"), "{}", busy.text);
    // `/fix <link to the thread>` does not start one beside it either.
    let link = slack.thread_link(CHANNEL, &parent);
    slack.slash("/fix", &link, CHANNEL, BOB).await;
    slack
        .wait_until("the command's busy answer", |s| {
            s.ephemerals()
                .iter()
                .any(|m| m.user == BOB && m.text.contains("already running in that thread"))
        })
        .await;
    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    assert_eq!(tasks.len(), 1, "no second task beside the first");
    // The request waits in the store, not in this process.
    let queued = env
        .svc
        .store
        .next_queued_request("slack", CHANNEL, &parent)
        .await
        .unwrap()
        .expect("the request is queued");
    assert_eq!(queued.0, second);

    // The first task ends: the queued one starts by itself, once.
    gate.notify_one();
    slack
        .wait_until("the second task's summary", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .filter(|m| {
                    m.is_bot()
                        && m.blocks
                            .as_ref()
                            .is_some_and(|b| b.to_string().contains("\"retry\""))
                })
                .count()
                == 2
        })
        .await;
    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let link = env
        .svc
        .store
        .chat_task_by_trigger("slack", CHANNEL, &second)
        .await
        .unwrap()
        .expect("the second request became a task");
    assert_eq!(link.requester, BOB);
    assert_eq!(
        slack
            .thread(CHANNEL, &parent)
            .iter()
            .filter(|m| m.text.contains(BUSY))
            .count(),
        1,
        "said once"
    );
    assert!(
        env.svc
            .store
            .next_queued_request("slack", CHANNEL, &parent)
            .await
            .unwrap()
            .is_none()
    );
    running.stop(&shutdown).await;
}

/// The queue is in the store: the bot killed while a request waits, then started again,
/// reports the interrupted task and then runs the queued request.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_request_survives_a_restart() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    std::fs::write(
        env.dir.path().join("threadsmith.toml"),
        format!(
            "attempts = 1\nstatus_edit_interval_ms = 0\ndefault_repo = \"{}\"\n[sandbox]\nmemory = \"768m\"\nworkspace_size = \"256m\"\ntmp_size = \"256m\"\n",
            repo.display()
        ),
    )
    .unwrap();
    env.model.script(
        0,
        vec![
            Turn::Call("write_spec", json!({"title": "First", "problem": "p"})),
            Turn::Call("write_spec", json!({"title": "Second", "problem": "p"})),
        ],
    );
    // The first rollout hangs until the bot is killed; the second gives up.
    let never = Arc::new(Notify::new());
    env.model.script(
        1,
        vec![
            Turn::Gated(never, Box::new(Turn::Text("late".into()))),
            Turn::Call("give_up", json!({"reason": "second"})),
        ],
    );
    let serve = || serve_env(&env, &slack);
    let first = serve();
    slack.wait_connected().await;
    let parent = slack.post_as_user(CHANNEL, ALICE, "add is broken", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    tokio::time::timeout(Duration::from_secs(90), env.model.wait_for_requests(2))
        .await
        .expect("the first rollout waits on the model");
    let (second, e) = slack
        .mention(CHANNEL, BOB, "<@UBOT> fix this too", Some(&parent))
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the busy reply", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.is_bot() && m.text.contains(BUSY))
        })
        .await;
    drop(first); // SIGKILL

    let _second_process = serve();
    slack
        .wait_until("the interruption reported", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.text.starts_with("threadsmith stopped"))
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let link = loop {
        if let Some(l) = env
            .svc
            .store
            .chat_task_by_trigger("slack", CHANNEL, &second)
            .await
            .unwrap()
            && l.summary_ts.is_some()
        {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "the queued request never ran after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(link.requester, BOB);
    assert_eq!(env.svc.store.recent_tasks(10).await.unwrap().len(), 2);
}
