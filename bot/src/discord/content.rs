//! Discord's Message Content intent, as the bot meets it.
//!
//! Without it Discord sends guild messages with empty `content`, `embeds`, `attachments` and
//! `components` — in gateway events and in REST reads alike — except messages that mention the
//! bot, direct messages and the bot's own. It is a per-application setting (Developer Portal →
//! Bot → Message Content Intent), reported in the application's `flags`:
//! `GATEWAY_MESSAGE_CONTENT` (verified apps) or `GATEWAY_MESSAGE_CONTENT_LIMITED` (apps in under
//! 100 servers). Reading a thread for a task spec needs it.

use serenity::all::{ApplicationFlags, Message};

/// Logged at start-up and reported by `threadsmith doctor` when the intent is off.
pub const WARNING: &str = "the Discord application does not have the Message Content intent: threads are read without the messages that do not mention the bot. Turn on Developer Portal → your app → Bot → Privileged Gateway Intents → Message Content Intent";

/// Told to a thread whose messages Discord withheld.
pub const NOTICE: &str = "I could not read this thread in full: Discord showed me only the messages that mention me, because this app does not have the **Message Content Intent**. The agents get only those. An admin can turn it on in the Developer Portal (your app → Bot → Privileged Gateway Intents).";

/// Whether the application's flags let it read message content.
pub fn enabled(flags: Option<ApplicationFlags>) -> bool {
    flags.is_some_and(|f| {
        f.intersects(
            ApplicationFlags::GATEWAY_MESSAGE_CONTENT
                | ApplicationFlags::GATEWAY_MESSAGE_CONTENT_LIMITED,
        )
    })
}

/// Whether Discord blanked this message for an application without the intent: someone
/// else's message with nothing in the fields it empties. (A message mentioning the bot keeps
/// its content, so it is not blank.)
pub fn withheld(m: &Message) -> bool {
    !m.author.bot
        && m.content.is_empty()
        && m.embeds.is_empty()
        && m.attachments.is_empty()
        && m.components.is_empty()
}

/// `threadsmith doctor`'s check, when a Discord token is configured: whether the application
/// may read message content (`Err` says how to turn it on).
pub async fn doctor_check(d: &crate::config::DiscordSection) -> Option<Result<String, String>> {
    let token = d.token.as_ref()?;
    let http = super::http(token.expose(), d.api_url.as_deref());
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        http.get_current_application_info(),
    )
    .await;
    Some(match answer {
        Ok(Ok(app)) if enabled(app.flags) => Ok(format!(
            "application {} may read message content (threads are read in full)",
            app.name
        )),
        Ok(Ok(app)) => Err(format!(
            "application {}: {WARNING}, then restart the bot",
            app.name
        )),
        Ok(Err(e)) => Err(format!(
            "Discord did not describe the application: {e}. Fix: check THREADSMITH_DISCORD_TOKEN"
        )),
        Err(_) => Err("Discord did not answer within 10 s".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_flag_means_content() {
        assert!(!enabled(None));
        assert!(!enabled(Some(ApplicationFlags::empty())));
        assert!(enabled(Some(ApplicationFlags::GATEWAY_MESSAGE_CONTENT)));
        assert!(enabled(Some(
            ApplicationFlags::GATEWAY_MESSAGE_CONTENT_LIMITED
        )));
    }
}
