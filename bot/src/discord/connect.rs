//! Connecting to Discord: the gateway client and the orchestrator started together, and
//! stopped together.

use super::*;

/// A running Discord connection.
pub struct Running {
    pub bot: Arc<crate::orchestrator::Bot>,
    shards: Arc<serenity::gateway::ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.shards.shutdown_all().await;
        let _ = self.task.await;
    }
}

/// How long one call to learn who the bot is may take.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest wait between two attempts to reach Discord at start-up.
const IDENTIFY_BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Who the bot is (`GET /users/@me`). A refused token (401) ends start-up at once; anything
/// else (Discord unreachable, a time-out, a 5xx or a 429) is logged and tried again, waiting 1 s,
/// then twice as long each time up to 30 s, until it works or `shutdown` is cancelled.
pub(super) async fn current_user(
    http: &Http,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<serenity::all::CurrentUser> {
    let mut wait = Duration::from_secs(1);
    loop {
        let error = match tokio::time::timeout(IDENTIFY_TIMEOUT, http.get_current_user()).await {
            Ok(Ok(me)) => return Ok(me),
            Ok(Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r))))
                if r.status_code.as_u16() == 401 =>
            {
                anyhow::bail!(
                    "Discord refused the bot token (401 Unauthorized): check THREADSMITH_DISCORD_TOKEN"
                )
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", IDENTIFY_TIMEOUT.as_secs()),
        };
        tracing::warn!(error = %error, retry_in = ?wait, "could not reach Discord; trying again");
        tokio::select! {
            _ = shutdown.cancelled() => {
                anyhow::bail!("stopped before Discord could be reached (last error: {error})")
            }
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(IDENTIFY_BACKOFF_CAP);
    }
}

/// Connects to Discord and starts its orchestrator loop.
pub async fn start(
    svc: crate::pipeline::Services,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Running> {
    use anyhow::Context as _;
    let config = svc.config.clone();
    let d = &config.discord;
    let token = d
        .token
        .clone()
        .context("Discord needs THREADSMITH_DISCORD_TOKEN")?;
    let http = http(token.expose(), d.api_url.as_deref());
    let me = current_user(&http, &shutdown).await?;
    let app = http
        .get_current_application_info()
        .await
        .map_err(|e| anyhow::anyhow!("Discord did not describe the application: {e}"))?;
    http.set_application_id(app.id);
    let message_content = content::enabled(app.flags);
    if !message_content {
        tracing::warn!("{}", content::WARNING);
    }
    let http = Arc::new(http);
    let port = Arc::new(
        DiscordPort::new(http.clone())
            .stopping_with(shutdown.clone())
            .with_message_content(message_content),
    );
    let phrases = d
        .trigger_phrases
        .clone()
        .unwrap_or_else(|| vec!["fix this".into()]);
    let settings = crate::orchestrator::ChatSettings {
        platform: crate::chat::Platform::Discord,
        bot_user_id: me.id.to_string(),
        bot_name: me.name.clone(),
        slash_command: "/fix".into(),
        maintainers: d.maintainers.clone(),
        maintainer_groups: d.maintainer_roles.clone(),
        trigger_phrases: phrases.clone(),
        phrase_channels: d.phrase_channels.clone(),
        status_edit_interval: Duration::from_millis(config.status_edit_interval_ms.unwrap_or(1500)),
    };
    let bot = crate::orchestrator::Bot::new(svc, port.clone(), settings);
    let handler = events::Handler {
        bot: bot.clone(),
        port,
        settings: events::EventSettings {
            bot_user_id: me.id.to_string(),
            trigger_phrases: phrases,
            phrase_channels: d.phrase_channels.clone(),
        },
    };
    // Direct messages too, to answer that the bot works in servers only.
    let mut intents = serenity::all::GatewayIntents::GUILDS
        | serenity::all::GatewayIntents::GUILD_MESSAGES
        | serenity::all::GatewayIntents::DIRECT_MESSAGES;
    // Discord closes the gateway (4014) on a privileged intent the application does not have.
    if d.message_content && message_content {
        intents |= serenity::all::GatewayIntents::MESSAGE_CONTENT;
    } else if d.message_content {
        tracing::error!(
            "discord.message_content = true, but the application's Message Content Intent is off: connecting without it (bare phrases will not work)"
        );
    }
    // The gateway client shares the port's HTTP client (and so its base URL).
    let gateway_http = self::http(token.expose(), d.api_url.as_deref());
    gateway_http.set_application_id(app.id);
    let mut client = serenity::all::ClientBuilder::new_with_http(gateway_http, intents)
        .event_handler(handler)
        .await
        .map_err(|e| anyhow::anyhow!("could not set up the Discord client: {e}"))?;
    let shards = client.shard_manager.clone();
    let loop_bot = bot.clone();
    let stop = shutdown.clone();
    let orchestrator = tokio::spawn(loop_bot.run(stop));
    let connection = bot.connection().clone();
    let task = tokio::spawn(async move {
        match client.start().await {
            Ok(()) => connection.lost("the Discord connection was closed"),
            Err(e) => {
                tracing::error!(error = %e, "the Discord connection ended");
                connection.lost(format!("the Discord connection ended: {e}"));
            }
        }
        let _ = orchestrator.await;
    });
    Ok(Running { bot, shards, task })
}
