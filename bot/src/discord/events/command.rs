//! Application commands: `/fix` (a slash command in a channel or thread) and "Fix this" (a
//! message's context menu) → chat events, stored before they are acknowledged.

use serenity::all::{
    CommandDataOptionValue, CommandInteraction, CommandType, Context, CreateInteractionResponse,
    CreateInteractionResponseMessage, EditInteractionResponse,
};
use serenity::builder::Builder;

use super::{Handler, STORE_FAILED, actor, refusal};
use crate::chat::{ChatEvent, Via};
use crate::discord::no_mentions;

impl Handler {
    pub(super) async fn on_command(&self, ctx: &Context, c: CommandInteraction) {
        let user = c.user.id.to_string();
        let channel = c.channel_id;
        let roles: Vec<String> = c
            .member
            .as_ref()
            .map(|m| m.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        let (event, answered_now) = match c.data.kind {
            CommandType::ChatInput if c.data.name == "fix" => {
                let text = c
                    .data
                    .options
                    .iter()
                    .find_map(|o| match &o.value {
                        CommandDataOptionValue::String(s) if o.name == "text" => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                // Used inside a thread, it acts in the thread's channel (a thread holds no
                // threads).
                let here = self.port.thread_parent(channel).await.unwrap_or(channel);
                let event = ChatEvent::Slash {
                    platform: "discord".into(),
                    workspace: c.guild_id.map(|g| g.to_string()).unwrap_or_default(),
                    channel: here.to_string(),
                    user: user.clone(),
                    text,
                };
                (event, false)
            }
            CommandType::Message => {
                let Some(target) = c.data.target_id else {
                    return;
                };
                let target = target.to_string();
                let parent = self.port.thread_parent(channel).await;
                let thread = self.thread_for(c.guild_id, parent, channel, &target);
                let event = ChatEvent::Trigger {
                    thread,
                    message_ts: target,
                    user: user.clone(),
                    // The command carries no words of the user's: no instructions (as on Slack).
                    text: String::new(),
                    via: Via::Shortcut,
                };
                (event, true)
            }
            _ => return,
        };
        let answer_in = match &event {
            ChatEvent::Slash { channel, .. } => channel.clone(),
            _ => channel.to_string(),
        };
        let actor = actor(&user, &answer_in, &c.token, &roles, !answered_now);
        self.port
            .remember(&user, &answer_in, &c.token, roles, !answered_now);
        match self
            .submit(
                &format!("discord:interaction:{}", c.id),
                &event,
                Some(&actor),
            )
            .await
        {
            Some(true) => {
                let defer = CreateInteractionResponse::Defer(
                    CreateInteractionResponseMessage::new().ephemeral(true),
                );
                if let Err(e) = c.create_response(&ctx.http, defer).await {
                    tracing::warn!(error = %e, "could not acknowledge a command");
                    return;
                }
                if answered_now {
                    let _ = EditInteractionResponse::new()
                        .content("On it — I will answer in the thread.")
                        .allowed_mentions(no_mentions())
                        .execute(&ctx.http, &c.token)
                        .await;
                }
            }
            Some(false) => {}
            None => {
                let _ = c.create_response(&ctx.http, refusal(STORE_FAILED)).await;
            }
        }
    }
}
