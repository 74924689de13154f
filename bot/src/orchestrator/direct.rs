//! A message to the bot outside a server (a Discord DM): the bot works in servers only.

use super::{Bot, EffectKey, HandleError};
use crate::chat::{OutMessage, ThreadRef};

impl Bot {
    pub(super) async fn on_direct_message(
        &self,
        platform: String,
        channel: String,
        message_ts: String,
    ) -> Result<(), HandleError> {
        let here = ThreadRef {
            platform,
            workspace: String::new(),
            channel,
            thread: String::new(),
        };
        let text = format!(
            "I work in servers only: mention me (`@{}`) in a thread of a channel I am in, or use `{}` there.",
            self.settings.bot_name, self.settings.slash_command
        );
        self.post_once(
            &EffectKey::Reply {
                channel: &here.channel,
                anchor: &message_ts,
            },
            &here,
            &OutMessage::Text(text),
        )
        .await?;
        Ok(())
    }
}
