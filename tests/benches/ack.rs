//! `cargo bench -p threadsmith-tests --bench ack`
//!
//! Ack latency in Socket Mode: from an envelope leaving the fake Slack to its acknowledgement
//! arriving back, under a burst of 100 `app_mention` events on loopback. Every event is stored
//! (deduplicated) in the SQLite inbox before it is acknowledged; the orchestrator handles them
//! (each posts a help reply) at the same time. Prints p50, p99 and max for docs/BENCHMARKS.md.

use std::time::Duration;

use threadsmith_bot::serve;
use threadsmith_tests::env;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use tokio_util::sync::CancellationToken;

const BURST: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
    })
    .await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;
    let parent = slack.post_as_user("C111", "U222", "a thread", None);
    // One event first, so that the burst measures the steady state, not the first connection's
    // and the first write's set-up.
    let ts = slack.post_as_user("C111", "U222", "<@UBOT> help", Some(&parent));
    let warm = slack.app_mention("C111", "U222", "<@UBOT> help", &ts, Some(&parent));
    let warm = slack.send_envelope("events_api", warm, false).await;
    slack.ack(&warm).await;
    let first =
        slack.read(|s| s.acked_at(&warm)).unwrap() - slack.read(|s| s.sent_at(&warm)).unwrap();
    println!(
        "First event after start-up: {:.1} ms.\n",
        first.as_secs_f64() * 1000.0
    );

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
    latencies.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("### Ack latency (Socket Mode, burst of {BURST} events on loopback)\n");
    println!("| p50 | p99 | max |\n|---|---|---|");
    println!(
        "| {} | {} | {} |\n",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
    println!("Target: p99 under 50 ms.");
    assert_eq!(env.svc.store.inbox_len().await.unwrap(), BURST as u64 + 1);
    running.stop(&shutdown).await;
}
