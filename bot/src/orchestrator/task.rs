//! A request becomes a task: its spec and repository (`understand.rs`), then its run.

use super::*;

impl Bot {
    /// [`Self::start_task`] (in `thread_queue.rs`) once the request is this process's.
    pub(super) async fn start_task_inner(
        self: &Arc<Self>,
        thread: ThreadRef,
        trigger_ts: Option<String>,
        user: String,
        args: FixArgs,
        prepared: Option<Prepared>,
    ) -> Result<(), HandleError> {
        let task_id = TaskId::new();
        let anchor = trigger_ts.clone().unwrap_or_else(|| task_id.to_string());
        // A request is one process's at a time: another live process that took it (this
        // process's lease lapsed, so the event was taken again) keeps it.
        if let Some(key) = request_key(&thread, trigger_ts.as_deref())
            && !self
                .svc
                .store
                .claim_request(&key, self.svc.worker_id())
                .await?
        {
            tracing::warn!(request = %key, "another process is handling this request");
            return Ok(());
        }
        if let Some(ts) = &trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, true).await;
        }
        let status_key = EffectKey::Status {
            channel: &thread.channel,
            anchor: &anchor,
        };
        let status_ts = self
            .post_once(
                &status_key,
                &thread,
                &OutMessage::Status(StatusView {
                    task_id: task_id.to_string(),
                    title: "Reading the thread…".into(),
                    headline: "Working on it.".into(),
                    rollouts: Vec::new(),
                    // Cancel shows once the task exists.
                    running: false,
                }),
            )
            .await?;

        let started = self
            .run_started(
                thread.clone(),
                trigger_ts.clone(),
                user,
                args,
                prepared,
                task_id,
                anchor,
                status_ts.clone(),
            )
            .await;
        if let Some(key) = request_key(&thread, trigger_ts.as_deref())
            && let Err(e) = self
                .svc
                .store
                .release_request(&key, self.svc.worker_id())
                .await
        {
            tracing::warn!(error = %e, "could not release a request");
        }
        if let Err(e) = &started {
            // Never leave the thread waiting: say that it stopped, and why in our terms.
            tracing::error!(error = %e, "a task stopped on an internal error");
            let text = "Something went wrong on my side and this task stopped. Try again in a moment; the bot's log has the details.".to_string();
            let _ = self
                .port
                .update(&thread, &status_ts, &OutMessage::Text(text))
                .await;
            if let Some(ts) = &trigger_ts {
                self.react_once(&thread, ts, Reaction::Working, false).await;
                self.react_once(&thread, ts, Reaction::Failed, true).await;
            }
        }
        started
    }

    /// The rest of [`Self::start_task`], once the status message is up.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_started(
        self: &Arc<Self>,
        thread: ThreadRef,
        trigger_ts: Option<String>,
        user: String,
        args: FixArgs,
        prepared: Option<Prepared>,
        task_id: TaskId,
        anchor: String,
        status_ts: String,
    ) -> Result<(), HandleError> {
        // The spec: given (a Retry, a plan), or from the thread.
        let Prepared {
            spec,
            repo,
            base,
            retry_of,
            round,
        } = match prepared {
            Some(mut p) => {
                // A stored task's or plan's repository is checked again: the allow-list may
                // have changed since, and a stored row is no licence.
                match self.check_repo(p.repo.clone()) {
                    Ok(_) => {
                        if let Some(plan) = &p.round
                            && trigger_ts.is_some()
                        {
                            // A follow-up: the whole thread so far, and the new request.
                            p.spec = self.read_spec(&thread, &args, &anchor, &p.repo).await?;
                            p.spec.round = Some(plan.context.clone());
                        }
                        p
                    }
                    Err(text) => {
                        return self
                            .refuse_in_status(&thread, &status_ts, trigger_ts.as_deref(), text)
                            .await;
                    }
                }
            }
            None => match self
                .understand(
                    &thread,
                    &args,
                    &anchor,
                    &status_ts,
                    trigger_ts.as_deref(),
                    &user,
                    "fix",
                )
                .await?
            {
                Some((spec, repo)) => Prepared {
                    spec,
                    repo,
                    base: args.base.clone(),
                    retry_of: None,
                    round: None,
                },
                None => return Ok(()),
            },
        };
        // Reading the thread takes a while: a process that lost the request meanwhile stops
        // before it starts a task the other process starts too.
        if let Some(key) = request_key(&thread, trigger_ts.as_deref())
            && self.svc.store.effect(&key).await?.as_deref() != Some(self.svc.worker_id())
        {
            tracing::warn!(request = %key, "another process took this request over");
            return Ok(());
        }
        if self.svc.retired() {
            // Shutting down: the request is left to the process that takes its event again.
            return Ok(());
        }
        let feedback = spec.feedback.clone();
        let cancel = CancellationToken::new();
        self.running.insert(task_id.clone(), cancel.clone());
        let link = ChatTaskLink {
            task_id: task_id.to_string(),
            platform: thread.platform.clone(),
            workspace: thread.workspace.clone(),
            channel: thread.channel.clone(),
            thread: thread.thread.clone(),
            trigger_ts: trigger_ts.clone(),
            requester: user.clone(),
            status_ts: Some(status_ts.clone()),
            summary_ts: None,
            retry_of: retry_of.clone(),
            feedback: feedback.clone(),
        };
        // The round is stored before the task is: its pages and summary show it from the start.
        let round_start = match round {
            Some(plan) => {
                let mut link = plan.link;
                link.task_id = task_id.to_string();
                self.svc.store.set_round(&link).await?;
                self.show_later_round(&link.task_id).await?;
                Some(plan.start)
            }
            None => None,
        };
        let (sink, editor) =
            self.status_editor(thread.clone(), status_ts.clone(), link, spec.title.clone());
        let request = TaskRequest {
            text: spec.problem.clone(),
            repo,
            base,
            attempts: args.attempts.unwrap_or(self.svc.config.attempts()),
            origin: thread.platform.clone(),
            requester: Some(user.clone()),
            spec: Some(spec),
            task_id: Some(task_id.clone()),
            round: round_start,
        };
        let report = pipeline::run_task(&self.svc, request, &sink, cancel).await;
        drop(sink);
        let _ = editor.await;
        self.running.remove(task_id.as_str());
        report?;
        if !self.still_owned(task_id.as_str()).await? {
            // Reported by the process that took it over; saying more would contradict it.
            return Ok(());
        }
        self.summarise(&thread, task_id.as_str(), trigger_ts.as_deref())
            .await
    }
}
