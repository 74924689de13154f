//! The status message: edited as a task moves, at most every `status_edit_interval`.

use super::*;

impl Bot {
    /// The sink given to the pipeline, and the task that edits the status message from it:
    /// edits are coalesced (at most one per interval), the last state is always written.
    pub(super) fn status_editor(
        self: &Arc<Self>,
        thread: ThreadRef,
        status_ts: String,
        link: ChatTaskLink,
        title: String,
    ) -> (ChatProgress, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
        let bot = self.clone();
        let interval = self.settings.status_edit_interval;
        let handle = tokio::spawn(async move {
            let mut view = StatusView {
                task_id: link.task_id.clone(),
                title,
                headline: "Preparing the repository…".into(),
                rollouts: Vec::new(),
                running: true,
            };
            let mut last_sent: Option<StatusView> = None;
            let mut open = true;
            while open {
                // Take everything that is waiting, then write the state once.
                match rx.recv().await {
                    None => open = false,
                    Some(u) => bot.apply(&mut view, u, &link).await,
                }
                while let Ok(u) = rx.try_recv() {
                    bot.apply(&mut view, u, &link).await;
                }
                // A process that handed its tasks over says nothing more about them: the
                // adopter reports them.
                if last_sent.as_ref() != Some(&view) && !bot.svc.retired() {
                    if let Err(e) = bot
                        .port
                        .update(&thread, &status_ts, &OutMessage::Status(view.clone()))
                        .await
                    {
                        tracing::warn!(error = %e, "could not edit the status message");
                    }
                    last_sent = Some(view.clone());
                    if open && !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                }
            }
        });
        (ChatProgress { tx }, handle)
    }

    pub(super) async fn apply(&self, view: &mut StatusView, update: Update, link: &ChatTaskLink) {
        match update {
            Update::Created => {
                if let Err(e) = self.svc.store.link_chat_task(link).await {
                    tracing::error!(error = %e, "could not link the task to its thread");
                } else if let Some(previous) = &link.retry_of {
                    self.show_retried(previous).await;
                }
            }
            Update::Headline(h) => view.headline = h,
            Update::Rollouts(ks) => {
                view.rollouts = ks
                    .into_iter()
                    .map(|k| (k, "starting".to_string()))
                    .collect();
            }
            Update::Rollout(k, text) => {
                if let Some(entry) = view.rollouts.iter_mut().find(|(i, _)| *i == k) {
                    entry.1 = text;
                }
            }
            Update::Done(text) => {
                // The first end wins: "Failed: …" is not overwritten by the final "Done.".
                if view.running {
                    view.headline = self.final_headline(&link.task_id, text).await;
                }
                view.running = false;
            }
        }
    }
}
