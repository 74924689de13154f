//! Discord end to end: the real serve loop and Discord adapter (serenity's gateway client and
//! HTTP client) against a stateful fake Discord (REST API and gateway WebSocket), the real
//! runner, real Docker and the scripted model.

use std::time::Duration;

use serde_json::Value;
use threadsmith_runner::secret::Secret;
use threadsmith_tests::discord_fake::{self as fake_discord, FakeDiscord, Msg};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{TestEnv, env, script_calc_fix};

const CHANNEL: &str = "1300000000000000001";
const ALICE: &str = "1400000000000000001";
const BOB: &str = "1400000000000000002";
const CAROL: &str = "1400000000000000003";
const MAINTAINERS: &str = "1500000000000000001";

async fn discord_env(fake: &FakeDiscord, repo: &std::path::Path) -> TestEnv {
    discord_env_with(fake, repo, |_| {}).await
}

async fn discord_env_with(
    fake: &FakeDiscord,
    repo: &std::path::Path,
    more: impl FnOnce(&mut threadsmith_bot::config::Config),
) -> TestEnv {
    let api = fake.api_base();
    let repo = repo.display().to_string();
    env(move |c| {
        c.discord.token = Some(Secret::new(fake_discord::TOKEN));
        c.discord.api_url = Some(api);
        c.discord.maintainer_roles = vec![MAINTAINERS.into()];
        c.default_repo = Some(repo);
        c.attempts = Some(2);
        c.status_edit_interval_ms = Some(0);
        more(c);
    })
    .await
}

/// The spec requests the model received so far (seed 0), as their user message.
fn spec_requests(env: &TestEnv) -> Vec<String> {
    env.model
        .received_by(0)
        .iter()
        .map(|r| {
            r.body["messages"][1]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_phrase_fix_this_a_message_link_and_a_dm_are_each_answered() {
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = discord_env_with(&fake, &repo, |c| {
        c.discord.phrase_channels = vec![CHANNEL.into()];
        c.discord.message_content = true;
        c.attempts = Some(1);
    })
    .await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    fake.wait_connected().await;
    let ended = |f: &FakeDiscord, thread: &str| {
        bot_messages(f, thread)
            .into_iter()
            .any(|m| has_component(&m, "retry:"))
    };

    // A bare phrase in a phrase channel's thread, with instructions after a colon.
    let starter = fake.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh");
    let thread = fake.start_thread(CHANNEL, &starter, "add is broken");
    fake.post_as_user(&thread, ALICE, "fix this: keep sub() as it is");
    fake.wait_until("the phrase's task to end", |f| ended(f, &thread))
        .await;
    let asked = spec_requests(&env);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("added: keep sub() as it is"),
        "{}",
        asked[0]
    );

    // "Fix this" on a message: the task reads the thread; the command adds no instructions.
    let report = fake.post_as_user(CHANNEL, ALICE, "sub(5, 3) gives 8 in calc.sh");
    let cmd = fake.message_command(ALICE, CHANNEL, &report, "Fix this");
    fake.send_interaction(cmd).await;
    fake.wait_until("the command's task to end", |f| ended(f, &report))
        .await;
    let asked = spec_requests(&env);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[1].contains("sub(5, 3) gives 8"), "{}", asked[1]);
    assert!(
        !asked[1].contains("added:") && !asked[1].contains(fake_discord::BOT_ID),
        "{}",
        asked[1]
    );

    // /fix <link to a message inside a thread>: the task runs in that thread.
    let other = fake.post_as_user(CHANNEL, ALICE, "mul(2, 3) gives 5 in calc.sh");
    let other_thread = fake.start_thread(CHANNEL, &other, "mul");
    let detail = fake.post_as_user(&other_thread, ALICE, "seen on main too");
    let link = format!(
        "https://discord.com/channels/{}/{other_thread}/{detail}",
        fake_discord::GUILD_ID
    );
    let slash = fake.slash_command(ALICE, CHANNEL, "fix", Some(&link));
    fake.send_interaction(slash).await;
    fake.wait_until("the linked thread's task to end", |f| {
        ended(f, &other_thread)
    })
    .await;
    let asked = spec_requests(&env);
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(
        asked[2].contains("mul(2, 3) gives 5") && asked[2].contains("seen on main too"),
        "{}",
        asked[2]
    );
    assert!(
        !fake.webhook_messages().iter().any(|w| w.body["content"]
            .as_str()
            .is_some_and(|c| c.contains("not a thread"))),
        "the link was taken"
    );

    // A direct message: answered that the bot works in servers only, once.
    let (dm, _) = fake.post_dm(ALICE, "fix this please");
    let answer = fake
        .wait_for("the answer to a DM", |f| {
            bot_messages(f, &dm).into_iter().next()
        })
        .await;
    assert!(
        answer.content.contains("servers only"),
        "{}",
        answer.content
    );

    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    assert_eq!(tasks.len(), 3);
    running.stop(&shutdown).await;
    assert_eq!(bot_messages(&fake, &dm).len(), 1);
    for t in tasks {
        env.assert_nothing_left(&t.id).await;
    }
}

fn bot_messages(fake: &FakeDiscord, channel: &str) -> Vec<Msg> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m.is_bot)
        .collect()
}

fn has_component(m: &Msg, id: &str) -> bool {
    m.components.to_string().contains(id)
}

/// The message with the task id taken out, for a snapshot.
fn redacted(m: &Msg, task_id: &str) -> String {
    let v = serde_json::json!({
        "content": m.content,
        "embeds": m.embeds,
        "components": m.components,
        "allowed_mentions": m.allowed_mentions,
    });
    threadsmith_tests::redact_costs(&serde_json::to_string_pretty(&v).unwrap())
        .replace(task_id, "<task>")
        .replace(&task_id[..8], "<task8>")
}

/// The first response to an interaction (type 4 message, 5 deferred, 6 deferred update, 9
/// modal), once it came.
async fn first_response(fake: &FakeDiscord, id: &str) -> Value {
    fake.wait_for("the interaction's response", |f| {
        f.interaction_responses(id).into_iter().next()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn fix_this_in_a_thread_to_summary_approve_and_retry() {
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    fake.add_user(BOB, "bob", &[]);
    fake.add_user(CAROL, "carol", &[MAINTAINERS]);
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = discord_env(&fake, &repo).await;
    script_calc_fix(&env);
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    fake.wait_connected().await;

    // A bug report, a thread on it, a confirmation, then the mention.
    let starter = fake.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh");
    let thread = fake.start_thread(CHANNEL, &starter, "add is broken");
    fake.post_as_user(
        &thread,
        BOB,
        "Confirmed: `bash test.sh` prints `not ok - add`",
    );
    let mention = fake.post_as_user(
        &thread,
        ALICE,
        &format!("<@{}> fix this", fake_discord::BOT_ID),
    );

    // The status message appears; then the gateway drops in the middle of the task.
    let status = fake
        .wait_for("the status message", |f| {
            bot_messages(f, &thread)
                .into_iter()
                .find(|m| has_component(m, "cancel:"))
        })
        .await;
    fake.drop_connection().await;
    // Said while the bot is cut off: delivered when it resumes.
    let asked = fake.post_as_user(&thread, BOB, &format!("<@{}> help", fake_discord::BOT_ID));
    let summary = fake
        .wait_for("the summary", |f| {
            bot_messages(f, &thread)
                .into_iter()
                .find(|m| has_component(m, "approve:"))
        })
        .await;
    fake.wait_until("reconnected", |f| f.connected()).await;
    assert_eq!(
        fake.identifies(),
        1,
        "the session was resumed, not restarted"
    );
    assert!(fake.resumes() >= 1);
    fake.wait_until("the answer to what was said during the outage", |f| {
        bot_messages(f, &thread)
            .iter()
            .any(|m| m.content.contains("Mention me"))
    })
    .await;
    assert!(!asked.is_empty());

    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(task.title, "add() subtracts instead of adding");

    // The model read the whole thread, starter message (in the parent channel) included.
    let spec_request = &env.model.received_by(0)[0];
    let thread_text = spec_request.body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(thread_text.contains("add(2, 3) gives -1"), "{thread_text}");
    assert!(thread_text.contains("Confirmed"), "{thread_text}");
    assert!(
        thread_text.find("add(2, 3)") < thread_text.find("Confirmed"),
        "oldest first: {thread_text}"
    );

    // Status edited as rollouts advanced, ending done; ✅ on the mention.
    let status = fake.message(&thread, &status.id).unwrap();
    assert!(status.edits >= 2, "{status:?}");
    assert!(status.content.contains("Done."), "{}", status.content);
    fake.wait_until("the done reaction", |f| {
        f.reactions(&thread, &mention).contains(&"✅".to_string())
    })
    .await;
    // Nothing the bot posts can ping.
    for m in bot_messages(&fake, &thread) {
        let allowed = m.allowed_mentions.clone().unwrap_or(Value::Null);
        assert_eq!(allowed["parse"], serde_json::json!([]), "{m:?}");
    }
    assert!(!summary.content.contains("@everyone"));
    insta::assert_snapshot!("discord_summary", redacted(&summary, &task.id));

    // Approve: Bob may not; the click is acknowledged at once and he is told privately.
    let click = fake.button_click(BOB, &thread, &summary.id, &format!("approve:{}:1", task.id));
    let bob_click = fake.send_interaction(click).await;
    fake.wait_until("bob's refusal", |f| {
        f.webhook_messages().iter().any(|w| {
            w.body["content"]
                .as_str()
                .is_some_and(|c| c.contains("Only the person"))
                && w.body["flags"].as_u64().is_some_and(|f| f & 64 != 0)
        })
    })
    .await;
    assert_eq!(first_response(&fake, &bob_click).await["type"], 6);
    assert!(fake.responded_within(&bob_click).unwrap() < Duration::from_secs(3));
    assert!(env.svc.store.approval(&task.id).await.unwrap().is_none());

    // Carol has the maintainers' role: accepted, once, though the click arrives twice.
    let click = fake.button_click(
        CAROL,
        &thread,
        &summary.id,
        &format!("approve:{}:1", task.id),
    );
    let first = fake.send_interaction(click.clone()).await;
    fake.send_interaction(click).await;
    fake.wait_until("the approval message", |f| {
        bot_messages(f, &thread).iter().any(|m| {
            m.content
                .contains(&format!("Rollout 1 approved by <@{CAROL}>"))
        })
    })
    .await;
    assert_eq!(fake.interaction_responses(&first).len(), 1);
    let approval = env.svc.store.approval(&task.id).await.unwrap().unwrap();
    assert_eq!(
        (approval.rollout, approval.approved_by.as_str()),
        (1, CAROL)
    );

    // Retry: the button opens a form at once; its submission (delivered twice) runs one retry
    // whose agents read the feedback.
    env.model.reset();
    script_calc_fix(&env);
    let retry = fake.button_click(ALICE, &thread, &summary.id, &format!("retry:{}", task.id));
    let retry_click = fake.send_interaction(retry).await;
    let form = first_response(&fake, &retry_click).await;
    assert_eq!(form["type"], 9, "{form}");
    assert_eq!(form["data"]["custom_id"], format!("retry:{}", task.id));
    let submit = fake.modal_submit(
        ALICE,
        &thread,
        &format!("retry:{}", task.id),
        &[("feedback", "Keep sub() as it is.")],
    );
    fake.send_interaction(submit.clone()).await;
    fake.send_interaction(submit).await;
    fake.wait_for("the retry's summary", |f| {
        bot_messages(f, &thread)
            .into_iter()
            .find(|m| m.content.contains("A retry of"))
    })
    .await;
    let prompt = env.model.received_by(1)[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(prompt.contains("Keep sub() as it is."), "{prompt}");
    assert_eq!(
        env.svc.store.recent_tasks(10).await.unwrap().len(),
        2,
        "one retry for two submissions"
    );

    running.stop(&shutdown).await;
    for t in env.svc.store.recent_tasks(10).await.unwrap() {
        env.assert_nothing_left(&t.id).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_command_and_message_command() {
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = discord_env(&fake, &repo).await;
    script_calc_fix(&env);
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    fake.wait_connected().await;
    // Registered once the session is ready, by a call of its own.
    fake.wait_until("the commands registered", |f| {
        let commands = f.registered_commands().to_string();
        commands.contains("\"fix\"") && commands.contains("Fix this")
    })
    .await;

    // /fix help: deferred privately, then answered in place.
    let help = fake.slash_command(ALICE, CHANNEL, "fix", Some("help"));
    let help_id = fake.send_interaction(help).await;
    let deferred = first_response(&fake, &help_id).await;
    assert_eq!(deferred["type"], 5, "{deferred}");
    assert_eq!(deferred["data"]["flags"], 64);
    fake.wait_until("the help text", |f| {
        f.webhook_messages().iter().any(|w| {
            w.original
                && w.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("fix this"))
        })
    })
    .await;

    // "Fix this" on a message in a channel: a thread is made from it and the task runs there.
    let report = fake.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh");
    let cmd = fake.message_command(ALICE, CHANNEL, &report, "Fix this");
    let cmd_id = fake.send_interaction(cmd).await;
    assert_eq!(first_response(&fake, &cmd_id).await["type"], 5);
    fake.wait_for("the summary in the new thread", |f| {
        bot_messages(f, &report)
            .into_iter()
            .find(|m| has_component(m, "approve:"))
    })
    .await;
    assert!(
        fake.threads()
            .iter()
            .any(|(t, parent)| *t == report && parent == CHANNEL),
        "the thread was made from the message"
    );

    // /fix <description>: a new message in the channel, a thread on it, the task in the thread.
    env.model.reset();
    script_calc_fix(&env);
    let describe = fake.slash_command(ALICE, CHANNEL, "fix", Some("add(2, 3) gives -1 in calc.sh"));
    let describe_id = fake.send_interaction(describe).await;
    assert_eq!(first_response(&fake, &describe_id).await["type"], 5);
    let opening = fake
        .wait_for("the opening message", |f| {
            bot_messages(f, CHANNEL)
                .into_iter()
                .find(|m| m.content.contains("asked: add(2, 3) gives -1"))
        })
        .await;
    fake.wait_for("the summary in its thread", |f| {
        bot_messages(f, &opening.id)
            .into_iter()
            .find(|m| has_component(m, "approve:"))
    })
    .await;
    fake.wait_until("the command answered with the thread's link", |f| {
        f.webhook_messages().iter().any(|w| {
            w.original
                && w.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(&opening.id))
        })
    })
    .await;
    let tasks = env.svc.store.recent_tasks(5).await.unwrap();
    assert_eq!(tasks.len(), 2);
    running.stop(&shutdown).await;
    for t in tasks {
        env.assert_nothing_left(&t.id).await;
    }
}
