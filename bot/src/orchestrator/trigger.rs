//! A mention or a `/fix` message in a thread: a command, a plan, or a task.

use super::*;

impl Bot {
    pub(super) async fn on_trigger(
        self: &Arc<Self>,
        thread: ThreadRef,
        message_ts: String,
        user: String,
        text: String,
        via: Via,
    ) -> Result<(), HandleError> {
        if user == self.settings.bot_user_id {
            return Ok(());
        }
        // After a task in this thread: the next round of it (`follow_up.rs`).
        if matches!(via, Via::Mention)
            && self
                .try_follow_up(&thread, &message_ts, &user, &text)
                .await?
        {
            return Ok(());
        }
        let parsed = match via {
            Via::Mention => commands::parse_mention(&text, &self.settings.bot_user_id),
            Via::Phrase => commands::parse_phrase(&text, &self.settings.trigger_phrases).map(Ok),
            Via::Shortcut | Via::Slash => Some(Ok(Command::Fix(FixArgs {
                instructions: (!text.trim().is_empty()).then(|| text.clone()),
                ..FixArgs::default()
            }))),
        };
        let reply_key = EffectKey::Reply {
            channel: &thread.channel,
            anchor: &message_ts,
        };
        let command = match parsed {
            None => return Ok(()),
            Some(Err(e)) => {
                self.post_once(&reply_key, &thread, &OutMessage::Text(e.to_string()))
                    .await?;
                return Ok(());
            }
            Some(Ok(c)) => c,
        };
        if let Command::Fix(args) | Command::Plan(args) = &command
            && let Some(refusal) = self.refuse_named_repo(args)
        {
            self.post_once(&reply_key, &thread, &OutMessage::Text(refusal))
                .await?;
            return Ok(());
        }
        match command {
            Command::Help => {
                let help =
                    commands::help_text(&self.settings.bot_name, &self.settings.slash_command);
                self.post_once(&reply_key, &thread, &OutMessage::Text(help))
                    .await?;
            }
            Command::Status => {
                let text = self.status_text(&thread).await?;
                self.post_once(&reply_key, &thread, &OutMessage::Text(text))
                    .await?;
            }
            Command::Plan(args) => {
                self.propose_plan(thread, Some(message_ts), user, args, None)
                    .await?;
            }
            Command::Fix(args) => {
                if self
                    .svc
                    .store
                    .chat_task_by_trigger(&thread.platform, &thread.channel, &message_ts)
                    .await?
                    .is_some()
                {
                    return Ok(());
                }
                if self
                    .queue_if_busy(&thread, &message_ts, &user, &text, via)
                    .await?
                {
                    return Ok(());
                }
                self.start_task(thread, Some(message_ts), user, args, None)
                    .await?;
            }
        }
        Ok(())
    }
}
