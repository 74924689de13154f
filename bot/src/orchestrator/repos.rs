//! The one place where a chat request's repository is chosen and checked against the
//! allow-list (`[[repos]]`, `default_repo`, `allow_unlisted_repos`). Every chat entry point —
//! mention, phrase, shortcut, `/fix`, Discord's command, Retry, a plan's Run it, an answered
//! repository question — reaches a task through [`Bot::resolve_repo`], so a repository the
//! operator did not list is never cloned for a chat user. The CLI, run by the operator on the
//! host, names any repository and does not come here.

use crate::chat::ThreadRef;
use crate::chat::commands::FixArgs;
use crate::store::StoreError;

use super::{Bot, inert};

/// What a request's repository turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RepoChoice {
    /// Allowed: run on it.
    Use(String),
    /// Named (by the request, the channel's setting or a stored task) but not allowed: the text
    /// says so to the user.
    Refused(String),
    /// None named anywhere: ask.
    Unknown,
}

impl Bot {
    /// The repository of a request: `named` (`repo=`, a stored task's or plan's, an answered
    /// question's), else a configured repository mentioned in the thread, else the channel's
    /// setting, else `default_repo` — and whichever it is, checked by [`Self::check_repo`].
    pub(super) async fn resolve_repo(
        &self,
        named: Option<&str>,
        thread: &ThreadRef,
        transcript: &str,
    ) -> Result<RepoChoice, StoreError> {
        let chosen = match named {
            Some(r) => Some(r.to_string()),
            None => match self.mentioned_repo(transcript) {
                Some(r) => Some(r),
                None => self
                    .svc
                    .store
                    .channel_repo(&thread.platform, &thread.channel)
                    .await?
                    .or_else(|| self.svc.config.default_repo.clone()),
            },
        };
        Ok(match chosen.map(|r| self.check_repo(r)) {
            Some(Ok(repo)) => RepoChoice::Use(repo),
            Some(Err(refusal)) => RepoChoice::Refused(refusal),
            None => RepoChoice::Unknown,
        })
    }

    /// The allow-list check, the only one: a repository named in chat may be used when it is
    /// configured (by name or URL), is `default_repo`, or `allow_unlisted_repos` is on. `Err`
    /// holds the refusal, written for the user.
    pub(super) fn check_repo(&self, repo: String) -> Result<String, String> {
        let config = &self.svc.config;
        if config.allow_unlisted_repos.unwrap_or(false)
            || config.repo(&repo).is_some()
            || config.default_repo.as_deref() == Some(repo.as_str())
        {
            Ok(repo)
        } else {
            Err(self.repo_refusal(&repo))
        }
    }

    /// The refusal of a request's `repo=` before anything is read or posted, `None` when it
    /// names none or an allowed one (the rest is decided by [`Self::resolve_repo`]).
    pub(super) fn refuse_named_repo(&self, args: &FixArgs) -> Option<String> {
        self.check_repo(args.repo.clone()?).err()
    }

    fn repo_refusal(&self, repo: &str) -> String {
        let names: Vec<String> = self
            .svc
            .config
            .repos
            .iter()
            .map(|r| format!("`{}`", inert(&r.name)))
            .collect();
        format!(
            "I can only work on the repositories I am configured for, and `{}` is not one of them.{}",
            inert(repo),
            if names.is_empty() {
                String::new()
            } else {
                format!(" Known: {}.", names.join(", "))
            }
        )
    }

    /// The longest configured name or URL the thread mentions as a whole (not `acme/api`
    /// inside `acme/api-docs`).
    fn mentioned_repo(&self, transcript: &str) -> Option<String> {
        let mentioned = |needle: &str| {
            !needle.is_empty()
                && transcript.match_indices(needle).any(|(at, _)| {
                    transcript[at + needle.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || "-_.".contains(c)))
                })
        };
        self.svc
            .config
            .repos
            .iter()
            .filter(|r| mentioned(&r.url) || mentioned(&format!("/{}", r.name)))
            .max_by_key(|r| r.name.len())
            .map(|r| r.name.clone())
    }
}

impl Bot {
    /// Ends a request whose repository is refused after its status message went up: the status
    /// message says why, and the request loses its 👀.
    pub(super) async fn refuse_in_status(
        &self,
        thread: &ThreadRef,
        status_ts: &str,
        trigger_ts: Option<&str>,
        text: String,
    ) -> Result<(), super::HandleError> {
        self.port
            .update(thread, status_ts, &crate::chat::OutMessage::Text(text))
            .await?;
        if let Some(ts) = trigger_ts {
            self.react_once(thread, ts, crate::chat::Reaction::Working, false)
                .await;
        }
        Ok(())
    }
}
