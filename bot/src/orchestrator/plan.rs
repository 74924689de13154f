//! `@threadsmith plan`: a plan proposed with Run it and Revise; the buttons and the revision form.

use super::*;

impl Bot {
    /// "@threadsmith plan": the spec and a plan, posted with Run it and Revise; nothing runs
    /// until someone allowed says so. A revision starts from the earlier plan and its feedback.
    pub(super) async fn propose_plan(
        self: &Arc<Self>,
        thread: ThreadRef,
        trigger_ts: Option<String>,
        user: String,
        args: FixArgs,
        revision: Option<(crate::store::Plan, String)>,
    ) -> Result<(), HandleError> {
        let anchor = match (&trigger_ts, &revision) {
            (Some(ts), _) => ts.clone(),
            (None, Some((p, _))) => format!("revise-{}", p.id),
            (None, None) => uuid::Uuid::new_v4().simple().to_string(),
        };
        let Some(model) = self.model() else {
            self.post_once(
                &EffectKey::Reply {
                    channel: &thread.channel,
                    anchor: &anchor,
                },
                &thread,
                &OutMessage::Text(
                    "Planning needs the model endpoint, and none is configured.".into(),
                ),
            )
            .await?;
            return Ok(());
        };
        // The plan call's tokens go with the spec, to the task that runs it.
        let meter = threadsmith_runner::UsageMeter::default();
        let model = model.with_meter(meter.clone());
        if let Some(ts) = &trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, true).await;
        }
        let status_ts = self
            .post_once(
                &EffectKey::PlanStatus {
                    channel: &thread.channel,
                    anchor: &anchor,
                },
                &thread,
                &OutMessage::Text("Reading the thread to make a plan…".into()),
            )
            .await?;
        let (mut spec, repo, base, attempts, earlier) = match &revision {
            Some((old, feedback)) => {
                let spec = serde_json::from_str::<TaskSpec>(&old.spec_json)
                    .unwrap_or_else(|_| TaskSpec::from_text(&old.plan));
                (
                    spec,
                    old.repo.clone(),
                    old.base_ref.clone(),
                    old.attempts,
                    Some((old.plan.clone(), feedback.clone())),
                )
            }
            None => match self
                .understand(
                    &thread,
                    &args,
                    &anchor,
                    &status_ts,
                    trigger_ts.as_deref(),
                    &user,
                    "plan",
                )
                .await?
            {
                Some((spec, repo)) => (spec, repo, args.base.clone(), args.attempts, None),
                None => return Ok(()),
            },
        };
        let text = match spec::plan(
            &model,
            &spec,
            earlier.as_ref().map(|(p, f)| (p.as_str(), f.as_str())),
        )
        .await
        {
            Ok(text) => text,
            Err(why) => {
                tracing::warn!(error = %why, "the model could not make a plan");
                self.port
                    .update(
                        &thread,
                        &status_ts,
                        &OutMessage::Text(format!(
                            "I could not make a plan with the model. Say `@{} fix this` to run the agents without one.",
                            self.settings.bot_name
                        )),
                    )
                    .await?;
                return Ok(());
            }
        };
        spec.usage.add(&meter.get());
        let plan = crate::store::Plan {
            id: uuid::Uuid::new_v4().simple().to_string(),
            platform: thread.platform.clone(),
            workspace: thread.workspace.clone(),
            channel: thread.channel.clone(),
            thread: thread.thread.clone(),
            trigger_ts: trigger_ts.clone(),
            requester: revision
                .as_ref()
                .map_or(user.clone(), |(old, _)| old.requester.clone()),
            repo: repo.clone(),
            base_ref: base,
            attempts,
            spec_json: serde_json::to_string(&spec).unwrap_or_default(),
            plan: text.clone(),
            revises: revision.as_ref().map(|(old, _)| old.id.clone()),
        };
        self.svc.store.create_plan(&plan).await?;
        self.port
            .update(
                &thread,
                &status_ts,
                &OutMessage::Plan(crate::chat::PlanView {
                    plan_id: plan.id.clone(),
                    title: spec.title.clone(),
                    plan: text,
                    repo,
                }),
            )
            .await?;
        if let Some(ts) = &trigger_ts {
            self.react_once(&thread, ts, Reaction::Working, false).await;
        }
        Ok(())
    }

    pub(super) async fn on_plan_button(
        self: &Arc<Self>,
        thread: ThreadRef,
        user: String,
        action: ButtonAction,
        plan_id: String,
        trigger_id: Option<String>,
    ) -> Result<(), HandleError> {
        let Some(plan) = self.svc.store.plan(&plan_id).await? else {
            self.port
                .ephemeral(&thread, &user, "I don't know that plan any more.")
                .await?;
            return Ok(());
        };
        if !self.may_act_for(&user, &plan.requester).await {
            self.port
                .ephemeral(
                    &thread,
                    &user,
                    "Only the person who asked for this plan or a maintainer can run or revise it.",
                )
                .await?;
            return Ok(());
        }
        match action {
            ButtonAction::RevisePlan { .. } => {
                if let Some(trigger) = trigger_id {
                    self.port
                        .open_form(&trigger, &crate::chat::Form::RevisePlan { plan_id })
                        .await?;
                }
            }
            _ => {
                if !self
                    .svc
                    .store
                    .record_effect(&EffectKey::RunPlan { plan_id: &plan_id }.as_key(), &user)
                    .await?
                {
                    self.port
                        .ephemeral(&thread, &user, "This plan is already running.")
                        .await?;
                    return Ok(());
                }
                let mut spec = serde_json::from_str::<TaskSpec>(&plan.spec_json)
                    .unwrap_or_else(|_| TaskSpec::from_text(&plan.plan));
                spec.plan = Some(plan.plan.clone());
                let thread =
                    thread_of(&plan.platform, &plan.workspace, &plan.channel, &plan.thread);
                let args = FixArgs {
                    attempts: plan.attempts,
                    ..FixArgs::default()
                };
                self.start_task(
                    thread,
                    None,
                    plan.requester.clone(),
                    args,
                    Some(Prepared {
                        spec,
                        repo: plan.repo.clone(),
                        base: plan.base_ref.clone(),
                        retry_of: None,
                        round: None,
                    }),
                )
                .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn on_plan_revision(
        self: &Arc<Self>,
        plan_id: String,
        user: String,
        feedback: String,
    ) -> Result<(), HandleError> {
        let Some(plan) = self.svc.store.plan(&plan_id).await? else {
            return Ok(());
        };
        if !self.may_act_for(&user, &plan.requester).await {
            return Ok(());
        }
        let thread = thread_of(&plan.platform, &plan.workspace, &plan.channel, &plan.thread);
        self.propose_plan(
            thread,
            None,
            user,
            FixArgs::default(),
            Some((plan, feedback)),
        )
        .await
    }
}
