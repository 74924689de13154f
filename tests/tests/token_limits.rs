//! What attempts cost, end to end through Slack: the real serve loop and Slack adapter against
//! the fake Slack, real Docker, and the fake model reporting `usage` as OpenAI does. A task's
//! token limit is reached mid-task: the rollout stops before its next model request, the thread
//! says so, and the task's tokens, calls and cost are stored and shown.

use serde_json::json;
use threadsmith_bot::config::ModelPrice;
use threadsmith_runner::Outcome;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, Message};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{Turn, env};

const CHANNEL: &str = "C111";
const ALICE: &str = "U222";

fn summary_of(messages: &[Message]) -> Option<Message> {
    messages
        .iter()
        .find(|m| {
            m.is_bot()
                && m.blocks
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains("\"approve\""))
        })
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_token_limit_reached_mid_task_stops_the_rollout_and_the_thread_says_so() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = slack.api_base();
    let repo_path = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.mode = Some("socket".into());
        c.default_repo = Some(repo_path);
        c.attempts = Some(2);
        // The spec call (1,100) and one agent request per rollout (1,100 each) are made: a
        // rollout's first request has no size to guess from, and the most spent before one is
        // 2,200. A rollout's second request would pass 3,000 whether the other rollout's first
        // answer came yet or not (at least 2,200 spent, and 1,100 more guessed), so the test
        // does not depend on the two rollouts' order (with 4,000 it did: a rollout that got
        // to its second request before the other's first answer made it).
        c.limits.task_tokens = Some(3_000);
        c.prices.insert(
            "fake-model".into(),
            ModelPrice {
                input: 2.5,
                output: 10.0,
            },
        );
    })
    .await;
    env.model.fixed_usage(1_000, 100);
    env.model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            json!({"title": "add() subtracts", "problem": "add 2 3 prints -1"}),
        )],
    );
    for seed in [1, 2] {
        env.model.script(
            seed,
            vec![
                Turn::Call(
                    "write_file",
                    json!({"path": "calc.sh", "content": threadsmith_tests::gitrepo::FIXED_CALC}),
                ),
                Turn::Call(
                    "finish",
                    json!({"summary": "Fixed add.", "confidence": 0.9}),
                ),
            ],
        );
    }
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh", None);
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent));
    let payload = slack.app_mention(CHANNEL, ALICE, "<@UBOT> fix this", &mention, Some(&parent));
    let id = slack.send_envelope("events_api", payload, false).await;
    slack.ack(&id).await;
    let summary = slack
        .wait_for("the summary", |s| summary_of(&s.thread(CHANNEL, &parent)))
        .await;

    // The rollouts stopped before their second request: the model never got it.
    for seed in [1, 2] {
        assert_eq!(env.model.received_by(seed).len(), 1, "rollout {seed}");
    }
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    let rollouts = env.svc.store.rollouts(&task.id).await.unwrap();
    assert_eq!(rollouts.len(), 2);
    for r in &rollouts {
        assert_eq!(r.outcome, Some(Outcome::LimitReached), "{r:?}");
        let detail = r.detail.as_deref().unwrap_or_default();
        assert!(
            detail.starts_with(
                "the task's token limit (3k tokens, `limits.task_tokens`) was reached"
            ),
            "{detail}"
        );
        assert!(
            detail.ends_with("stopped before model request 2"),
            "{detail}"
        );
        assert_eq!(
            (r.cost.model.calls, r.cost.model.unmeasured),
            (1, 0),
            "one answered request"
        );
        assert_eq!(
            (r.cost.model.prompt_tokens, r.cost.model.completion_tokens),
            (1_000, 100)
        );
        assert!(r.cost.sandbox_time > std::time::Duration::ZERO);
    }
    // The spec call is the task's.
    assert_eq!(task.spec_usage.calls, 1);
    assert_eq!(task.spec_usage.total(), 1_100);
    assert_eq!(task.model.as_deref(), Some("fake-model"));

    // The thread says so: each rollout's outcome and why, and the task's total with its cost
    // (3 calls of 1,000 + 100 tokens at $2.50 / $10 per million: $0.0105).
    let text = summary.blocks.as_ref().unwrap().to_string();
    assert!(text.contains("stopped by the token limit"), "{text}");
    assert!(text.contains("the task's token limit (3k tokens"), "{text}");
    assert!(
        text.contains("Total: 3.3k tokens in 3 model calls · $0.011"),
        "{text}"
    );
    assert!(text.contains("a token limit stopped 2 rollouts"), "{text}");
    assert!(text.contains("1.1k tokens · $0.004"), "{text}");

    // `threadsmith show` gives the details.
    let shown =
        threadsmith_bot::cli::show::task_text(env.svc.store.as_ref(), &task, &env.svc.config)
            .await
            .unwrap();
    assert!(
        shown.contains("cost:  3.3k tokens in 3 model calls · $0.011"),
        "{shown}"
    );
    assert!(
        shown
            .contains("spec:  1 call: 1k prompt + 100 completion tokens (the spec and plan calls)"),
        "{shown}"
    );
    assert!(
        shown.contains("model: 1 call: 1k prompt + 100 completion tokens"),
        "{shown}"
    );
    assert!(shown.contains("in the sandbox"), "{shown}");

    running.stop(&shutdown).await;
    env.assert_nothing_left(&task.id).await;
}

fn script_fix(model: &threadsmith_tests::FakeModel) {
    model.reset();
    model.script(
        1,
        vec![
            Turn::Call(
                "write_file",
                json!({"path": "calc.sh", "content": threadsmith_tests::gitrepo::FIXED_CALC}),
            ),
            Turn::Call(
                "finish",
                json!({"summary": "Fixed add.", "confidence": 0.9}),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_daily_budget_refuses_the_next_task_and_an_endpoint_without_usage_is_unknown() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = env(|c| c.limits.daily_tokens = Some(1_600)).await;
    // No `usage`: the tokens are unknown (not 0), and count nothing against the limit.
    env.model.omit_usage(true);
    script_fix(&env.model);
    let first = env.run(&repo, 1, "fix add").await;
    let r = &first.rollouts[0];
    assert_eq!(r.outcome, Some(Outcome::Succeeded), "{r:?}");
    assert_eq!((r.cost.model.calls, r.cost.model.unmeasured), (2, 2));
    assert_eq!(r.cost.model.tokens_words(), "tokens unknown");

    // Measured tokens spend the day's budget: 2 requests of 600 + 200 use it up exactly (the
    // second fits), and the next task is not started.
    env.model.omit_usage(false);
    env.model.fixed_usage(600, 200);
    script_fix(&env.model);
    let second = env.run(&repo, 1, "fix add again").await;
    let r = &second.rollouts[0];
    assert_eq!(r.outcome, Some(Outcome::Succeeded), "{r:?}");
    assert_eq!(r.cost.model.total(), 1_600);
    let third = env.run(&repo, 1, "fix add a third time").await;
    assert!(third.rollouts.is_empty());
    assert_eq!(
        third.task.error.as_deref(),
        Some(
            "Not started: today's token limit for everyone (1.6k tokens, `limits.daily_tokens`) was reached; it resets at midnight UTC."
        )
    );
    for t in [first.task.id, second.task.id, third.task.id] {
        env.assert_nothing_left(&t).await;
    }
}
