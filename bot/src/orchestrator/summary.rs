//! The summary: posted once when a task ends, and the view the adapters render.

use super::*;
use crate::chat::RolloutKind;

impl Bot {
    pub(super) async fn post_summary(
        &self,
        thread: &ThreadRef,
        task_id: &str,
    ) -> Result<(), HandleError> {
        let view = self.summary_view(task_id).await?;
        if self.svc.config.public_url.is_none() {
            for r in &view.rollouts {
                let key = EffectKey::Upload {
                    task_id,
                    rollout: r.index,
                }
                .as_key();
                if r.files > 0
                    && self.svc.store.effect(&key).await?.is_none()
                    && let Some(diff) = self.svc.store.diff(task_id, r.index).await?
                {
                    // A patch that cannot be attached must not hold back the summary.
                    match self
                        .port
                        .upload(
                            thread,
                            &format!("rollout-{}.patch", r.index),
                            diff.patch.into_bytes(),
                            &format!("Rollout {} — {}", r.index, r.outcome),
                        )
                        .await
                    {
                        Ok(()) => {
                            self.svc.store.record_effect(&key, "").await?;
                        }
                        Err(e) => tracing::warn!(error = %e, "could not attach a patch"),
                    }
                }
            }
        }
        let fresh = self
            .svc
            .store
            .effect(&EffectKey::Summary { task_id }.as_key())
            .await?
            .is_none();
        let message = OutMessage::Summary(view);
        let ts = self
            .post_once(&EffectKey::Summary { task_id }, thread, &message)
            .await?;
        if fresh {
            self.summary_shown(task_id, &ts, &message).await?;
        }
        self.svc.store.set_summary_ts(task_id, &ts).await?;
        // The task page links back to the thread.
        let key = EffectKey::Permalink { task_id }.as_key();
        if self.svc.store.effect(&key).await?.is_none()
            && let Some(link) = self.port.permalink(thread, &ts).await
        {
            self.svc.store.record_effect(&key, &link).await?;
        }
        Ok(())
    }

    /// The summary as stored now (rank order, approval, the task it retries).
    pub async fn summary_view(&self, task_id: &str) -> Result<SummaryView, HandleError> {
        let report = pipeline::report(self.svc.store.as_ref(), task_id).await?;
        let link = self.svc.store.chat_task(task_id).await?;
        let approval = self.svc.store.approval(task_id).await?;
        let mut previous = None;
        if let Some(prev) = link.as_ref().and_then(|l| l.retry_of.clone())
            && let Some(prev_link) = self.svc.store.chat_task(&prev).await?
            && let Some(ts) = prev_link.summary_ts.or(prev_link.status_ts)
        {
            let thread = thread_of(
                &prev_link.platform,
                &prev_link.workspace,
                &prev_link.channel,
                &prev_link.thread,
            );
            previous = self.port.permalink(&thread, &ts).await;
        }
        let pages = match &self.svc.config.public_url {
            Some(u) => Some(crate::web::task_url(
                u,
                &self.svc.store.web_token(task_id).await?,
            )),
            None => None,
        };
        let published = self
            .svc
            .store
            .publication(task_id)
            .await?
            .filter(|p| p.state == crate::store::PublicationState::Published)
            .and_then(|p| {
                let label = match p.pr_number {
                    Some(n) => format!("pull request #{n}"),
                    None => format!("branch {}", p.branch),
                };
                p.url.map(|u| (u, label))
            });
        let price = self.svc.config.price(report.task.model.as_deref());
        let rollouts = report
            .rollouts
            .iter()
            .map(|r| RolloutLine {
                index: r.index,
                rank: r.rank.unwrap_or(0),
                outcome: outcome_words::outcome_words(r, report.task.tests.as_ref()),
                kind: rollout_kind(r.outcome),
                tests: r.test.as_ref().map(|t| t.passed),
                added: r.lines_added,
                removed: r.lines_removed,
                files: r.files_changed,
                summary: r
                    .summary
                    .clone()
                    .filter(|s| !s.trim().is_empty())
                    .or(r.detail.clone())
                    .unwrap_or_default(),
                diff_link: pages
                    .as_ref()
                    .map(|base| format!("{base}/rollouts/{}", r.index)),
                network: r.network.clone(),
                // Said only when it carries more than the test result (its first reason).
                headline: r
                    .rank_headline
                    .clone()
                    .filter(|h| r.rank_reasons.first() != Some(h)),
                cost: crate::cost::rollout_line(r, price),
            })
            .collect();
        Ok(SummaryView {
            task_id: task_id.to_string(),
            title: report.task.title.clone(),
            rollouts,
            approved: approval.map(|a| (a.rollout, a.approved_by)),
            published,
            previous,
            feedback: link.and_then(|l| l.feedback),
            error: report.task.error.clone(),
            retried: self.svc.store.retry_of(task_id).await?.map(|l| l.task_id),
            cost: crate::cost::task_line(&report.task, &report.rollouts, price),
            round: crate::rounds::summary_line(self.svc.store.as_ref(), task_id).await?,
        })
    }
}

/// How a summary marks a rollout: an untested change is not a failure.
pub(super) fn rollout_kind(outcome: Option<Outcome>) -> RolloutKind {
    match outcome {
        Some(Outcome::Succeeded) => RolloutKind::Succeeded,
        Some(Outcome::Untested) => RolloutKind::Untested,
        Some(
            Outcome::TestsFailed
            | Outcome::GaveUp
            | Outcome::TimedOut
            | Outcome::LimitReached
            | Outcome::Errored
            | Outcome::Cancelled,
        )
        | None => RolloutKind::Failed,
    }
}

/// The reaction that ends a task on its request: ✅ when a rollout succeeded, a neutral mark
/// when the best is an untested change, else ❌.
pub(super) fn end_reaction(outcomes: impl IntoIterator<Item = Option<Outcome>>) -> Reaction {
    let best = outcomes
        .into_iter()
        .map(rollout_kind)
        .min_by_key(|k| match k {
            RolloutKind::Succeeded => 0,
            RolloutKind::Untested => 1,
            RolloutKind::Failed => 2,
        });
    match best {
        Some(RolloutKind::Succeeded) => Reaction::Done,
        Some(RolloutKind::Untested) => Reaction::Untested,
        Some(RolloutKind::Failed) | None => Reaction::Failed,
    }
}
