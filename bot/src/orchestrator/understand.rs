//! What a request asks for: the repository (named, chosen, or asked for) and the spec (from the
//! thread and the repository's instructions for agents, by the model, or the plain thread when
//! the model fails).

use super::*;

impl Bot {
    /// Reads the thread, picks the repository, and makes the spec (the model's, told the
    /// repository's instructions for agents, or the plain thread when the model fails, saying
    /// so). `None` when no repository could be chosen: the status message then says how to
    /// name one, and no spec is made.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn understand(
        &self,
        thread: &ThreadRef,
        args: &FixArgs,
        anchor: &str,
        status_ts: &str,
        trigger_ts: Option<&str>,
        requester: &str,
        kind: &str,
    ) -> Result<Option<(TaskSpec, String)>, HandleError> {
        let transcript = self.transcript(thread, anchor).await?;
        // The repository first: the spec step reads its instructions for agents.
        let repo = match self
            .resolve_repo(args.repo.as_deref(), thread, &transcript)
            .await?
        {
            RepoChoice::Use(repo) => repo,
            RepoChoice::Refused(text) => {
                self.refuse_in_status(thread, status_ts, trigger_ts, text)
                    .await?;
                return Ok(None);
            }
            RepoChoice::Unknown if !self.svc.config.repos.is_empty() => {
                // Ask, with a menu of the configured repositories; the request waits.
                let timeout = self.svc.config.question_timeout_secs.unwrap_or(15 * 60);
                let question = crate::store::Question {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    platform: thread.platform.clone(),
                    workspace: thread.workspace.clone(),
                    channel: thread.channel.clone(),
                    thread: thread.thread.clone(),
                    trigger_ts: trigger_ts.map(String::from),
                    requester: requester.to_string(),
                    kind: kind.to_string(),
                    instructions: args.instructions.clone(),
                    base_ref: args.base.clone(),
                    attempts: args.attempts,
                    message_ts: Some(status_ts.to_string()),
                    expires_at: chrono::Utc::now()
                        + chrono::Duration::seconds(i64::try_from(timeout).unwrap_or(900)),
                };
                self.svc.store.ask(&question).await?;
                self.wake.notify_one();
                let view = crate::chat::RepoQuestionView {
                    question_id: question.id,
                    requester: requester.to_string(),
                    repos: self
                        .svc
                        .config
                        .repos
                        .iter()
                        .map(|r| r.name.clone())
                        .collect(),
                };
                self.port
                    .update(thread, status_ts, &OutMessage::RepoQuestion(view))
                    .await?;
                return Ok(None);
            }
            RepoChoice::Unknown => {
                let text = format!(
                    "Which repository? Say `@{} fix this repo=owner/name`, or set this channel's default with `{} repo owner/name`.",
                    self.settings.bot_name, self.settings.slash_command
                );
                self.port
                    .update(thread, status_ts, &OutMessage::Text(text))
                    .await?;
                if let Some(ts) = trigger_ts {
                    self.react_once(thread, ts, Reaction::Working, false).await;
                }
                return Ok(None);
            }
        };
        let spec = self
            .spec_of(thread, &transcript, args, anchor, Some(&repo))
            .await?;
        Ok(Some((spec, repo)))
    }

    /// The thread as the model reads it (saying once when the platform withheld messages).
    async fn transcript(&self, thread: &ThreadRef, anchor: &str) -> Result<String, HandleError> {
        let messages = self.port.read_thread(thread).await?;
        let (pairs, withheld) = thread_read::transcript_pairs(&messages);
        if withheld {
            let key = EffectKey::Withheld {
                channel: &thread.channel,
                anchor,
            };
            let text = self.port.hidden_messages_notice();
            self.post_once(&key, thread, &OutMessage::Text(text))
                .await?;
        }
        let transcript = spec::transcript(&pairs, 60_000);
        Ok(transcript)
    }

    /// The spec of the thread so far: the model's, or the plain thread when the model fails
    /// (saying so).
    pub(super) async fn read_spec(
        &self,
        thread: &ThreadRef,
        args: &FixArgs,
        anchor: &str,
        repo: &str,
    ) -> Result<TaskSpec, HandleError> {
        let transcript = self.transcript(thread, anchor).await?;
        self.spec_of(thread, &transcript, args, anchor, Some(repo))
            .await
    }

    /// The spec: the model's (told the repository's instructions for agents, when the
    /// repository is known), or the plain thread when the model fails (saying so). The spec
    /// call's tokens go with the spec, to the task that runs it.
    async fn spec_of(
        &self,
        thread: &ThreadRef,
        transcript: &str,
        args: &FixArgs,
        anchor: &str,
        repo: Option<&str>,
    ) -> Result<TaskSpec, HandleError> {
        let meter = threadsmith_runner::UsageMeter::default();
        let mut spec = match self.model().map(|m| m.with_meter(meter.clone())) {
            Some(model) => {
                let notes = match repo {
                    Some(repo) => {
                        crate::instructions::load::for_spec_step(
                            &self.svc.repos,
                            &self.svc.config,
                            repo,
                            args.base.as_deref(),
                        )
                        .await
                    }
                    None => None,
                };
                match spec::from_thread_in_repo(
                    &model,
                    transcript,
                    args.instructions.as_deref(),
                    notes.as_deref(),
                )
                .await
                {
                    Ok(spec) => spec,
                    Err(why) => {
                        // The reason is for the operator (it may quote the endpoint).
                        tracing::warn!(error = %why, "the model could not summarise a thread");
                        let key = EffectKey::SpecFallback {
                            channel: &thread.channel,
                            anchor,
                        };
                        let text = "I could not summarise the thread with the model; the agents get the thread as it is.";
                        self.post_once(&key, thread, &OutMessage::Text(text.into()))
                            .await?;
                        let title = self.port.thread_title(thread).await;
                        spec::plain_from_thread(
                            transcript,
                            args.instructions.as_deref(),
                            title.as_deref(),
                        )
                    }
                }
            }
            None => {
                let title = self.port.thread_title(thread).await;
                spec::plain_from_thread(transcript, args.instructions.as_deref(), title.as_deref())
            }
        };
        spec.usage.add(&meter.get());
        Ok(spec)
    }

    pub(super) fn model(&self) -> Option<threadsmith_runner::ModelClient> {
        self.svc
            .config
            .model_config()
            .and_then(|m| threadsmith_runner::ModelClient::new(m).ok())
            .map(|m| m.with_purpose("spec"))
    }
}
