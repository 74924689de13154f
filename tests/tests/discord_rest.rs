//! Discord's REST side and start-up against the fake Discord: long threads read page by page,
//! 429s waited out for as long as Discord asks, an unreachable Discord retried at start-up and a
//! refused token said as such.

use std::time::Duration;

use threadsmith_bot::serve;
use threadsmith_runner::secret::Secret;
use threadsmith_tests::discord_fake::{self as fake_discord, FakeDiscord, Msg};
use threadsmith_tests::env;
use threadsmith_tests::gitrepo::calc_repo;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "1300000000000000001";
const ALICE: &str = "1400000000000000001";

fn bot_messages(fake: &FakeDiscord, channel: &str) -> Vec<Msg> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m.is_bot)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_thread_is_read_whole_oldest_first_starter_included() {
    use threadsmith_bot::chat::{ChatPort, ThreadRef};
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let starter = fake.post_as_user(CHANNEL, ALICE, "message 0");
    let thread = fake.start_thread(CHANNEL, &starter, "long");
    for i in 1..=250 {
        fake.post_as_user(&thread, ALICE, &format!("message {i}"));
    }
    let http = threadsmith_bot::discord::http(fake_discord::TOKEN, Some(&fake.api_base()));
    let port = threadsmith_bot::discord::DiscordPort::new(std::sync::Arc::new(http));
    let messages = port
        .read_thread(&ThreadRef {
            platform: "discord".into(),
            workspace: fake_discord::GUILD_ID.into(),
            channel: CHANNEL.into(),
            thread: thread.clone(),
        })
        .await
        .unwrap();
    let texts: Vec<String> = messages.iter().map(|m| m.text.clone()).collect();
    let want: Vec<String> = (0..=250).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, want);
    assert!(messages.iter().all(|m| m.author == "alice" && !m.is_bot));
    let pages = fake
        .calls()
        .iter()
        .filter(|(m, p)| m == "GET" && p.ends_with(&format!("{thread}/messages")))
        .count();
    assert_eq!(pages, 3, "100 per page");
}

#[tokio::test(flavor = "multi_thread")]
async fn discord_rate_limits_are_waited_out_and_retried_once() {
    use threadsmith_bot::chat::{ChatPort, OutMessage, ThreadRef};
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let starter = fake.post_as_user(CHANNEL, ALICE, "add() subtracts");
    let thread = fake.start_thread(CHANNEL, &starter, "bug");
    let http = threadsmith_bot::discord::http(fake_discord::TOKEN, Some(&fake.api_base()));
    let port = threadsmith_bot::discord::DiscordPort::new(std::sync::Arc::new(http));
    let place = ThreadRef {
        platform: "discord".into(),
        workspace: fake_discord::GUILD_ID.into(),
        channel: CHANNEL.into(),
        thread: thread.clone(),
    };
    let path = format!("/api/v10/channels/{thread}/messages");
    // Discord asks for 1.37 s (its Retry-After header says 2): the retry comes after 1.37 s,
    // not after a guessed back-off (0.5 s) nor the rounded header.
    fake.rate_limit_next("POST", &path, 1.37);
    fake.rate_limit_next("GET", &path, 0.2);
    port.post(&place, &OutMessage::Text("Working on it.".into()))
        .await
        .expect("posted after the rate limit");
    let posts: Vec<std::time::Instant> = fake
        .arrivals()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p == &path)
        .map(|(_, _, at)| at)
        .collect();
    assert_eq!(posts.len(), 2, "one 429, one retry");
    let waited = posts[1] - posts[0];
    assert!(
        waited >= Duration::from_millis(1370) && waited < Duration::from_millis(1900),
        "waited {waited:?} for a retry_after of 1.37 s"
    );
    let bots = bot_messages(&fake, &thread);
    assert_eq!(bots.len(), 1, "posted once");
    let messages = port.read_thread(&place).await.expect("read after a 429");
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["add() subtracts", "Working on it."]);

    // A wait longer than the cap is not waited: the call ends rate-limited at once, and a stop
    // ends a wait in progress.
    fake.rate_limit_next("POST", &path, 120.0);
    let started = std::time::Instant::now();
    let refused = port.post(&place, &OutMessage::Text("later".into())).await;
    assert!(
        matches!(refused, Err(threadsmith_bot::chat::ChatError::RateLimited)),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let stop = CancellationToken::new();
    let http = threadsmith_bot::discord::http(fake_discord::TOKEN, Some(&fake.api_base()));
    let stopping = threadsmith_bot::discord::DiscordPort::new(std::sync::Arc::new(http))
        .stopping_with(stop.clone());
    let path = format!("/api/v10/channels/{thread}/messages/");
    fake.rate_limit_next("PATCH", &path, 30.0);
    let bot_msg = bots[0].id.clone();
    let edit = tokio::spawn(async move {
        stopping
            .update(&place, &bot_msg, &OutMessage::Text("edited".into()))
            .await
    });
    fake.wait_until("the edit to be rate-limited", |f| {
        f.calls()
            .iter()
            .any(|(m, p)| m == "PATCH" && p.starts_with(&path))
    })
    .await;
    let started = std::time::Instant::now();
    stop.cancel();
    let ended = edit.await.unwrap();
    assert!(
        matches!(ended, Err(threadsmith_bot::chat::ChatError::RateLimited)),
        "{ended:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_discord_is_retried_and_a_refused_token_is_said() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    // Nothing answers HTTP at this address yet: the first attempt is accepted and dropped.
    let early = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = early.local_addr().unwrap();
    let api = format!("http://{addr}");
    let first = env(move |c| {
        c.discord.token = Some(Secret::new(fake_discord::TOKEN));
        c.discord.api_url = Some(api);
        c.default_repo = Some(repo.display().to_string());
    })
    .await;
    let shutdown = CancellationToken::new();
    let starting = tokio::spawn(serve::start(first.svc.clone(), shutdown.clone()));
    let (conn, _) = tokio::time::timeout(Duration::from_secs(30), early.accept())
        .await
        .expect("the bot tried to reach Discord")
        .unwrap();
    drop(conn);
    drop(early);
    // Discord comes up where the bot keeps trying: start-up completes and the gateway connects.
    let fake = FakeDiscord::start_on(tokio::net::TcpListener::bind(addr).await.unwrap());
    fake.add_channel(CHANNEL, "bugs");
    let running = tokio::time::timeout(Duration::from_secs(30), starting)
        .await
        .expect("start-up retried")
        .unwrap()
        .expect("started once Discord answered");
    fake.wait_connected().await;
    running.stop(&shutdown).await;

    // A token Discord refuses ends start-up with that reason.
    let fake = FakeDiscord::start().await;
    let api = fake.api_base();
    let second = env(move |c| {
        c.discord.token = Some(Secret::new("not-the-token"));
        c.discord.api_url = Some(api);
    })
    .await;
    let error = serve::start(second.svc.clone(), CancellationToken::new())
        .await
        .err()
        .expect("a refused token is an error")
        .to_string();
    assert!(error.contains("refused the bot token"), "{error}");
}

/// Discord without the Message Content intent (the application's setting): REST reads blank
/// the thread's messages that do not mention the bot, the bot reads the setting at start-up
/// (and does not ask the gateway for an intent it would be refused), and the thread is told
/// it could not be read in full; the spec names the withheld messages instead of reading
/// nothing. With the intent (the fake's default, and every other test), threads read whole.
#[tokio::test(flavor = "multi_thread")]
async fn without_message_content_the_thread_is_read_blank_and_the_bot_says_so() {
    use threadsmith_bot::chat::{ChatPort, ThreadRef};
    let fake = FakeDiscord::start().await;
    fake.set_message_content_intent(false);
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let starter = fake.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh");
    let thread = fake.start_thread(CHANNEL, &starter, "add is broken");
    let place = ThreadRef {
        platform: "discord".into(),
        workspace: fake_discord::GUILD_ID.into(),
        channel: CHANNEL.into(),
        thread: thread.clone(),
    };

    // What the fake's REST gives an application without the intent.
    let http = threadsmith_bot::discord::http(fake_discord::TOKEN, Some(&fake.api_base()));
    let port = threadsmith_bot::discord::DiscordPort::new(std::sync::Arc::new(http))
        .with_message_content(false);
    let read = port.read_thread(&place).await.unwrap();
    assert_eq!(read.len(), 1);
    assert!(read[0].hidden && read[0].text.is_empty(), "{read:?}");

    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = fake.api_base();
    let env = env(move |c| {
        c.discord.token = Some(Secret::new(fake_discord::TOKEN));
        c.discord.api_url = Some(api);
        // Asked for, but the application does not have it: Discord would close with 4014.
        c.discord.message_content = true;
        c.default_repo = Some(repo.display().to_string());
        c.attempts = Some(1);
        c.status_edit_interval_ms = Some(0);
    })
    .await;
    threadsmith_tests::script_calc_fix(&env);
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    fake.wait_connected().await;
    fake.post_as_user(
        &thread,
        ALICE,
        &format!("<@{}> fix this", fake_discord::BOT_ID),
    );
    let notice = fake
        .wait_for("the notice that the thread was not read in full", |f| {
            bot_messages(f, &thread)
                .into_iter()
                .find(|m| m.content.contains("Message Content Intent"))
        })
        .await;
    assert!(
        notice
            .content
            .contains("could not read this thread in full"),
        "{}",
        notice.content
    );
    // The notice goes out before the spec request is made: wait for that request.
    env.model.wait_for_requests(1).await;
    let asked = env
        .model
        .received_by(0)
        .first()
        .map(|r| {
            r.body["messages"][1]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .expect("the spec request");
    assert!(
        asked.contains("could not be read") && !asked.contains("gives -1"),
        "{asked}"
    );
    fake.wait_until("the task to end", |f| {
        bot_messages(f, &thread)
            .iter()
            .any(|m| m.components.to_string().contains("retry:"))
    })
    .await;
    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    running.stop(&shutdown).await;
    for t in tasks {
        env.assert_nothing_left(&t.id).await;
    }

    // With the intent, the same thread reads whole.
    fake.set_message_content_intent(true);
    let read = port.read_thread(&place).await.unwrap();
    assert!(read.iter().all(|m| !m.hidden), "{read:?}");
    assert!(read[0].text.contains("gives -1"), "{read:?}");
}
