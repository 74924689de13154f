//! One of the app's Socket Mode connections, kept open: a connection that Slack refreshes is
//! replaced at once (the old one finishes its envelopes meanwhile); after a failure the next
//! attempt waits, longer each time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use super::connection::{self, Ended, Ws};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lasted this long before it was lost counts as a success.
const STEADY: Duration = Duration::from_secs(60);

/// The wait before attempt number `failures` + 1 after `failures` failures in a row: none after
/// the first (a lost connection is replaced at once), then 1 s, 2 s, 4 s … up to 30 s. Slots
/// are set a little apart so that they do not all call `apps.connections.open` at once.
pub(super) fn backoff(failures: u32, slot: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let exp = Duration::from_secs(1u64 << (failures - 2).min(5));
    exp.min(MAX_BACKOFF) + Duration::from_millis(u64::from(slot) * 150)
}

/// Keeps one connection open until `stop`, starting with `first`.
pub(super) async fn run(slot: u32, first: Ws, ctx: Arc<Ctx>, stop: CancellationToken) {
    // Connections being replaced finish their envelopes here.
    let mut retiring: JoinSet<()> = JoinSet::new();
    let mut next = Some(first);
    let mut failures: u32 = 0;
    loop {
        while let Some(done) = retiring.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, slot, "a Socket Mode connection ended abnormally");
            }
        }
        let ws = match next.take() {
            Some(ws) => Ok(ws),
            None => tokio::select! {
                ws = connection::open(&ctx) => ws,
                _ = stop.cancelled() => break,
            },
        };
        match ws {
            Ok(ws) => {
                let (tx, rx) = oneshot::channel();
                let opened = Instant::now();
                retiring.spawn(connection::run(ws, ctx.clone(), tx, stop.clone()));
                // A connection task that died without a word is a lost connection.
                let ended = rx
                    .await
                    .unwrap_or_else(|_| Ended::Lost("its task ended".into()));
                match ended {
                    Ended::Shutdown => break,
                    Ended::Refresh(reason) => {
                        tracing::debug!(slot, %reason, "replacing a Socket Mode connection");
                        failures = 0;
                        continue;
                    }
                    Ended::LinkDisabled => {
                        tracing::error!(
                            slot,
                            "Slack disabled Socket Mode for this app (link_disabled); trying again"
                        );
                        failures = failures.max(1) + 1;
                    }
                    Ended::Lost(why) => {
                        tracing::warn!(slot, %why, "a Socket Mode connection was lost");
                        failures = if opened.elapsed() > STEADY {
                            1
                        } else {
                            failures + 1
                        };
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(slot, failures, error = %e, "could not open a Socket Mode connection");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff(failures, slot)) => {}
            _ = stop.cancelled() => break,
        }
    }
    // Each is bounded by its own drain limit.
    while let Some(done) = retiring.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, slot, "a Socket Mode connection ended abnormally");
        }
    }
}
