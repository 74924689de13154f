//! Socket Mode, threadsmith's own client: Slack connects nothing to us; we open WebSockets to
//! Slack (`apps.connections.open`, then the URL it returns) and Slack spreads the envelopes over
//! an app's open connections.
//!
//! Every envelope is converted, stored (deduplicated, through the inbox's group commit) and only
//! then acknowledged; an envelope whose event could not be stored is not acknowledged, so that
//! Slack delivers it again. Each connection handles its envelopes concurrently (one supervised
//! task each): a burst on one connection is stored in a few group commits, not one commit per
//! envelope, and no envelope waits for another's ack. The sockets are set to `TCP_NODELAY`, so
//! that a small ack frame leaves at once rather than behind the peer's delayed ACK.
//!
//! - `envelope.rs` — frames → slack-morphism's Socket Mode types, and the ack of each (pure).
//! - `connection.rs` — one WebSocket: opening it, reading, acking, pings, draining and closing.
//! - `slot.rs` — one of the `slack.socket_connections`: reconnects (at once when Slack asks for a
//!   refresh, with backoff after a failure) until the listener is shut down.

mod connection;
mod envelope;
mod slot;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slack_morphism::prelude::*;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::chat::ChatEvent;
use crate::orchestrator::Bot;
use crate::store::StoreError;

use super::events::EventSettings;

/// The connections held open when the configuration names no number.
pub const DEFAULT_CONNECTIONS: u32 = 2;

/// The most connections Slack lets an app hold open at once.
pub const MAX_CONNECTIONS: u32 = 10;

/// How long closing the connections may take (in-flight envelopes stored and acked first).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

/// Where the events of the envelopes go before they are acknowledged.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Stores the event unless one with the same key was stored before. `Ok` only once it is
    /// durably stored (or found to be a duplicate): the envelope is acked after that alone.
    async fn submit(&self, key: &str, event: &ChatEvent) -> Result<(), StoreError>;
    /// A connection is open (Slack said `hello`): chat is reachable (`/readyz`).
    fn connected(&self) {}
    /// A connection was lost (it reconnects on its own; its next `hello` says so).
    fn lost(&self, _why: &str) {}
    /// An envelope was acked this long after it arrived (`/metrics`).
    fn acked(&self, _took: Duration) {}
}

#[async_trait]
impl EventSink for Bot {
    async fn submit(&self, key: &str, event: &ChatEvent) -> Result<(), StoreError> {
        Bot::record(self, key, event).await
    }
    fn connected(&self) {
        self.connection().connected();
    }
    fn lost(&self, why: &str) {
        self.connection().lost(why);
    }
    fn acked(&self, took: Duration) {
        crate::metrics::chat_ack(crate::chat::Platform::Slack, took);
    }
}

/// Keeps nothing: the ack benchmark's baseline (the same client, without the store).
pub struct Discard;

#[async_trait]
impl EventSink for Discard {
    async fn submit(&self, _: &str, _: &ChatEvent) -> Result<(), StoreError> {
        Ok(())
    }
}

/// What every connection shares.
pub(crate) struct Ctx {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
    sink: Arc<dyn EventSink>,
    settings: EventSettings,
}

/// The running connections; [`SocketMode::shutdown`] closes them.
pub struct SocketMode {
    stop: CancellationToken,
    slots: JoinSet<()>,
}

impl SocketMode {
    /// Stops taking envelopes; those being stored are stored and acked (within a bound), then
    /// every connection is closed. Envelopes not acked are delivered again by Slack to another
    /// connection of the app (another process).
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        let drain = async {
            while let Some(done) = self.slots.join_next().await {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a Socket Mode connection ended abnormally");
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_BOUND, drain).await.is_err() {
            tracing::warn!("closing the Socket Mode connections timed out");
            self.slots.shutdown().await;
        }
    }
}

/// Opens `connections` WebSockets and handles their envelopes until shut down: each event is
/// handed to `sink` and acked once it is stored. Fails when a first connection cannot be opened
/// (a refused app token, Slack unreachable).
pub async fn start(
    client: Arc<SlackHyperClient>,
    app_token: &str,
    connections: u32,
    sink: Arc<dyn EventSink>,
    settings: EventSettings,
) -> anyhow::Result<SocketMode> {
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        anyhow::bail!(
            "slack.socket_connections is {connections}: Slack allows 1 to {MAX_CONNECTIONS}"
        );
    }
    let ctx = Arc::new(Ctx {
        client,
        token: SlackApiToken::new(app_token.into()),
        sink,
        settings,
    });
    let mut first = Vec::new();
    for _ in 0..connections {
        let ws = connection::open(&ctx).await.map_err(|e| {
            anyhow::anyhow!(
                "Slack refused the app token or the connection (apps.connections.open): {e}"
            )
        })?;
        first.push(ws);
    }
    let stop = CancellationToken::new();
    let mut slots = JoinSet::new();
    for (index, ws) in first.into_iter().enumerate() {
        slots.spawn(slot::run(index as u32, ws, ctx.clone(), stop.clone()));
    }
    Ok(SocketMode { stop, slots })
}
