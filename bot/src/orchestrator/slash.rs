//! Slash commands (`/fix …`): describe, thread links, status, help, the channel's repository.

use super::*;

impl Bot {
    pub(super) async fn on_slash(
        self: &Arc<Self>,
        platform: String,
        workspace: String,
        channel: String,
        user: String,
        text: String,
    ) -> Result<(), HandleError> {
        // Replies to a command go to the channel, seen only by the person who typed it.
        let here = ThreadRef {
            platform: platform.clone(),
            workspace: workspace.clone(),
            channel: channel.clone(),
            thread: String::new(),
        };
        let command = match commands::parse_slash(&text) {
            Ok(c) => c,
            Err(e) => {
                self.port.ephemeral(&here, &user, &e.to_string()).await?;
                return Ok(());
            }
        };
        // A `repo=` the allow-list refuses: before anything is posted or read.
        if let SlashCommand::Describe(args) | SlashCommand::FromThread { args, .. } = &command
            && let Some(refusal) = self.refuse_named_repo(args)
        {
            self.port.ephemeral(&here, &user, &refusal).await?;
            return Ok(());
        }
        match command {
            SlashCommand::Help => {
                let help =
                    commands::help_text(&self.settings.bot_name, &self.settings.slash_command);
                self.port.ephemeral(&here, &user, &help).await?;
            }
            SlashCommand::Status => {
                let text = self.status_text(&here).await?;
                self.port.ephemeral(&here, &user, &text).await?;
            }
            SlashCommand::ShowRepo => {
                let repo = self.svc.store.channel_repo(&platform, &channel).await?;
                let text = match repo.or(self.svc.config.default_repo.clone()) {
                    Some(r) => format!("This channel's repository is `{r}`."),
                    None => format!(
                        "This channel has no repository yet: `{} repo owner/name` sets it.",
                        self.settings.slash_command
                    ),
                };
                self.port.ephemeral(&here, &user, &text).await?;
            }
            SlashCommand::SetRepo(repo) => {
                let repo = match self.check_repo(repo) {
                    Ok(repo) => repo,
                    Err(text) => {
                        self.port.ephemeral(&here, &user, &text).await?;
                        return Ok(());
                    }
                };
                self.svc
                    .store
                    .set_channel_repo(&platform, &channel, &repo)
                    .await?;
                self.port
                    .ephemeral(
                        &here,
                        &user,
                        &format!(
                            "Tasks in this channel now use `{repo}` unless they name another."
                        ),
                    )
                    .await?;
            }
            SlashCommand::Describe(args) => {
                // A new thread: the description is its first message.
                let description = args.instructions.clone().unwrap_or_default();
                // Their words, made inert: no mention or markup of theirs survives.
                let opening = OutMessage::Text(format!("<@{user}> asked: {}", inert(&description)));
                let top = ThreadRef {
                    thread: String::new(),
                    ..here.clone()
                };
                let ts = self.port.post(&top, &opening).await?;
                let thread = ThreadRef {
                    thread: ts.clone(),
                    ..here
                };
                self.start_task(thread, Some(ts), user, args, None).await?;
            }
            SlashCommand::FromThread { link, args } => {
                match self.linked_thread(&platform, &workspace, link).await {
                    Some((thread, ts)) => {
                        if self
                            .svc
                            .store
                            .chat_task_by_trigger(&thread.platform, &thread.channel, &ts)
                            .await?
                            .is_none()
                        {
                            if self.thread_busy(&thread).await? {
                                self.port
                                    .ephemeral(&here, &user, thread_queue::BUSY_ELSEWHERE)
                                    .await?;
                            } else {
                                self.start_task(thread, Some(ts), user, args, None).await?;
                            }
                        }
                    }
                    None => {
                        self.port
                            .ephemeral(&here, &user, "That link is not a thread of this workspace.")
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }
}
