//! The repository question: an answer from the menu, or its expiry.

use super::*;

impl Bot {
    pub(super) async fn on_repo_chosen(
        self: &Arc<Self>,
        question_id: String,
        thread: ThreadRef,
        user: String,
        repo: String,
    ) -> Result<(), HandleError> {
        let Some(q) = self.svc.store.question(&question_id).await? else {
            return Ok(());
        };
        if user != q.requester {
            self.port
                .ephemeral(
                    &thread,
                    &user,
                    &format!("Only <@{}> can answer this.", q.requester),
                )
                .await?;
            return Ok(());
        }
        if !self.svc.config.repos.iter().any(|r| r.name == repo) {
            return Ok(());
        }
        if !self
            .svc
            .store
            .close_question(&question_id, "answered")
            .await?
        {
            return Ok(());
        }
        let thread = thread_of(&q.platform, &q.workspace, &q.channel, &q.thread);
        let args = FixArgs {
            instructions: q.instructions.clone(),
            repo: Some(repo),
            base: q.base_ref.clone(),
            attempts: q.attempts,
        };
        if q.kind == "plan" {
            self.propose_plan(
                thread,
                q.trigger_ts.clone(),
                q.requester.clone(),
                args,
                None,
            )
            .await
        } else {
            self.start_task(
                thread,
                q.trigger_ts.clone(),
                q.requester.clone(),
                args,
                None,
            )
            .await
        }
    }

    pub(super) async fn on_question_expired(&self, question_id: String) -> Result<(), HandleError> {
        let Some(q) = self.svc.store.question(&question_id).await? else {
            return Ok(());
        };
        if !self
            .svc
            .store
            .close_question(&question_id, "expired")
            .await?
        {
            return Ok(());
        }
        let thread = thread_of(&q.platform, &q.workspace, &q.channel, &q.thread);
        let text = format!(
            "No repository was chosen, so I stopped here. Mention me again with `repo=owner/name` when you are ready, <@{}>.",
            q.requester
        );
        match &q.message_ts {
            Some(ts) => {
                self.port
                    .update(&thread, ts, &OutMessage::Text(text))
                    .await?
            }
            None => {
                self.port.post(&thread, &OutMessage::Text(text)).await?;
            }
        }
        if let Some(ts) = &q.trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, false).await;
        }
        Ok(())
    }
}

impl Bot {
    /// Enqueues an expiry for every question past its time; returns when the next one expires.
    pub(super) async fn expire_questions(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let open = match self.svc.store.open_questions().await {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %e, "could not read open questions");
                return None;
            }
        };
        let now = chrono::Utc::now();
        let mut next = None;
        for q in open
            .into_iter()
            .filter(|q| q.platform == self.settings.platform)
        {
            if q.expires_at <= now {
                let event = ChatEvent::QuestionExpired {
                    question_id: q.id.clone(),
                };
                let key = EffectKey::Expire { question_id: &q.id }.as_key();
                let Ok(json) = serde_json::to_string(&event) else {
                    continue;
                };
                match self.svc.store.enqueue(&key, &q.platform, &json).await {
                    // Picked up on the next turn of the loop.
                    Ok(Some(_)) => next = Some(now),
                    // Queued before: its handler closes the question.
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "could not enqueue an expiry"),
                }
            } else if next.is_none() {
                next = Some(q.expires_at);
            }
        }
        next
    }
}
