//! Limits through Slack: with one rollout allowed at a time and one waiting task per person, a
//! second request waits and says so, a third from the same person is refused with a message
//! naming the limit, another person's request waits too, and both waiting tasks run once the
//! slot frees. Waiting tasks do not keep the bot from reading other requests.

use serde_json::json;
use threadsmith_bot::store::TaskState;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, SlackState};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{Turn, env};

const CHANNEL: &str = "C321";
const ALICE: &str = "U222";
const BOB: &str = "U333";

/// A bot message in the thread whose text or blocks contain `needle`.
fn bot_says(s: &SlackState, parent: &str, needle: &str) -> bool {
    s.thread(CHANNEL, parent).iter().any(|m| {
        m.is_bot()
            && (m.text.contains(needle)
                || m.blocks
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains(needle)))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_over_the_limit_waits_and_one_over_the_queue_is_refused() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = slack.api_base();
    let repo_s = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.default_repo = Some(repo_s);
        c.attempts = Some(1);
        c.limits.running_rollouts = Some(1);
        c.limits.user_queued_tasks = Some(1);
        c.workers.poll_ms = Some(100);
        // Two events at a time: the running task holds one; waiting tasks must not hold the
        // other, or nothing more would be read until the first task ends.
        c.workers.concurrent_events = Some(2);
    })
    .await;
    env.model.script(
        0,
        (0..4)
            .map(|_| Turn::Call("write_spec", json!({"title": "Fix add", "problem": "p"})))
            .collect(),
    );
    // The first rollout waits on the model until the gate opens; the others give up at once.
    let gate = env.model.hold_rollouts(1..=1);
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    let ask = |user: &'static str, text: &'static str| {
        let slack = &slack;
        async move {
            let parent = slack.post_as_user(CHANNEL, user, text, None);
            let (_, e) = slack
                .mention(CHANNEL, user, "<@UBOT> fix this", Some(&parent))
                .await;
            slack.ack(&e).await;
            parent
        }
    };
    let first = ask(ALICE, "first bug").await;
    env.model.wait_for_requests(2).await; // its spec, and its rollout waiting at the gate
    let second = ask(ALICE, "second bug").await;
    slack
        .wait_until("the second task queued", |s| {
            bot_says(
                s,
                &second,
                "Queued: 1 rollout is running (the limit is 1); it is next. It starts by itself.",
            )
        })
        .await;
    let third = ask(ALICE, "third bug").await;
    slack
        .wait_until("the third refused", |s| {
            bot_says(
                s,
                &third,
                "You already have 1 task waiting for a free slot (the limit is 1). Wait for one to start, or cancel one, then ask again.",
            )
        })
        .await;
    let fourth = ask(BOB, "bob's bug").await;
    slack
        .wait_until("Bob's task queued behind Alice's", |s| {
            bot_says(s, &fourth, "1 task is ahead of it")
        })
        .await;
    // Meanwhile the bot still answers.
    let other = slack.post_as_user(CHANNEL, BOB, "question", None);
    let (_, e) = slack
        .mention(CHANNEL, BOB, "<@UBOT> help", Some(&other))
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the help answer", |s| {
            s.thread(CHANNEL, &other).iter().any(|m| m.is_bot())
        })
        .await;
    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    let states: Vec<TaskState> = tasks.iter().map(|t| t.state).collect();
    assert_eq!(
        states.iter().filter(|s| **s == TaskState::Queued).count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == TaskState::Running).count(),
        1,
        "one running: {states:?}"
    );

    gate.notify_waiters();
    for parent in [&first, &second, &fourth] {
        slack
            .wait_until("a summary", |s| bot_says(s, parent, "\"retry\""))
            .await;
    }
    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    assert_eq!(tasks.len(), 4);
    let done = tasks.iter().filter(|t| t.state == TaskState::Done).count();
    let failed: Vec<_> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Failed)
        .collect();
    assert_eq!(done, 3, "{tasks:?}");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("the limit is 1")),
        "{:?}",
        failed[0].error
    );
    running.stop(&shutdown).await;
    for t in tasks {
        env.assert_nothing_left(&t.id).await;
    }
}
