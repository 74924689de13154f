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

pub const NOT_CONFIGURED: &str = "Slack is not configured, so there is nothing to serve.

Socket Mode (no public URL needed):
  THREADSMITH_SLACK_BOT_TOKEN=xoxb-…   (OAuth & Permissions → Bot User OAuth Token)
  THREADSMITH_SLACK_APP_TOKEN=xapp-…   (Basic Information → App-Level Tokens, scope connections:write)
HTTP Events API instead:
  THREADSMITH_SLACK_MODE=http THREADSMITH_SLACK_SIGNING_SECRET=… THREADSMITH_LISTEN=0.0.0.0:3000
The app itself: deploy/slack/manifest.yml, and the README's \"Add to Slack\".";

/// What `serve` started.
pub struct Running {
    pub bot: Arc<Bot>,
    /// The HTTP server's address (HTTP mode).
    pub http_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    socket: Option<
        slack_morphism::prelude::SlackClientSocketModeListener<
            slack_morphism::prelude::SlackClientHyperHttpsConnector,
        >,
    >,
}

impl Running {
    /// Stops listening and waits for the loops to end.
    pub async fn stop(mut self, shutdown: &CancellationToken) {
        shutdown.cancel();
        if let Some(socket) = self.socket.take() {
            socket.shutdown().await;
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts Slack (as configured) and the orchestrator.
pub async fn start(svc: Services, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let config = svc.config.clone();
    let slack = &config.slack;
    let bot_token = slack.bot_token.clone().context(NOT_CONFIGURED)?;
    let client = slack::client(slack.api_url.as_deref())?;
    let (port, identity) = slack::SlackPort::connect(client.clone(), bot_token.expose()).await?;
    let phrases = slack
        .trigger_phrases
        .clone()
        .unwrap_or_else(|| vec!["fix this".into()]);
    let settings = ChatSettings {
        platform: "slack".into(),
        bot_user_id: identity.user_id.clone(),
        bot_name: "threadsmith".into(),
        slash_command: "/fix".into(),
        maintainers: slack.maintainers.clone(),
        maintainer_groups: slack.maintainer_groups.clone(),
        trigger_phrases: phrases.clone(),
        phrase_channels: slack.phrase_channels.clone(),
        status_edit_interval: Duration::from_millis(config.status_edit_interval_ms.unwrap_or(1500)),
    };
    let events = EventSettings {
        bot_user_id: identity.user_id.clone(),
        team_id: identity.team_id.clone(),
        trigger_phrases: phrases,
        phrase_channels: slack.phrase_channels.clone(),
    };
    let bot_store = svc.store.clone();
    let bot = Bot::new(svc, Arc::new(port), settings);
    let mut tasks = vec![tokio::spawn(bot.clone().run(shutdown.clone()))];
    let mut http_addr = None;
    let mut socket = None;
    // Web pages whenever they have a public address; Slack's HTTP endpoints in HTTP mode.
    let mut app = None;
    if config.public_url.is_some() || config.listen.is_some() {
        app = Some(crate::web::router(bot_store.clone()));
    }
    match slack.mode.as_deref().unwrap_or("socket") {
        "socket" => {
            let app_token = slack.app_token.clone().context(
                "Socket Mode needs THREADSMITH_SLACK_APP_TOKEN (xapp-…); or set THREADSMITH_SLACK_MODE=http",
            )?;
            socket =
                Some(slack::socket::start(client, app_token.expose(), bot.clone(), events).await?);
        }
        "http" => {
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
    if let Some(app) = app {
        let listen = config
            .listen
            .clone()
            .or_else(|| slack.listen.clone())
            .unwrap_or_else(|| "0.0.0.0:3000".into());
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        http_addr = Some(listener.local_addr()?);
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        }));
    }
    Ok(Running {
        bot,
        http_addr,
        tasks,
        socket,
    })
}

pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    if config.slack.bot_token.is_none() {
        eprintln!("{NOT_CONFIGURED}");
        return Ok(ExitCode::FAILURE);
    }
    let config_mode = config.slack.mode.clone().unwrap_or_default();
    let svc = crate::cli::services(config).await?;
    let running = start(svc, shutdown.clone()).await?;
    match (running.http_addr, config_mode.as_str()) {
        (Some(addr), "http") => eprintln!("threadsmith is serving Slack over HTTP on {addr}"),
        (Some(addr), _) => eprintln!(
            "threadsmith is connected to Slack (Socket Mode) and serves its pages on {addr}"
        ),
        (None, _) => eprintln!("threadsmith is connected to Slack (Socket Mode)"),
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = shutdown.cancelled() => {}
    }
    eprintln!("stopping: cancelling running tasks …");
    running.stop(&shutdown).await;
    Ok(ExitCode::SUCCESS)
}
