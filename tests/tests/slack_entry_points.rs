//! Slack's other entry points: `/fix` commands, the "Fix this" message shortcut, the bare
//! trigger phrase, bots that never trigger, the spec fallback, and Cancel.

use std::sync::Arc;

use serde_json::json;
use threadsmith_bot::serve;
use threadsmith_bot::store::TaskState;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{TestEnv, Turn, env};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "C111";
const PHRASES: &str = "C999";
const ALICE: &str = "U222";
const BOB: &str = "U333";

async fn slack_env(slack: &FakeSlack) -> TestEnv {
    let api = slack.api_base();
    env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.phrase_channels = vec![PHRASES.into()];
        c.attempts = Some(1);
        // These tests point a channel at a repository by its path, as an operator who allows
        // unlisted repositories may (tests/tests/repo_allow_list.rs covers the refusal).
        c.allow_unlisted_repos = Some(true);
    })
    .await
}

fn give_up(env: &TestEnv) {
    env.model.script(
        1,
        vec![Turn::Call("give_up", json!({"reason": "just looking"}))],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_shortcut_phrase_and_bots() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = slack.api_base();
    let url = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.phrase_channels = vec![PHRASES.into()];
        c.attempts = Some(1);
        c.repos = vec![threadsmith_bot::config::RepoSection {
            name: "acme/calc".into(),
            url,
            ..Default::default()
        }];
    })
    .await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;

    // A repository the bot is not configured for is refused: chat cannot make it clone anything.
    let e = slack
        .send_envelope(
            "slash_commands",
            slack.slash_command("/fix", "repo /etc", CHANNEL, BOB),
            true,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the refusal", |s| {
            s.ephemerals().iter().any(|m| {
                m.user == BOB
                    && m.text
                        .contains("only work on the repositories I am configured for")
            })
        })
        .await;
    assert_eq!(
        env.svc.store.channel_repo("slack", CHANNEL).await.unwrap(),
        None
    );

    // `/fix repo <name>` sets the channel's repository; the ack answers at once.
    let cmd = slack.slash_command("/fix", "repo acme/calc", CHANNEL, ALICE);
    let e = slack
        .send_envelope("slash_commands", cmd.clone(), true)
        .await;
    let ack = slack.ack(&e).await;
    assert_eq!(ack["payload"]["response_type"], "ephemeral", "{ack}");
    // Delivered twice: one effect.
    let e = slack.send_envelope("slash_commands", cmd, true).await;
    slack.ack(&e).await;
    slack
        .wait_until("the repository confirmation", |s| {
            s.ephemerals()
                .iter()
                .any(|m| m.user == ALICE && m.text.contains("Tasks in this channel now use"))
        })
        .await;
    assert_eq!(
        env.svc
            .store
            .channel_repo("slack", CHANNEL)
            .await
            .unwrap()
            .as_deref(),
        Some("acme/calc")
    );
    assert_eq!(env.svc.store.inbox_len().await.unwrap(), 2);

    // `/fix help`: the help, privately.
    let e = slack
        .send_envelope(
            "slash_commands",
            slack.slash_command("/fix", "help", CHANNEL, BOB),
            true,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the help", |s| {
            s.ephemerals()
                .iter()
                .any(|m| m.user == BOB && m.text.contains("repo"))
        })
        .await;

    // The message shortcut on a thread starts a task there, with the channel's repository; the
    // model's spec fails, so the thread is told and the plain thread is used.
    env.model
        .script(0, vec![Turn::Text("I'd rather chat.".into())]);
    give_up(&env);
    let parent = slack.post_as_user(CHANNEL, ALICE, "calc.sh: add is broken", None);
    let action = slack.message_action(BOB, CHANNEL, &parent, None, "fix_this");
    let e = slack.send_envelope("interactive", action, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("the shortcut's summary", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("gave up"))
            })
        })
        .await;
    let told = slack.thread(CHANNEL, &parent);
    assert!(
        told.iter()
            .any(|m| m.text.contains("could not summarise the thread")),
        "{told:?}"
    );
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    assert_eq!(task.repo, "acme/calc");
    assert!(task.spec.contains("add is broken"), "{}", task.spec);
    let link = env.svc.store.chat_task(&task.id).await.unwrap().unwrap();
    assert_eq!(link.requester, BOB);

    // A bare phrase works where it is enabled, and nowhere else; bots never trigger.
    env.model.reset();
    give_up(&env);
    let elsewhere = slack.post_as_user(CHANNEL, ALICE, "fix this please", None);
    let e = slack
        .send_envelope(
            "events_api",
            slack.message_event(
                CHANNEL,
                Some(ALICE),
                None,
                "fix this please",
                &elsewhere,
                None,
            ),
            false,
        )
        .await;
    slack.ack(&e).await;
    let bot_ts = slack.post_as_user(PHRASES, "UOTHERBOT", "fix this", None);
    let e = slack
        .send_envelope(
            "events_api",
            slack.message_event(PHRASES, None, Some("BOTHER"), "fix this", &bot_ts, None),
            false,
        )
        .await;
    slack.ack(&e).await;
    let phrase = slack.post_as_user(PHRASES, ALICE, "Fix this! calc.sh add", None);
    slack.post_as_user(PHRASES, ALICE, "repo is the usual one", Some(&phrase));
    env.svc
        .store
        .set_channel_repo("slack", PHRASES, &repo.display().to_string())
        .await
        .unwrap();
    let e = slack
        .send_envelope(
            "events_api",
            slack.message_event(
                PHRASES,
                Some(ALICE),
                None,
                "Fix this! calc.sh add",
                &phrase,
                None,
            ),
            false,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the phrase's summary", |s| {
            s.thread(PHRASES, &phrase).iter().any(|m| {
                m.is_bot()
                    && m.blocks.as_ref().is_some_and(|b| {
                        b.to_string().contains("approve") || b.to_string().contains("retry")
                    })
            })
        })
        .await;
    assert!(
        slack
            .thread(CHANNEL, &elsewhere)
            .iter()
            .all(|m| !m.is_bot()),
        "no phrase trigger outside its channels"
    );
    assert!(
        slack.thread(PHRASES, &bot_ts).iter().all(|m| !m.is_bot()),
        "bots never trigger"
    );
    assert_eq!(env.svc.store.recent_tasks(10).await.unwrap().len(), 2);

    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_a_running_task() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = slack_env(&slack).await;
    env.svc
        .store
        .set_channel_repo("slack", CHANNEL, &repo.display().to_string())
        .await
        .unwrap();
    let never = Arc::new(Notify::new());
    env.model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            json!({"title": "Slow", "problem": "p"}),
        )],
    );
    env.model.script(
        1,
        vec![Turn::Gated(
            never.clone(),
            Box::new(Turn::Text("late".into())),
        )],
    );
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;

    let parent = slack.post_as_user(CHANNEL, ALICE, "slow thing", None);
    let (mention, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    // The rollout is waiting on the model: the status message shows Cancel.
    env.model.wait_for_requests(2).await;
    let status = slack
        .wait_for("the status message with Cancel", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("\"cancel\""))
            })
        })
        .await;
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    // Bob may not cancel; Alice may.
    for user in [BOB, ALICE] {
        let click =
            slack.block_actions(user, CHANNEL, &status.ts, Some(&parent), "cancel", &task.id);
        let e = slack.send_envelope("interactive", click, false).await;
        slack.ack(&e).await;
    }
    slack
        .wait_until("the cancellation", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.text.contains("Cancelled by <@U222>"))
        })
        .await;
    slack
        .wait_until("the failed reaction", |s| {
            s.reactions(CHANNEL, &mention).contains(&"x".to_string())
        })
        .await;
    // The status message ends saying so, not "Done.".
    let ended = slack.message(CHANNEL, &status.ts).unwrap();
    assert!(
        ended.text.contains("Cancelled.") && !ended.text.contains("Done."),
        "{}",
        ended.text
    );
    assert!(
        slack
            .ephemerals()
            .iter()
            .any(|m| m.user == BOB && m.text.contains("can cancel"))
    );
    let task = env.svc.store.task(&task.id).await.unwrap().unwrap();
    assert_eq!(task.state, TaskState::Cancelled);
    env.assert_nothing_left(&task.id).await;
    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_then_revise_then_run_it() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = slack_env(&slack).await;
    env.svc
        .store
        .set_channel_repo("slack", CHANNEL, &repo.display().to_string())
        .await
        .unwrap();
    // Seed 0 is the spec and the plans; seed 1 the rollout that runs the agreed plan.
    env.model.script(
        0,
        vec![
            Turn::Call(
                "write_spec",
                json!({"title": "Fix add", "problem": "add subtracts"}),
            ),
            Turn::Call(
                "write_plan",
                json!({"plan": "1. Change `-` to `+` in calc.sh.\n2. Touch sub() too."}),
            ),
            Turn::Call(
                "write_plan",
                json!({"plan": "1. Change `-` to `+` in add() only."}),
            ),
        ],
    );
    give_up(&env);
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;

    let parent = slack.post_as_user(CHANNEL, ALICE, "add is broken", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> plan", Some(&parent))
        .await;
    slack.ack(&e).await;
    let plan_message = slack
        .wait_for("the plan", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("Touch sub()"))
            })
        })
        .await;
    let blocks = plan_message.blocks.clone().unwrap().to_string();
    assert!(
        blocks.contains("\"run_plan\"") && blocks.contains("\"revise_plan\""),
        "{blocks}"
    );
    assert!(
        env.svc.store.recent_tasks(5).await.unwrap().is_empty(),
        "nothing runs before Run it"
    );
    let value = |b: &str, action: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(b).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(|block| block["elements"].as_array())
            .flatten()
            .find(|el| el["action_id"] == action)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first_plan = value(&blocks, "revise_plan");

    // Revise, with feedback that reaches the model.
    let click = slack.block_actions(
        ALICE,
        CHANNEL,
        &plan_message.ts,
        Some(&parent),
        "revise_plan",
        &first_plan,
    );
    let e = slack.send_envelope("interactive", click, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("the revise form", |s| !s.views_opened().is_empty())
        .await;
    let submit = slack.view_submission(
        ALICE,
        "revise_plan",
        &first_plan,
        json!({"feedback": {"feedback": {"type": "plain_text_input", "value": "Leave sub() alone."}}}),
    );
    let e = slack.send_envelope("interactive", submit, true).await;
    slack.ack(&e).await;
    let revised = slack
        .wait_for("the revised plan", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("in add() only"))
            })
        })
        .await;
    let asked = env.model.received_by(0)[2].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        asked.contains("Leave sub() alone.") && asked.contains("Touch sub() too."),
        "{asked}"
    );

    // Run it (twice: one task), and the agents get the agreed plan.
    let second_plan = value(&revised.blocks.clone().unwrap().to_string(), "run_plan");
    for user in [BOB, ALICE, ALICE] {
        let click = slack.block_actions(
            user,
            CHANNEL,
            &revised.ts,
            Some(&parent),
            "run_plan",
            &second_plan,
        );
        let e = slack.send_envelope("interactive", click, false).await;
        slack.ack(&e).await;
    }
    slack
        .wait_until("the task's summary", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("gave up"))
            })
        })
        .await;
    assert!(
        slack
            .ephemerals()
            .iter()
            .any(|m| m.user == BOB && m.text.contains("can run or revise"))
    );
    assert_eq!(env.svc.store.recent_tasks(5).await.unwrap().len(), 1);
    let prompt = env.model.received_by(1)[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.contains("## Plan agreed in the thread") && prompt.contains("in add() only"),
        "{prompt}"
    );
    running.stop(&shutdown).await;
}

/// A click on the repository menu, as Slack sends it for a `static_select`.
fn choose(
    slack: &FakeSlack,
    user: &str,
    message_ts: &str,
    parent: &str,
    value: &str,
) -> serde_json::Value {
    let mut payload = slack.block_actions(
        user,
        CHANNEL,
        message_ts,
        Some(parent),
        "choose_repo",
        value,
    );
    let action = &mut payload["actions"][0];
    let block_id = action["block_id"].clone();
    *action = json!({
        "type": "static_select",
        "action_id": "choose_repo",
        "block_id": block_id,
        "selected_option": {"text": {"type": "plain_text", "text": "acme/calc"}, "value": value},
        "placeholder": {"type": "plain_text", "text": "Choose a repository"},
        "action_ts": "1700000300.000001"
    });
    payload
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_repository_is_asked_for_and_only_the_requester_answers() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = slack.api_base();
    let url = repo.display().to_string();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.attempts = Some(1);
        c.repos = vec![threadsmith_bot::config::RepoSection {
            name: "acme/calc".into(),
            url,
            ..Default::default()
        }];
    })
    .await;
    env.model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            json!({"title": "Fix add", "problem": "add subtracts"}),
        )],
    );
    give_up(&env);
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;

    let parent = slack.post_as_user(CHANNEL, ALICE, "add is broken", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    let question = slack
        .wait_for("the question", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("choose_repo"))
            })
        })
        .await;
    let blocks = question.blocks.clone().unwrap();
    let value = blocks[1]["elements"][0]["options"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(value.ends_with("|acme/calc"), "{value}");
    assert!(question.text.contains("<@U222>, which repository"));

    // Only the requester may answer.
    let e = slack
        .send_envelope(
            "interactive",
            choose(&slack, BOB, &question.ts, &parent, &value),
            false,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("bob's refusal", |s| {
            s.ephemerals()
                .iter()
                .any(|m| m.user == BOB && m.text.contains("Only <@U222>"))
        })
        .await;
    let e = slack
        .send_envelope(
            "interactive",
            choose(&slack, ALICE, &question.ts, &parent, &value),
            false,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the summary", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("gave up"))
            })
        })
        .await;
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    assert_eq!(task.repo, "acme/calc");
    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_question_gives_up_politely() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.question_timeout_secs = Some(1);
        c.repos = vec![threadsmith_bot::config::RepoSection {
            name: "acme/calc".into(),
            url: "/nowhere".into(),
            ..Default::default()
        }];
    })
    .await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;
    let parent = slack.post_as_user(CHANNEL, ALICE, "add is broken", None);
    let (mention, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the polite end", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.is_bot() && m.text.contains("No repository was chosen"))
        })
        .await;
    slack
        .wait_until("the working reaction removed", |s| {
            s.reactions(CHANNEL, &mention).is_empty()
        })
        .await;
    assert!(env.svc.store.recent_tasks(5).await.unwrap().is_empty());
    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_post_is_retried_after_retry_after() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let env = slack_env(&slack).await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;
    slack.fail_next("chat.postMessage", 429, Some(1));
    let parent = slack.post_as_user(CHANNEL, ALICE, "hello", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> help", Some(&parent))
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the help, after the 429", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| m.is_bot())
        })
        .await;
    assert_eq!(
        slack.calls_to("chat.postMessage").len(),
        2,
        "one 429, one success"
    );
    assert_eq!(
        slack
            .thread(CHANNEL, &parent)
            .iter()
            .filter(|m| m.is_bot())
            .count(),
        1
    );
    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_fix_with_a_description_or_a_thread_link() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = slack_env(&slack).await;
    env.svc
        .store
        .set_channel_repo("slack", CHANNEL, &repo.display().to_string())
        .await
        .unwrap();
    env.model.script(
        0,
        vec![
            Turn::Call(
                "write_spec",
                json!({"title": "From a description", "problem": "add subtracts"}),
            ),
            Turn::Call(
                "write_spec",
                json!({"title": "From a link", "problem": "add subtracts"}),
            ),
        ],
    );
    env.model
        .script(1, vec![Turn::Call("give_up", json!({"reason": "one"}))]);
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;

    // `/fix <description>` opens a thread with the description and starts a task in it.
    let cmd = slack.slash_command("/fix", "add(2, 3) is -1 <!channel>", CHANNEL, ALICE);
    let e = slack.send_envelope("slash_commands", cmd, true).await;
    slack.ack(&e).await;
    let opening = slack
        .wait_for("the new thread", |s| {
            s.messages(CHANNEL)
                .into_iter()
                .find(|m| m.is_bot() && m.thread_ts.is_none())
        })
        .await;
    assert!(
        opening.text.contains("<@U222> asked: add(2, 3) is -1"),
        "{}",
        opening.text
    );
    assert!(
        !opening.text.contains("<!channel>"),
        "the description cannot ping: {}",
        opening.text
    );
    slack
        .wait_until("its summary", |s| {
            s.thread(CHANNEL, &opening.ts).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("gave up"))
            })
        })
        .await;

    // `/fix <thread link>` starts a task from an existing thread.
    env.model.reset();
    env.model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            json!({"title": "From a link", "problem": "add subtracts"}),
        )],
    );
    env.model
        .script(1, vec![Turn::Call("give_up", json!({"reason": "two"}))]);
    let parent = slack.post_as_user(CHANNEL, BOB, "calc is wrong", None);
    let link = format!(
        "https://fake.slack.com/archives/{CHANNEL}/p{}",
        parent.replace('.', "")
    );
    let e = slack
        .send_envelope(
            "slash_commands",
            slack.slash_command("/fix", &link, CHANNEL, ALICE),
            true,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the linked thread's summary", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("gave up"))
            })
        })
        .await;
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    assert_eq!(task.title, "From a link");

    // `/fix status` lists them, privately.
    let e = slack
        .send_envelope(
            "slash_commands",
            slack.slash_command("/fix", "status", CHANNEL, BOB),
            true,
        )
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the status", |s| {
            s.ephemerals().iter().any(|m| {
                m.user == BOB
                    && m.text.contains("From a link")
                    && m.text.contains("From a description")
            })
        })
        .await;
    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_of_a_maintainers_group_may_approve() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    slack.add_group("S777", &[BOB]);
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = slack.api_base();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.maintainer_groups = vec!["S777".into()];
        c.attempts = Some(1);
        // The channel names the repository by its path.
        c.allow_unlisted_repos = Some(true);
    })
    .await;
    env.svc
        .store
        .set_channel_repo("slack", CHANNEL, &repo.display().to_string())
        .await
        .unwrap();
    give_up(&env);
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;
    let parent = slack.post_as_user(CHANNEL, ALICE, "add is broken", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    let summary = slack
        .wait_for("the summary", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("\"retry\""))
            })
        })
        .await;
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    let click = slack.block_actions(
        BOB,
        CHANNEL,
        &summary.ts,
        Some(&parent),
        "approve",
        &format!("{}:1", task.id),
    );
    let e = slack.send_envelope("interactive", click, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("bob's approval", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.text.contains("approved by <@U333>"))
        })
        .await;
    assert_eq!(slack.calls_to("usergroups.users.list").len(), 1);
    running.stop(&shutdown).await;
}
