//! The repository allow-list holds at every chat entry point: with `allow_unlisted_repos` off, a
//! repository outside `[[repos]]` and `default_repo` — a path on the bot's host or a URL — is
//! refused by a mention, a bare phrase, the message shortcut, `/fix <description>`,
//! `/fix <thread link>`, `/fix repo`, Retry, a plan's Run it and the repository menu (Slack), and
//! by a mention and `/fix` (Discord); a channel setting or a stored task or plan naming one
//! cannot smuggle it in. No task is ever created for it.

use serde_json::json;
use threadsmith_bot::config::RepoSection;
use threadsmith_bot::store::{ChatTaskLink, NewTask, Plan, Question, TaskState};
use threadsmith_runner::secret::Secret;
use threadsmith_tests::discord_fake::{self as fake_discord, FakeDiscord};
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, SlackState};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{TestEnv, env};

const CHANNEL: &str = "C111";
const PHRASES: &str = "C999";
const ALICE: &str = "U222";
const REFUSAL: &str = "only work on the repositories I am configured for";

/// Waits until every stored chat event is handled.
async fn settle(env: &TestEnv) {
    threadsmith_tests::settle(env.svc.store.as_ref(), std::time::Duration::from_secs(60)).await;
}

/// A task row and its thread, as a task on `repo` would have left them.
async fn stored_task(env: &TestEnv, workspace: &str, repo: &str, thread: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    env.svc
        .store
        .create_task(&NewTask {
            id: id.clone(),
            origin: "slack".into(),
            requester: Some(ALICE.into()),
            title: "Old task".into(),
            spec: "add is broken".into(),
            repo: repo.into(),
            base_ref: None,
            attempts: 1,
            spec_json: None,
            worker: None,
        })
        .await
        .unwrap();
    env.svc
        .store
        .set_task_state(&id, TaskState::Failed, Some("it failed"))
        .await
        .unwrap();
    env.svc
        .store
        .link_chat_task(&ChatTaskLink {
            task_id: id.clone(),
            platform: "slack".into(),
            workspace: workspace.into(),
            channel: CHANNEL.into(),
            thread: thread.into(),
            requester: ALICE.into(),
            ..ChatTaskLink::default()
        })
        .await
        .unwrap();
    id
}

fn refusals_in(slack: &SlackState, channel: &str, thread: &str) -> usize {
    slack
        .thread(channel, thread)
        .iter()
        .filter(|m| m.is_bot() && m.text.contains(REFUSAL))
        .count()
}

fn ephemeral_refusals(slack: &SlackState) -> usize {
    slack
        .ephemerals()
        .iter()
        .filter(|m| m.user == ALICE && m.text.contains(REFUSAL))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_entry_points_refuse_unlisted_repositories() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let listed = calc_repo(&dir.path().join("calc"));
    // A real repository on the bot's host that the operator did not list.
    let secret = calc_repo(&dir.path().join("secret"));
    let api = slack.api_base();
    let listed_url = listed.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.phrase_channels = vec![PHRASES.into()];
        c.attempts = Some(1);
        c.repos = vec![RepoSection {
            name: "acme/calc".into(),
            url: listed_url,
            ..Default::default()
        }];
    })
    .await;
    let workspace = slack.config().team_id.clone();
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;
    let unlisted = [
        secret.display().to_string(),
        format!("file://{}", secret.display()),
    ];

    for repo in &unlisted {
        // A mention naming it.
        let parent = slack.post_as_user(CHANNEL, ALICE, "add is broken", None);
        let (_, e) = slack
            .mention(
                CHANNEL,
                ALICE,
                &format!("<@UBOT> fix this repo={repo}"),
                Some(&parent),
            )
            .await;
        slack.ack(&e).await;
        slack
            .wait_until("the mention's refusal", |s| {
                refusals_in(s, CHANNEL, &parent) == 1
            })
            .await;

        // A bare phrase naming it.
        let text = format!("fix this repo={repo}");
        let phrase = slack.post_as_user(PHRASES, ALICE, &text, None);
        let e = slack
            .send_envelope(
                "events_api",
                slack.message_event(PHRASES, Some(ALICE), None, &text, &phrase, None),
                false,
            )
            .await;
        slack.ack(&e).await;
        slack
            .wait_until("the phrase's refusal", |s| {
                refusals_in(s, PHRASES, &phrase) == 1
            })
            .await;

        // `/fix <description> repo=…`: refused before any thread is opened.
        let before = slack.read(ephemeral_refusals);
        slack
            .slash(
                "/fix",
                &format!("tally miscounts repo={repo}"),
                CHANNEL,
                ALICE,
            )
            .await;
        slack
            .wait_until("the description's refusal", |s| {
                ephemeral_refusals(s) == before + 1
            })
            .await;

        // `/fix <thread link> repo=…`.
        let thread = slack.post_as_user(CHANNEL, ALICE, "tally is wrong", None);
        let link = format!("{} repo={repo}", slack.thread_link(CHANNEL, &thread));
        slack.slash("/fix", &link, CHANNEL, ALICE).await;
        slack
            .wait_until("the link's refusal", |s| {
                ephemeral_refusals(s) == before + 2
            })
            .await;

        // `/fix repo …` does not set it.
        slack
            .slash("/fix", &format!("repo {repo}"), CHANNEL, ALICE)
            .await;
        slack
            .wait_until("the setting's refusal", |s| {
                ephemeral_refusals(s) == before + 3
            })
            .await;
        assert_ne!(
            env.svc
                .store
                .channel_repo("slack", CHANNEL)
                .await
                .unwrap()
                .as_deref(),
            Some(repo.as_str())
        );

        // A channel setting stored while unlisted repositories were allowed is no licence:
        // the shortcut and a plain mention are refused.
        env.svc
            .store
            .set_channel_repo("slack", CHANNEL, repo)
            .await
            .unwrap();
        let parent = slack.post_as_user(CHANNEL, ALICE, "calc.sh: add is broken", None);
        let action = slack.message_action(ALICE, CHANNEL, &parent, None, "fix_this");
        let e = slack.send_envelope("interactive", action, false).await;
        slack.ack(&e).await;
        slack
            .wait_until("the shortcut's refusal", |s| {
                refusals_in(s, CHANNEL, &parent) == 1
            })
            .await;
        let parent = slack.post_as_user(CHANNEL, ALICE, "still broken", None);
        let (_, e) = slack
            .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
            .await;
        slack.ack(&e).await;
        slack
            .wait_until("the channel setting's refusal", |s| {
                refusals_in(s, CHANNEL, &parent) == 1
            })
            .await;
        env.svc
            .store
            .set_channel_repo("slack", CHANNEL, "acme/calc")
            .await
            .unwrap();

        // A stored task on it cannot be retried into running.
        let parent = slack.post_as_user(CHANNEL, ALICE, "old thread", None);
        let old = stored_task(&env, &workspace, repo, &parent).await;
        let submit = slack.view_submission(
            ALICE,
            "retry",
            &old,
            json!({"feedback": {"feedback": {"type": "plain_text_input", "value": "again"}}}),
        );
        let e = slack.send_envelope("interactive", submit, true).await;
        slack.ack(&e).await;
        slack
            .wait_until("the retry's refusal", |s| {
                refusals_in(s, CHANNEL, &parent) == 1
            })
            .await;

        // Nor can a stored plan on it be run.
        let parent = slack.post_as_user(CHANNEL, ALICE, "plan thread", None);
        let plan = Plan {
            id: uuid::Uuid::new_v4().simple().to_string(),
            platform: "slack".into(),
            workspace: workspace.clone(),
            channel: CHANNEL.into(),
            thread: parent.clone(),
            trigger_ts: None,
            requester: ALICE.into(),
            repo: repo.clone(),
            base_ref: None,
            attempts: None,
            spec_json: json!({"title": "Plan", "problem": "p"}).to_string(),
            plan: "1. Read everything.".into(),
            revises: None,
        };
        env.svc.store.create_plan(&plan).await.unwrap();
        let shown = slack.post_as_user(CHANNEL, ALICE, "the plan", Some(&parent));
        let click =
            slack.block_actions(ALICE, CHANNEL, &shown, Some(&parent), "run_plan", &plan.id);
        let e = slack.send_envelope("interactive", click, false).await;
        slack.ack(&e).await;
        slack
            .wait_until("the plan's refusal", |s| {
                refusals_in(s, CHANNEL, &parent) == 1
            })
            .await;

        // The repository menu takes only configured names.
        let parent = slack.post_as_user(CHANNEL, ALICE, "which repo?", None);
        let question = Question {
            id: uuid::Uuid::new_v4().simple().to_string(),
            platform: "slack".into(),
            workspace: workspace.clone(),
            channel: CHANNEL.into(),
            thread: parent.clone(),
            trigger_ts: None,
            requester: ALICE.into(),
            kind: "fix".into(),
            instructions: None,
            base_ref: None,
            attempts: None,
            message_ts: None,
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        };
        env.svc.store.ask(&question).await.unwrap();
        let mut click =
            slack.block_actions(ALICE, CHANNEL, &shown, Some(&parent), "choose_repo", repo);
        let action = &mut click["actions"][0];
        let block_id = action["block_id"].clone();
        *action = json!({
            "type": "static_select",
            "action_id": "choose_repo",
            "block_id": block_id,
            "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": repo},
            "placeholder": {"type": "plain_text", "text": "Choose a repository"},
            "action_ts": "1700000300.000001"
        });
        let e = slack.send_envelope("interactive", click, false).await;
        slack.ack(&e).await;
        settle(&env).await;
        assert!(
            env.svc
                .store
                .open_questions()
                .await
                .unwrap()
                .iter()
                .any(|q| q.id == question.id),
            "an unlisted answer does not close the question"
        );
    }

    settle(&env).await;
    // Only the two stored tasks exist: nothing ran on the unlisted repository.
    let tasks = env.svc.store.recent_tasks(50).await.unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(tasks.iter().all(|t| t.title == "Old task"), "{tasks:?}");
    assert!(
        !dir.path().join("data").join("mirrors").exists()
            && !env.svc.config.data_dir().join("mirrors").exists(),
        "nothing was cloned"
    );
    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn discord_mention_and_command_refuse_unlisted_repositories() {
    const CHANNEL: &str = "1300000000000000001";
    const ALICE: &str = "1400000000000000001";
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let dir = tempfile::tempdir().unwrap();
    let listed = calc_repo(&dir.path().join("calc"));
    let secret = calc_repo(&dir.path().join("secret"));
    let api = fake.api_base();
    let listed_url = listed.display().to_string();
    let env = env(move |c| {
        c.discord.token = Some(Secret::new(fake_discord::TOKEN));
        c.discord.api_url = Some(api);
        c.repos = vec![RepoSection {
            name: "acme/calc".into(),
            url: listed_url,
            ..Default::default()
        }];
        c.attempts = Some(1);
        c.status_edit_interval_ms = Some(0);
    })
    .await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    fake.wait_connected().await;
    let refused_privately = |f: &FakeDiscord| {
        f.webhook_messages()
            .iter()
            .filter(|w| {
                w.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(REFUSAL))
            })
            .count()
    };
    let refused_in = |f: &FakeDiscord, channel: &str| {
        f.messages(channel)
            .iter()
            .filter(|m| m.is_bot && m.content.contains(REFUSAL))
            .count()
    };
    for (n, repo) in [
        secret.display().to_string(),
        format!("file://{}", secret.display()),
    ]
    .iter()
    .enumerate()
    {
        let starter = fake.post_as_user(CHANNEL, ALICE, "tally miscounts");
        let thread = fake.start_thread(CHANNEL, &starter, "tally");
        fake.post_as_user(
            &thread,
            ALICE,
            &format!("<@{}> fix this repo={repo}", fake_discord::BOT_ID),
        );
        fake.wait_until("the mention's refusal", |f| refused_in(f, &thread) == 1)
            .await;

        let cmd = fake.slash_command(
            ALICE,
            CHANNEL,
            "fix",
            Some(&format!("tally miscounts repo={repo}")),
        );
        fake.send_interaction(cmd).await;
        fake.wait_until("the command's refusal", |f| refused_privately(f) == n + 1)
            .await;
    }
    settle(&env).await;
    assert!(env.svc.store.recent_tasks(10).await.unwrap().is_empty());
    running.stop(&shutdown).await;
}
