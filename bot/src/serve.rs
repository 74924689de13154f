//! `threadsmith serve`: the chat front-ends and the orchestrator in one process.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::orchestrator::{Bot, ChatSettings};
use crate::pipeline::Services;
use crate::slack::{self, events::EventSettings};

pub const NOT_CONFIGURED: &str = "Neither Slack nor Discord is configured, so there is nothing to serve.

Discord: THREADSMITH_DISCORD_TOKEN=…   (Developer Portal → your app → Bot → Reset Token)
Slack,

Socket Mode (no public URL needed):
  THREADSMITH_SLACK_BOT_TOKEN=xoxb-…   (OAuth & Permissions → Bot User OAuth Token)
  THREADSMITH_SLACK_APP_TOKEN=xapp-…   (Basic Information → App-Level Tokens, scope connections:write)
HTTP Events API instead:
  THREADSMITH_SLACK_MODE=http THREADSMITH_SLACK_SIGNING_SECRET=… THREADSMITH_LISTEN=0.0.0.0:3000
The app itself: deploy/slack/manifest.yml, and the README's \"Add to Slack\".";

/// What `serve` started.
pub struct Running {
    /// One orchestrator per platform.
    pub bots: Vec<Arc<Bot>>,
    /// The HTTP server's address (pages, Slack's HTTP mode).
    pub http_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    socket: Option<slack::socket::SocketMode>,
    discord: Option<crate::discord::Running>,
    svc: Services,
}

/// How long closing a chat connection may take.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

impl Running {
    /// Stops at once: stops listening, cancels the running tasks (they end as cancelled), and
    /// waits for the loops to end.
    pub async fn stop(self, shutdown: &CancellationToken) {
        for bot in &self.bots {
            bot.hurry();
        }
        self.close(shutdown).await;
    }

    /// Stops gracefully (SIGTERM): no new events are taken from the inbox or accepted from
    /// chat (events already stored stay in the inbox for another process); the handlers at
    /// work get `workers.shutdown_grace_secs` to finish, and what is left is handed over to
    /// other processes (see `orchestrator/shutdown.rs`). Then this process withdraws as a
    /// worker, so that nobody waits for its lease to lapse.
    pub async fn shutdown(self, shutdown: &CancellationToken) {
        let svc = self.svc.clone();
        self.close(shutdown).await;
        if !svc.retired()
            && let Err(e) = svc.retire().await
        {
            tracing::warn!(error = %e, "could not withdraw this process as a worker");
        }
    }

    async fn close(mut self, shutdown: &CancellationToken) {
        shutdown.cancel();
        // Events stored once the connection is closed are left to other processes: first
        // wait for a claim under way to end.
        for bot in &self.bots {
            if tokio::time::timeout(CLOSE_BOUND, bot.stopped_taking())
                .await
                .is_err()
            {
                tracing::warn!("the loop was still taking events when the bound ran out");
            }
        }
        if let Some(socket) = self.socket.take()
            && tokio::time::timeout(CLOSE_BOUND, socket.shutdown())
                .await
                .is_err()
        {
            tracing::warn!("closing the Slack connection timed out");
        }
        if let Some(discord) = self.discord.take() {
            // Closes the gateway, then waits for Discord's orchestrator to drain.
            discord.stop().await;
        }
        // What the connections acknowledged last is in the inbox before this process goes.
        for bot in &self.bots {
            bot.drain_inbox(CLOSE_BOUND).await;
        }
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "a loop of the bot ended abnormally");
            }
        }
    }
}

/// Starts Slack and Discord (as configured), their orchestrators, and the web pages.
pub async fn start(svc: Services, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let config = svc.config.clone();
    if config.slack.bot_token.is_none() && config.discord.token.is_none() {
        anyhow::bail!(NOT_CONFIGURED);
    }
    // Recording from the start, not from the first scrape.
    if let Err(e) = crate::metrics::handle() {
        tracing::warn!(error = %e, "/metrics will not work");
    }
    let mut running = Running {
        bots: Vec::new(),
        http_addr: None,
        tasks: Vec::new(),
        socket: None,
        discord: None,
        svc: svc.clone(),
    };
    // Web pages whenever they have a public address; Slack's HTTP endpoints in HTTP mode.
    let mut app = None;
    if config.public_url.is_some() || config.listen.is_some() {
        app = Some(crate::web::router_publishing(
            svc.store.clone(),
            svc.publisher.mode() != crate::publish::Mode::Off,
            config.prices.clone(),
        ));
    }
    if config.discord.token.is_some() {
        let discord = crate::discord::start(svc.clone(), shutdown.clone()).await?;
        running.bots.push(discord.bot.clone());
        running.discord = Some(discord);
    }
    if let Some(bot_token) = config.slack.bot_token.clone() {
        let slack = &config.slack;
        let client = slack::client(slack.api_url.as_deref())?;
        let (port, identity) =
            slack::SlackPort::connect(client.clone(), bot_token.expose()).await?;
        let phrases = slack
            .trigger_phrases
            .clone()
            .unwrap_or_else(|| vec!["fix this".into()]);
        let settings = ChatSettings {
            platform: crate::chat::Platform::Slack,
            bot_user_id: identity.user_id.clone(),
            bot_name: "threadsmith".into(),
            slash_command: "/fix".into(),
            maintainers: slack.maintainers.clone(),
            maintainer_groups: slack.maintainer_groups.clone(),
            trigger_phrases: phrases.clone(),
            phrase_channels: slack.phrase_channels.clone(),
            status_edit_interval: Duration::from_millis(
                config.status_edit_interval_ms.unwrap_or(1500),
            ),
        };
        let events = EventSettings {
            bot_user_id: identity.user_id.clone(),
            team_id: identity.team_id.clone(),
            trigger_phrases: phrases,
            phrase_channels: slack.phrase_channels.clone(),
        };
        let bot = Bot::new(svc.clone(), Arc::new(port), settings);
        running
            .tasks
            .push(tokio::spawn(bot.clone().run(shutdown.clone())));
        running.bots.push(bot.clone());
        match slack.mode.as_deref().unwrap_or("socket") {
            "socket" => {
                let app_token = slack.app_token.clone().context(
                    "Socket Mode needs THREADSMITH_SLACK_APP_TOKEN (xapp-…); or set THREADSMITH_SLACK_MODE=http",
                )?;
                let connections = slack
                    .socket_connections
                    .unwrap_or(slack::socket::DEFAULT_CONNECTIONS);
                running.socket = Some(
                    slack::socket::start(
                        client,
                        app_token.expose(),
                        connections,
                        bot.clone(),
                        events,
                    )
                    .await?,
                );
            }
            "http" => {
                // Slack calls us: connected once the token worked (`auth.test` above).
                bot.connection().connected();
                let secret = slack
                    .signing_secret
                    .clone()
                    .context("HTTP mode needs THREADSMITH_SLACK_SIGNING_SECRET")?;
                let slack_app = slack::http::router(bot.clone(), secret.expose(), events);
                app = Some(match app {
                    Some(pages) => pages.merge(slack_app),
                    None => slack_app,
                });
            }
            other => anyhow::bail!("unknown Slack mode `{other}`: use `socket` or `http`"),
        }
    }
    if let Some(app) = app {
        // The probes and `/metrics` wherever the HTTP server runs.
        let app = app.merge(crate::web::health::router(crate::web::health::Health {
            store: svc.store.clone(),
            tasks: svc.tasks.clone(),
            chats: running
                .bots
                .iter()
                .map(|b| (b.settings().platform, b.connection().clone()))
                .collect(),
        }));
        let listen = config
            .listen
            .clone()
            .or_else(|| config.slack.listen.clone())
            .unwrap_or_else(|| "0.0.0.0:3000".into());
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        running.http_addr = Some(listener.local_addr()?);
        let stop = shutdown.clone();
        running.tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        }));
    }
    Ok(running)
}

pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    if config.slack.bot_token.is_none() && config.discord.token.is_none() {
        eprintln!("{NOT_CONFIGURED}");
        return Ok(ExitCode::FAILURE);
    }
    let slack = config.slack.bot_token.is_some().then(|| {
        match config.slack.mode.as_deref().unwrap_or("socket") {
            "http" => "Slack (HTTP Events API)",
            _ => "Slack (Socket Mode)",
        }
    });
    let discord = config.discord.token.is_some().then_some("Discord");
    let platforms: Vec<&str> = slack.into_iter().chain(discord).collect();
    let svc = crate::wiring::services(config).await?;
    let grace = svc.config.shutdown_grace();
    let running = start(svc, shutdown.clone()).await?;
    eprintln!("threadsmith is connected to {}", platforms.join(" and "));
    if let Some(addr) = running.http_addr {
        eprintln!("serving HTTP (pages, Slack's HTTP mode) on {addr}");
    }
    tokio::select! {
        _ = crate::signals::terminated() => {}
        _ = shutdown.cancelled() => {}
    }
    eprintln!(
        "stopping: taking no new events; those in progress get {}s to finish …",
        grace.as_secs()
    );
    // Everything in `shutdown` has a bound of its own; this one holds whatever else.
    let bound = grace + Duration::from_secs(60);
    if tokio::time::timeout(bound, running.shutdown(&shutdown))
        .await
        .is_err()
    {
        tracing::error!(?bound, "stopping took too long; exiting anyway");
    }
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}
