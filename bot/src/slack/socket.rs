//! Socket Mode: Slack connects nothing to us; we open WebSockets to Slack. Every envelope is
//! converted, stored (deduplicated) and only then acknowledged — the library sends the ack when
//! the callback returns, and the callback never waits for the model, git or Docker.
//!
//! The library handles one envelope at a time per connection, so with one connection a burst is
//! stored one commit at a time. Slack spreads envelopes over an app's open connections (up to
//! 10), so several connections (`slack.socket_connections`) keep several envelopes in flight,
//! and the inbox writer stores those together in one commit.

use std::sync::Arc;
use std::time::Instant;

use slack_morphism::prelude::*;

use crate::chat::Platform;

use crate::orchestrator::Bot;

use super::events::{self, EventSettings};

struct State {
    bot: Arc<Bot>,
    settings: EventSettings,
}

async fn state(s: &SlackClientEventsUserState) -> Option<Arc<State>> {
    s.read().await.get_user_state::<Arc<State>>().cloned()
}

// The library sends the ack when a callback returns: each callback's time is its envelope's
// time from arrival to ack (`threadsmith_chat_ack_duration_seconds`).

async fn on_push(
    ev: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    user_state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let arrived = Instant::now();
    let Some(st) = state(&user_state).await else {
        return Ok(());
    };
    if let Some((key, event)) = events::from_push(&ev, &st.settings) {
        st.bot.submit(&key, &event).await?;
    }
    crate::metrics::chat_ack(Platform::Slack, arrived.elapsed());
    Ok(())
}

async fn on_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    user_state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let arrived = Instant::now();
    let Some(st) = state(&user_state).await else {
        return Ok(());
    };
    if let Some((key, event)) = events::from_interaction(&ev, &st.settings) {
        st.bot.submit(&key, &event).await?;
    }
    crate::metrics::chat_ack(Platform::Slack, arrived.elapsed());
    Ok(())
}

async fn on_command(
    ev: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    user_state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let arrived = Instant::now();
    let (key, event) = events::from_command(&ev);
    if let Some(st) = state(&user_state).await {
        st.bot.submit(&key, &event).await?;
    }
    crate::metrics::chat_ack(Platform::Slack, arrived.elapsed());
    Ok(
        SlackCommandEventResponse::new(SlackMessageContent::new().with_text("On it.".into()))
            .with_response_type(SlackMessageResponseType::Ephemeral),
    )
}

/// Our own failures (the store) are not acknowledged, so that Slack delivers again. A
/// WebSocket failure drops that connection (the library reconnects; its `hello` marks it
/// connected again).
fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHyperClient>,
    user_state: SlackClientEventsUserState,
) -> HttpStatusCode {
    if let Some(e @ slack_morphism::errors::SlackClientError::SocketModeProtocolError(_)) =
        err.downcast_ref::<slack_morphism::errors::SlackClientError>()
    {
        tracing::warn!(error = %e, "a Slack Socket Mode connection failed; reconnecting");
        match user_state.try_read() {
            Ok(storage) => {
                if let Some(st) = storage.get_user_state::<Arc<State>>() {
                    st.bot.connection().lost(e.to_string());
                }
            }
            Err(_) => tracing::warn!("could not record the lost Slack connection"),
        }
        return HttpStatusCode::INTERNAL_SERVER_ERROR;
    }
    tracing::error!(error = %err, "a Slack event could not be taken");
    HttpStatusCode::INTERNAL_SERVER_ERROR
}

/// The connections held open when the configuration names no number.
pub const DEFAULT_CONNECTIONS: u32 = 2;

/// The most connections Slack lets an app hold open at once.
pub const MAX_CONNECTIONS: u32 = 10;

/// Connects `connections` WebSockets and listens until the returned listener is shut down.
pub async fn start(
    client: Arc<SlackHyperClient>,
    app_token: &str,
    connections: u32,
    bot: Arc<Bot>,
    settings: EventSettings,
) -> anyhow::Result<SlackClientSocketModeListener<SlackClientHyperHttpsConnector>> {
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        anyhow::bail!(
            "slack.socket_connections is {connections}: Slack allows 1 to {MAX_CONNECTIONS}"
        );
    }
    let env = Arc::new(
        SlackClientEventsListenerEnvironment::new(client)
            .with_error_handler(on_error)
            .with_user_state(Arc::new(State { bot, settings })),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_push_events(on_push)
        .with_interaction_events(on_interaction)
        .with_command_events(on_command)
        // Slack says `hello` on every connection it opens (again after each reconnection).
        // (A closure: the event's type is not exported by the library.)
        .with_hello_events(|ev, _client, user_state| async move {
            tracing::debug!(
                connections = ev.num_connections,
                "Slack Socket Mode connected"
            );
            if let Some(st) = state(&user_state).await {
                st.bot.connection().connected();
            }
        });
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new()
            .with_max_connections_count(connections)
            // All at once: the library would otherwise open the n-th connection n × 5 s late.
            .with_initial_backoff_in_seconds(0)
            .with_reconnect_timeout_in_seconds(2),
        env,
        callbacks,
    );
    listener
        .listen_for(&SlackApiToken::new(app_token.into()))
        .await
        .map_err(|e| anyhow::anyhow!("Slack refused the app token (apps.connections.open): {e}"))?;
    listener.start().await;
    Ok(listener)
}
