//! Slack's other entry points: `/fix` commands, the "Fix this" message shortcut, the bare
//! trigger phrase, bots that never trigger, the spec fallback, and Cancel. Plans and the
//! repository question are in `slack_plans_questions.rs`.

mod slack_common;
use slack_common::*;

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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    // A repository the bot is not configured for is refused: chat cannot make it clone anything.
    slack.slash("/fix", "repo /etc", CHANNEL, BOB).await;
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
    slack.slash("/fix", "help", CHANNEL, BOB).await;
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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
async fn a_rate_limited_post_is_retried_after_retry_after() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let env = slack_env(&slack).await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    // `/fix <description>` opens a thread with the description and starts a task in it.
    slack
        .slash("/fix", "add(2, 3) is -1 <!channel>", CHANNEL, ALICE)
        .await;
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
    let link = slack.thread_link(CHANNEL, &parent);
    slack.slash("/fix", &link, CHANNEL, ALICE).await;
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
    slack.slash("/fix", "status", CHANNEL, BOB).await;
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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
