//! Slack: a plan proposed, revised and run; the repository asked for when none is known (only
//! the requester answers; an unanswered question gives up politely).

mod slack_common;
use slack_common::*;

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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
