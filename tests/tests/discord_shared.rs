//! Two bot processes share one queue (deploy/compose.yaml runs two): the process that takes a
//! Discord click from the inbox may not be the one whose gateway received it. What it needs to
//! act — the clicker's roles, the interaction's token for a private answer — comes with the
//! stored event.

use std::sync::Arc;

use threadsmith_bot::discord::{DiscordPort, http};
use threadsmith_bot::orchestrator::{Bot, ChatSettings};
use threadsmith_bot::pipeline::Services;
use threadsmith_bot::serve;
use threadsmith_runner::secret::Secret;
use threadsmith_runner::{Docker, ModelClient, RepoCache};
use threadsmith_tests::discord_fake::{self as fake_discord, FakeDiscord, Msg};
use threadsmith_tests::env;
use threadsmith_tests::gitrepo::calc_repo;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "1300000000000000001";
const ALICE: &str = "1400000000000000001";
const BOB: &str = "1400000000000000002";
const CAROL: &str = "1400000000000000003";
const MAINTAINERS: &str = "1500000000000000001";

fn bot_messages(fake: &FakeDiscord, channel: &str) -> Vec<Msg> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m.is_bot)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_click_taken_by_the_other_process_knows_the_roles_and_answers_privately() {
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    fake.add_user(BOB, "bob", &[]);
    fake.add_user(CAROL, "carol", &[MAINTAINERS]);
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = fake.api_base();
    let repo_name = repo.display().to_string();
    let env = env(move |c| {
        c.discord.token = Some(Secret::new(fake_discord::TOKEN));
        c.discord.api_url = Some(api);
        c.discord.maintainer_roles = vec![MAINTAINERS.into()];
        c.default_repo = Some(repo_name);
        c.attempts = Some(1);
        c.status_edit_interval_ms = Some(0);
        // Process A handles one event at a time: the running task holds it.
        c.workers.concurrent_events = Some(1);
        c.workers.poll_ms = Some(50);
    })
    .await;
    let hold = env.model.hold_rollouts(1..=1);

    // Process A: the gateway (it receives every click) and a task that keeps its only slot.
    let shutdown_a = CancellationToken::new();
    let a = serve::start(env.svc.clone(), shutdown_a.clone())
        .await
        .unwrap();
    fake.wait_connected().await;
    let starter = fake.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh");
    let thread = fake.start_thread(CHANNEL, &starter, "add");
    fake.post_as_user(
        &thread,
        ALICE,
        &format!("<@{}> fix this", fake_discord::BOT_ID),
    );
    let status = fake
        .wait_for("the status message with Cancel", |f| {
            bot_messages(f, &thread)
                .into_iter()
                .find(|m| m.components.to_string().contains("cancel:"))
        })
        .await;
    fake.wait_until("the rollout to be held", |_| {
        !env.model.received_by(1).is_empty()
    })
    .await;

    // Process B: another bot on the same database, with no gateway and nothing in memory.
    let config = (*env.svc.config).clone();
    let store = threadsmith_bot::store::open(&config.database_url())
        .await
        .unwrap();
    let docker = Docker::connect().await.unwrap();
    let client = config.model_config().map(|m| ModelClient::new(m).unwrap());
    let repos = RepoCache::new(config.data_dir());
    let svc_b = Services::new(
        config,
        store,
        threadsmith_bot::wiring::runner(docker, client),
        repos,
    )
    .unwrap();
    let http_b = http(fake_discord::TOKEN, Some(&fake.api_base()));
    http_b.set_application_id(serenity::all::ApplicationId::new(
        fake_discord::APP_ID.parse().unwrap(),
    ));
    let port_b = Arc::new(DiscordPort::new(Arc::new(http_b)));
    let settings = ChatSettings {
        platform: threadsmith_bot::chat::Platform::Discord,
        bot_user_id: fake_discord::BOT_ID.into(),
        bot_name: "threadsmith".into(),
        slash_command: "/fix".into(),
        maintainer_groups: vec![MAINTAINERS.into()],
        trigger_phrases: vec!["fix this".into()],
        ..ChatSettings::default()
    };
    let b = Bot::new(svc_b, port_b, settings);
    let shutdown_b = CancellationToken::new();
    let b_loop = tokio::spawn(b.run(shutdown_b.clone()));

    // Bob (not a maintainer) clicks Cancel: B refuses, privately, with Bob's interaction.
    let cancel = status
        .components
        .to_string()
        .split('"')
        .find(|s| s.starts_with("cancel:"))
        .unwrap()
        .to_string();
    let bob_click = fake.button_click(BOB, &thread, &status.id, &cancel);
    let bob_token = bob_click["token"].as_str().unwrap().to_string();
    fake.send_interaction(bob_click).await;
    fake.wait_until("Bob's private refusal", |f| {
        f.webhook_messages().iter().any(|w| {
            w.token == bob_token
                && w.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("Only the person who asked"))
        })
    })
    .await;
    assert!(
        !bot_messages(&fake, &thread)
            .iter()
            .any(|m| m.content.contains("Only the person who asked")),
        "the refusal was not posted in the thread"
    );

    // Carol (maintainer role, shown only in her click) cancels: B accepts, and A stops the task.
    let carol_click = fake.button_click(CAROL, &thread, &status.id, &cancel);
    fake.send_interaction(carol_click).await;
    fake.wait_until("the cancellation", |f| {
        bot_messages(f, &thread)
            .iter()
            .any(|m| m.content.contains(&format!("Cancelled by <@{CAROL}>")))
    })
    .await;
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    // Looked at after every change of a task (both processes share this store).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut changes = env.svc.store.task_changes();
        let t = env.svc.store.task(&task.id).await.unwrap().unwrap();
        if t.state.as_str() == "cancelled" {
            break;
        }
        tokio::time::timeout_at(deadline, changes.changed())
            .await
            .unwrap_or_else(|_| panic!("the task was not cancelled: {:?}", t.state))
            .unwrap();
    }
    hold.notify_waiters();
    shutdown_b.cancel();
    b_loop.await.unwrap();
    a.stop(&shutdown_a).await;
    env.assert_nothing_left(&task.id).await;
}
