//! `cargo bench -p threadsmith-tests --bench ack`
//!
//! Ack latency in Socket Mode: from an envelope leaving the fake Slack to its acknowledgement
//! arriving back, under a burst of 100 `app_mention` events on loopback. Every event is durably
//! stored before it is acknowledged: appended to the SQLite inbox's journal, and moved into the
//! inbox (deduplicated) a moment later (`bot/src/store/journal/`); the orchestrator handles them
//! (each posts a help reply) at the same time.
//!
//! The baseline, measured in the same run against its own fake Slack: the same Socket Mode
//! client (threadsmith's) with the store replaced by one that keeps nothing, so that the ratio
//! is what storing costs. A second reference, on a third fake: slack-morphism's own Socket Mode
//! listener, whose callbacks store nothing and return at once. All hold the same number of
//! connections (`THREADSMITH_BENCH_CONNECTIONS`, by default the bot's default
//! `slack.socket_connections`), and each fake spreads the envelopes over them at random, as
//! Slack does. The Slack side (the fakes, and the bursts they send) and each reference client
//! run on runtimes of their own, as separate processes would: the bot's tasks do not queue behind
//! theirs in one scheduler, nor theirs behind the bot's handlers. Prints p50, p99 and max of
//! each, and the bot's p99 over the baseline's, for docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use slack_morphism::prelude::*;
use threadsmith_bot::serve;
use threadsmith_bot::slack::events::EventSettings;
use threadsmith_bot::slack::socket::{self, DEFAULT_CONNECTIONS, Discard, SocketMode};
use threadsmith_tests::env;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use tokio_util::sync::CancellationToken;

const BURST: usize = 100;

/// Bursts per client (`THREADSMITH_BENCH_BURSTS`, default 20). A p99 over few bursts is the
/// one slowest burst's tail: 20 make it the typical burst's.
fn rounds() -> usize {
    std::env::var("THREADSMITH_BENCH_BURSTS")
        .ok()
        .map(|n| n.parse().expect("THREADSMITH_BENCH_BURSTS is a number"))
        .unwrap_or(20)
}

fn connections() -> u32 {
    std::env::var("THREADSMITH_BENCH_CONNECTIONS")
        .ok()
        .map(|n| {
            n.parse()
                .expect("THREADSMITH_BENCH_CONNECTIONS is a number")
        })
        .unwrap_or(DEFAULT_CONNECTIONS)
}

/// Neither client is tested on Slack's method tiers here (`apps.connections.open` allows a
/// burst of 5); the per-channel pace of `chat.postMessage` stays.
fn fake_config() -> FakeSlackConfig {
    FakeSlackConfig {
        tier_limits: false,
        ..FakeSlackConfig::default()
    }
}

/// Waits until all `n` connections are open, so that every burst is spread over all of them.
async fn wait_all_connected(slack: &FakeSlack, n: u32) {
    slack
        .wait_until("every Socket Mode connection", |s| {
            s.open_connections() == n as usize
        })
        .await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Sends one warm-up event, then `BURST` events back to back, and returns their ack latencies.
async fn burst(slack: &FakeSlack) -> Vec<Duration> {
    let parent = slack.post_as_user("C111", "U222", "a thread", None);
    let mut ids = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        let ts = slack.post_as_user("C111", "U222", "<@UBOT> help", Some(&parent));
        let payload = slack.app_mention("C111", "U222", "<@UBOT> help", &ts, Some(&parent));
        ids.push(slack.send_envelope("events_api", payload, false).await);
    }
    let mut latencies = Vec::with_capacity(BURST);
    for id in &ids {
        slack.ack(id).await;
        let sent = slack.read(|s| s.sent_at(id)).unwrap();
        let acked = slack.read(|s| s.acked_at(id)).unwrap();
        latencies.push(acked.duration_since(sent));
    }
    latencies
}

async fn warm_up(slack: &FakeSlack) -> Duration {
    let parent = slack.post_as_user("C111", "U222", "a thread", None);
    let ts = slack.post_as_user("C111", "U222", "<@UBOT> help", Some(&parent));
    let warm = slack.app_mention("C111", "U222", "<@UBOT> help", &ts, Some(&parent));
    let warm = slack.send_envelope("events_api", warm, false).await;
    slack.ack(&warm).await;
    slack.read(|s| s.acked_at(&warm)).unwrap() - slack.read(|s| s.sent_at(&warm)).unwrap()
}

async fn ignore_push(
    _: SlackPushEventCallback,
    _: Arc<SlackHyperClient>,
    _: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    Ok(())
}

/// The baseline: threadsmith's Socket Mode client, converting each event and keeping nothing.
async fn baseline_client(api: &str, connections: u32) -> SocketMode {
    let client = threadsmith_bot::slack::client(Some(api)).unwrap();
    let settings = EventSettings {
        bot_user_id: "UBOT".into(),
        ..EventSettings::default()
    };
    socket::start(
        client,
        "xapp-test",
        connections,
        Arc::new(Discard),
        settings,
    )
    .await
    .unwrap()
}

/// The second reference: slack-morphism's Socket Mode listener acknowledging without storing.
async fn library_listener(
    api: &str,
    connections: u32,
) -> SlackClientSocketModeListener<SlackClientHyperHttpsConnector> {
    let client = threadsmith_bot::slack::client(Some(api)).unwrap();
    let env = Arc::new(SlackClientEventsListenerEnvironment::new(client));
    let callbacks = SlackSocketModeListenerCallbacks::new().with_push_events(ignore_push);
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new()
            .with_max_connections_count(connections)
            .with_initial_backoff_in_seconds(0),
        env,
        callbacks,
    );
    listener
        .listen_for(&SlackApiToken::new("xapp-test".into()))
        .await
        .unwrap();
    listener.start().await;
    listener
}

fn row(name: &str, sorted: &[Duration]) -> String {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    format!(
        "| {name} | {} | {} | {} |",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        ms(*sorted.last().unwrap())
    )
}

/// A runtime of its own, as another process would have (see the module's doc); all still share
/// the machine's CPUs.
fn runtime(name: &str, workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts a reference client on `side` against `slack` (given its API base), and returns it
/// once all `n` connections are open and one event went through.
async fn reference<C, F>(
    side: &tokio::runtime::Runtime,
    slack: &FakeSlack,
    n: u32,
    start: impl FnOnce(String) -> F,
) -> C
where
    F: std::future::Future<Output = C> + Send + 'static,
    C: Send + 'static,
{
    let client = side.spawn(start(slack.api_base())).await.unwrap();
    wait_all_connected(slack, n).await;
    warm_up(slack).await;
    client
}

#[tokio::main]
async fn main() {
    let n = connections();
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    let slack_side = runtime("fake-slack", 1);
    let on_slack_side = slack_side.handle().clone();
    let start_fake = || async {
        on_slack_side
            .spawn(FakeSlack::start(fake_config()))
            .await
            .unwrap()
    };
    // The references first, each on its own fake Slack and its own runtime.
    let base_side = runtime("baseline", cores);
    let base_slack = start_fake().await;
    let base = reference(&base_side, &base_slack, n, |api| async move {
        baseline_client(&api, n).await
    })
    .await;
    let lib_side = runtime("slack-morphism", cores);
    let lib_slack = start_fake().await;
    let lib = reference(&lib_side, &lib_slack, n, |api| async move {
        library_listener(&api, n).await
    })
    .await;

    // The bot on this runtime.
    let slack = start_fake().await;
    let api = slack.api_base();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.socket_connections = Some(n);
    })
    .await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    wait_all_connected(&slack, n).await;
    // One event first, so that the bursts measure the steady state, not the first connection's
    // and the first write's set-up.
    let first = warm_up(&slack).await;
    println!(
        "First event after start-up: {:.1} ms.\n",
        first.as_secs_f64() * 1000.0
    );

    // Each burst is sent from the Slack side's runtime.
    let send_burst = |slack: &FakeSlack| {
        let slack = slack.clone();
        let sent = on_slack_side.spawn(async move { burst(&slack).await });
        async move { sent.await.unwrap() }
    };
    // Rounds alternate between the clients, so that all see the same machine.
    let (mut ours, mut theirs, mut library) = (Vec::new(), Vec::new(), Vec::new());
    let rounds = rounds();
    for _ in 0..rounds {
        theirs.extend(send_burst(&base_slack).await);
        library.extend(send_burst(&lib_slack).await);
        ours.extend(send_burst(&slack).await);
    }
    ours.sort();
    theirs.sort();
    library.sort();
    println!(
        "### Ack latency (Socket Mode, {n} connection(s) each, {rounds} bursts of {BURST} events on loopback)\n"
    );
    println!("| client | p50 | p99 | max |\n|---|---|---|---|");
    println!("{}", row("threadsmith (stores each event first)", &ours));
    println!(
        "{}",
        row("baseline: the same client, storing nothing", &theirs)
    );
    println!(
        "{}",
        row(
            "reference: slack-morphism's listener, storing nothing",
            &library
        )
    );
    let p99 = |v: &[Duration]| percentile(v, 0.99).as_secs_f64();
    println!(
        "\n**p99 ratio threadsmith / baseline: {:.2}×** (target ≤ 1.25×); threadsmith / slack-morphism: {:.2}×",
        p99(&ours) / p99(&theirs),
        p99(&ours) / p99(&library)
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("Load average (1, 5, 15 min) at the end: {}", load.trim());
    }
    // Stopping moves the last journaled events into the inbox: every event is there after.
    running.stop(&shutdown).await;
    assert_eq!(
        env.svc.store.inbox_len().await.unwrap(),
        (rounds * BURST) as u64 + 1
    );
    base.shutdown().await;
    lib.shutdown().await;
    // Dropping a runtime inside another one's task is refused; these need no waiting for.
    for side in [slack_side, base_side, lib_side] {
        side.shutdown_background();
    }
}
