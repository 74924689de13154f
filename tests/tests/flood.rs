//! One busy channel must not stall the others (issue 11, item 5), and the bot's own help and
//! status texts reach Slack as mrkdwn (item 18). The fake Slack enforces Slack's documented
//! limits: `chat.postMessage` about one a second per channel (a short burst allowed), the
//! method tiers per minute, with HTTP 429 and `Retry-After` beyond them.

use std::time::{Duration, Instant};

use threadsmith_tests::env;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, Message};

const BUSY: &str = "C0BUSY";
const QUIET: &str = "C0QUIET";
const ALICE: &str = "U222";
const BOB: &str = "U333";
const FLOOD: usize = 300;
/// How long the quiet channel's answer may take, from its delivery.
const BOUND: Duration = Duration::from_secs(5);

fn bot_replies(messages: &[Message]) -> usize {
    messages.iter().filter(|m| m.is_bot()).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_in_one_channel_does_not_delay_another_channel() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    // The defaults (32 events at a time, a one-second poll): what an operator runs.
    let env = env(move |c| threadsmith_tests::use_fake_slack(c, &api)).await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    // 300 help requests in the busy channel: ~300 replies at one a second.
    let mut envelopes = Vec::new();
    for _ in 0..FLOOD {
        let (_, e) = slack.mention(BUSY, ALICE, "<@UBOT> help", None).await;
        envelopes.push(e);
    }
    for e in &envelopes {
        slack.ack(e).await;
    }
    // The busy channel's queue is moving (so the bot is in the middle of the flood)...
    slack
        .wait_until("the first replies in the busy channel", |s| {
            bot_replies(&s.messages(BUSY)) >= 3
        })
        .await;

    // ... and a request in the quiet channel is answered within seconds of its delivery.
    let delivered = Instant::now();
    let (ts, e) = slack.mention(QUIET, BOB, "<@UBOT> help", None).await;
    slack.ack(&e).await;
    let answered = tokio::time::timeout(
        Duration::from_secs(30),
        slack.wait_until("the quiet channel's answer", |s| {
            s.thread(QUIET, &ts).iter().any(|m| m.is_bot())
        }),
    )
    .await;
    let latency = delivered.elapsed();
    let busy_done = slack.read(|s| bot_replies(&s.messages(BUSY)));
    println!(
        "quiet channel answered after {latency:?} (answered: {}), busy channel: {busy_done}/{FLOOD} replies",
        answered.is_ok()
    );
    assert!(
        answered.is_ok(),
        "the quiet channel was not answered within 30 s while the busy channel had {busy_done}/{FLOOD} replies"
    );
    assert!(
        latency < BOUND,
        "the quiet channel's answer took {latency:?} (bound {BOUND:?})"
    );
    assert!(
        busy_done < FLOOD,
        "the flood was over before the quiet channel asked: the test proves nothing"
    );
    // The busy channel was paced at Slack's rate, not by luck: its posts went out about one a
    // second, and nothing the fake refused was lost (every reply so far is distinct).
    let started = Instant::now();
    slack
        .wait_until("more replies in the busy channel", |s| {
            bot_replies(&s.messages(BUSY)) >= busy_done + 2
        })
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the busy channel went faster than Slack allows"
    );
    assert!(
        slack
            .rate_limited()
            .iter()
            .all(|(_, channel)| channel.as_deref() != Some(QUIET)),
        "{:?}",
        slack.rate_limited()
    );

    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn help_replies_are_slack_mrkdwn_not_raw_markdown() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let env = env(move |c| threadsmith_tests::use_fake_slack(c, &api)).await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    let (ts, e) = slack.mention(QUIET, BOB, "<@UBOT> help", None).await;
    slack.ack(&e).await;
    let reply = slack
        .wait_for("the help reply", |s| {
            s.thread(QUIET, &ts).into_iter().find(|m| m.is_bot())
        })
        .await;
    let blocks = reply.blocks.clone().unwrap_or_default().to_string();
    for text in [&reply.text, &blocks] {
        assert!(text.contains("*Mention me*"), "{text}");
        assert!(!text.contains("**"), "raw Markdown in Slack: {text}");
    }

    slack.slash("/fix", "help", QUIET, BOB).await;
    let help = slack
        .wait_for("the slash help", |s| {
            s.ephemerals().into_iter().find(|m| m.user == BOB)
        })
        .await;
    assert!(help.text.contains("*Slash command*"), "{}", help.text);
    assert!(
        !help.text.contains("**"),
        "raw Markdown in Slack: {}",
        help.text
    );
    running.stop(&shutdown).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_slash_commands_in_one_channel_does_not_delay_another_channel() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let env = env(move |c| threadsmith_tests::use_fake_slack(c, &api)).await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    // 300 private answers: three times what chat.postEphemeral's tier (Tier 4, 100 a minute)
    // lets through at once, so that the tier is spent.
    let mut envelopes = Vec::new();
    for _ in 0..FLOOD {
        let cmd = slack.slash_command("/fix", "help", BUSY, ALICE);
        envelopes.push(slack.send_envelope("slash_commands", cmd, true).await);
    }
    for e in &envelopes {
        slack.ack(e).await;
    }
    slack
        .wait_until("the ephemerals' tier spent", |s| {
            s.rate_limited()
                .iter()
                .any(|(method, _)| method == "chat.postEphemeral")
        })
        .await;

    let delivered = Instant::now();
    slack.slash("/fix", "help", QUIET, BOB).await;
    let answered = tokio::time::timeout(
        Duration::from_secs(30),
        slack.wait_until("the quiet channel's private answer", |s| {
            s.ephemerals().iter().any(|m| m.channel == QUIET)
        }),
    )
    .await;
    let latency = delivered.elapsed();
    let busy_done = slack.read(|s| s.ephemerals().len());
    println!(
        "quiet channel's ephemeral after {latency:?} (answered: {}), busy channel: {busy_done}/{FLOOD}",
        answered.is_ok()
    );
    assert!(answered.is_ok(), "not answered within 30 s");
    assert!(
        latency < BOUND,
        "the quiet channel's answer took {latency:?} (bound {BOUND:?})"
    );
    assert!(
        busy_done < FLOOD,
        "the flood was over before the quiet channel asked: the test proves nothing"
    );
    running.stop(&shutdown).await;
}
