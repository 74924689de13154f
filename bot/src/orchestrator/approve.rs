//! Approve clicks: the approval, publishing it (shared with every other attempt at once, in any
//! process: see `publish::attempt`), what the clicker and the thread are told, and the summary's
//! edit (only when what it shows changed).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Bot, EffectKey, HandleError, inert};
use crate::chat::{OutMessage, ThreadRef};
use crate::publish::{Mode, PublishError};
use crate::store::{ChatTaskLink, Publication, PublicationState};

/// "pull request #3: <url>" / "branch `x`: <url>".
fn published_words(p: &Publication) -> Option<String> {
    let url = p.url.as_deref()?;
    Some(match p.pr_number {
        Some(n) => format!("pull request #{n}: {url}"),
        None => format!("branch `{}`: {url}", p.branch),
    })
}

impl Bot {
    /// An Approve click of rollout `rollout` by `user`.
    pub(super) async fn on_approve(
        self: &Arc<Self>,
        thread: ThreadRef,
        link: &ChatTaskLink,
        user: String,
        task_id: String,
        rollout: u32,
    ) -> Result<(), HandleError> {
        let rollouts = self.svc.store.rollouts(&task_id).await?;
        if !rollouts.iter().any(|r| r.index == rollout) {
            self.port
                .ephemeral(&thread, &user, "That rollout does not exist.")
                .await?;
            return Ok(());
        }
        let before = self.svc.store.approval(&task_id).await?;
        let approval = self.svc.store.approve(&task_id, rollout, &user).await?;
        let publication = self.svc.store.publication(&task_id).await?;
        let published = publication
            .as_ref()
            .filter(|p| p.state == PublicationState::Published && p.rollout == approval.rollout)
            .and_then(published_words);
        if approval.rollout != rollout || approval.approved_by != user {
            let mut text = if approval.rollout == rollout {
                format!(
                    "Rollout {rollout} is already approved, by <@{}>.",
                    approval.approved_by
                )
            } else {
                format!(
                    "This task is already approved: rollout {} by <@{}>, so rollout {rollout} was not approved.",
                    approval.rollout, approval.approved_by
                )
            };
            match &published {
                Some(p) => text.push_str(&format!(" Rollout {} is at {p}", approval.rollout)),
                None => text.push_str(&format!(
                    " Rollout {} is not published yet.",
                    approval.rollout
                )),
            }
            self.port.ephemeral(&thread, &user, &text).await?;
            return Ok(());
        }
        // The same person again: say where it stands rather than nothing (and do not edit the
        // summary again). An approval whose publishing failed, or that was never tried, is tried.
        if before.is_some() {
            let state = publication.as_ref().map(|p| p.state);
            let news = match (&published, state) {
                (Some(p), _) => Some(format!("it is at {p}")),
                (None, _) if self.svc.publisher.mode() == Mode::Off => Some(
                    "publishing is not configured, so the approval is recorded only.".to_string(),
                ),
                (None, Some(PublicationState::Publishing)) => {
                    Some("its pull request is being opened; I will post it here.".to_string())
                }
                _ => None,
            };
            if let Some(news) = news {
                self.port
                    .ephemeral(
                        &thread,
                        &user,
                        &format!("You already approved rollout {rollout}: {news}"),
                    )
                    .await?;
                return Ok(());
            }
        }
        self.publish(&thread, link, &task_id, rollout, &user).await
    }

    /// After an approval: push the branch and open the pull request, then say so in the thread
    /// and show it on the summary.
    async fn publish(
        self: &Arc<Self>,
        thread: &ThreadRef,
        link: &ChatTaskLink,
        task_id: &str,
        rollout: u32,
        user: &str,
    ) -> Result<(), HandleError> {
        let publisher = self.svc.publisher.clone();
        let named = self.rollout_name(task_id, rollout).await?;
        if publisher.mode() == Mode::Off {
            self.post_once(
                &EffectKey::Approved { task_id },
                thread,
                &OutMessage::Text(format!(
                    "{named} approved by <@{user}>. {}",
                    PublishError::Off
                )),
            )
            .await?;
            self.refresh_summary(thread, link, task_id).await?;
            return Ok(());
        }
        self.post_once(
            &EffectKey::Approved { task_id },
            thread,
            &OutMessage::Text(format!(
                "{named} approved by <@{user}>. {}",
                if self
                    .svc
                    .publisher
                    .follows_pull_request(task_id)
                    .await?
                    .is_some()
                {
                    "Updating the task's pull request…"
                } else {
                    "Pushing a branch and opening a pull request…"
                }
            )),
        )
        .await?;
        let anchor = link.summary_ts.as_ref().or(link.trigger_ts.as_ref());
        let thread_link = match anchor {
            Some(ts) => self.port.permalink(thread, ts).await,
            None => None,
        };
        let ctx = crate::publish::Context {
            thread_link,
            approved_by: None,
        };
        match publisher.publish(task_id, rollout, &ctx).await {
            Ok(p) => {
                let what = match p.pr_number {
                    Some(n) if p.updated => {
                        format!(
                            "Pull request #{n} now holds {}: {}",
                            named.to_lowercase(),
                            p.url
                        )
                    }
                    Some(n) => format!("Pull request #{n} is open: {}", p.url),
                    None => format!("Pushed branch `{}`: {}", p.branch, p.url),
                };
                self.post_once(
                    &EffectKey::Published { task_id },
                    thread,
                    &OutMessage::Text(what),
                )
                .await?;
                self.refresh_summary(thread, link, task_id).await?;
            }
            Err(e @ PublishError::Conflict { .. }) => {
                tracing::info!(task = task_id, error = %e, "the approved patch no longer applies");
                self.refresh_summary(thread, link, task_id).await?;
                let key = EffectKey::Conflict { task_id };
                if self.svc.store.effect(&key.as_key()).await?.is_some() {
                    self.port
                        .ephemeral(thread, user, &inert(&e.to_string()))
                        .await?;
                } else {
                    self.post_once(
                        &key,
                        thread,
                        &OutMessage::RetryOffer {
                            task_id: task_id.to_string(),
                            text: inert(&e.to_string()),
                        },
                    )
                    .await?;
                }
            }
            // Another attempt (another click, process or shell) failed while this one waited
            // for it: that one says so in the thread.
            Err(e @ (PublishError::FailedElsewhere { .. } | PublishError::StillPublishing)) => {
                self.refresh_summary(thread, link, task_id).await?;
                self.port
                    .ephemeral(thread, user, &inert(&e.to_string()))
                    .await?;
            }
            Err(e) => {
                tracing::warn!(task = task_id, error = %e, "publishing failed");
                self.refresh_summary(thread, link, task_id).await?;
                let text = match &e {
                    PublishError::Unreadable { .. } => inert(&e.to_string()),
                    _ => format!(
                        "I could not open the pull request: {}\nThe approval is withdrawn: approve again once that is fixed.",
                        inert(&e.to_string())
                    ),
                };
                // Once per failed attempt, however many clicks waited on it.
                let attempt = self
                    .svc
                    .store
                    .publication(task_id)
                    .await?
                    .and_then(|p| p.attempt);
                match attempt {
                    Some(a) => {
                        self.post_once(
                            &EffectKey::PublishFailed {
                                task_id,
                                attempt: &a,
                            },
                            thread,
                            &OutMessage::Text(text),
                        )
                        .await?;
                    }
                    None => {
                        self.port.post(thread, &OutMessage::Text(text)).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// "Rollout 2", or "Rollout 2 of round 1" once the task has follow-up rounds.
    async fn rollout_name(&self, task_id: &str, rollout: u32) -> Result<String, HandleError> {
        let place = self.svc.store.place(task_id).await?;
        let rounds = self.svc.store.chain(task_id).await?.len();
        Ok(if place.round == 1 && rounds <= 1 {
            format!("Rollout {rollout}")
        } else {
            format!("Rollout {rollout} of round {}", place.round)
        })
    }

    /// Edits the summary to show what the store holds now, unless it shows that already (ten
    /// clicks, two processes: one edit).
    pub(super) async fn refresh_summary(
        &self,
        thread: &ThreadRef,
        link: &ChatTaskLink,
        task_id: &str,
    ) -> Result<(), HandleError> {
        let ts = match self.svc.store.chat_task(task_id).await? {
            Some(l) => l.summary_ts,
            None => link.summary_ts.clone(),
        };
        if let Some(ts) = ts {
            let message = OutMessage::Summary(self.summary_view(task_id).await?);
            let key = EffectKey::SummaryShown { task_id, ts: &ts }.as_key();
            if !self
                .svc
                .store
                .replace_effect(&key, &summary_hash(&message))
                .await?
            {
                return Ok(());
            }
            if let Err(e) = self.port.update(thread, &ts, &message).await {
                // Not shown after all: the next refresh edits again.
                self.svc.store.replace_effect(&key, "").await?;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Records what a just-posted summary shows, so that a refresh showing the same is skipped.
    pub(super) async fn summary_shown(
        &self,
        task_id: &str,
        ts: &str,
        message: &OutMessage,
    ) -> Result<(), HandleError> {
        self.svc
            .store
            .replace_effect(
                &EffectKey::SummaryShown { task_id, ts }.as_key(),
                &summary_hash(message),
            )
            .await?;
        Ok(())
    }
}

/// A digest of what a message shows.
fn summary_hash(message: &OutMessage) -> String {
    let digest = Sha256::digest(format!("{message:?}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
