//! The branch step of a publication, and a later round's update of an earlier round's pull
//! request: its whole change (against the base) committed on top of the pull request's branch
//! and pushed as a fast-forward, with a comment on the pull request saying what changed. A
//! change that no longer applies to the base's tip is refused before anything is pushed, as
//! for a first publication.

use std::path::Path;

use octocrab::Octocrab;

use super::body::{self, BodyInput};
use super::git::{Git, adopt_branch, run};
use super::{PublishError, Publisher};
use crate::store::{Publication, PublicationState, StoreError};

/// What the branch step works with.
pub(super) struct BranchStep<'a> {
    pub git: &'a Git,
    pub dir: &'a Path,
    pub scratch: &'a Path,
    /// The base branch's tip now.
    pub base_commit: &'a str,
    pub patch: &'a str,
    pub input: &'a BodyInput<'a>,
    pub base: &'a str,
    pub push_url: &'a str,
    pub branch: &'a str,
    pub task_id: &'a str,
}

/// The hidden mark of a round's comment: a replay finds it and comments no second time.
fn comment_mark(task_id: &str) -> String {
    format!("<!-- threadsmith-round: {task_id} -->")
}

/// The comment on the pull request when a later round's rollout replaces its change.
pub fn update_comment(input: &BodyInput<'_>, round: u32, previous: &Publication) -> String {
    let r = input.rollout;
    let mut text = format!(
        "Updated to rollout #{} of round {round}{}: the branch now holds that round's whole change against the base (+{} −{} in {} file{}), replacing rollout #{} of the earlier round.",
        r.index,
        input
            .approved_by
            .map(|by| format!(", approved by {}", body::defuse_mentions(by)))
            .unwrap_or_default(),
        r.lines_added,
        r.lines_removed,
        r.files_changed,
        if r.files_changed == 1 { "" } else { "s" },
        previous.rollout,
    );
    if let Some(summary) = r.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        text.push_str(&format!(
            "\n\n> {}",
            body::defuse_mentions(summary.trim()).replace('\n', "\n> ")
        ));
    }
    if let Some(link) = input.page_link {
        text.push_str(&format!("\n\nEvidence: {link}"));
    }
    if let Some(link) = input.thread_link {
        text.push_str(&format!("\nThread: {link}"));
    }
    text.push_str(&format!("\n\n{}", comment_mark(input.task_id)));
    text
}

/// Comments `text` on pull request `number`, unless this round's comment is there already.
pub async fn comment_once(
    client: &Octocrab,
    owner: &str,
    name: &str,
    number: u64,
    task_id: &str,
    text: &str,
) -> Result<(), PublishError> {
    let gh = |action: &'static str| {
        move |e: octocrab::Error| PublishError::GitHub {
            action,
            detail: super::github::describe(&e),
        }
    };
    let mark = comment_mark(task_id);
    let issues = client.issues(owner, name);
    let existing = issues
        .list_comments(number)
        .per_page(100)
        .send()
        .await
        .map_err(gh("list the pull request's comments"))?;
    if existing
        .items
        .iter()
        .any(|c| c.body.as_deref().is_some_and(|b| b.contains(&mark)))
    {
        return Ok(());
    }
    issues
        .create_comment(number, text)
        .await
        .map_err(gh("comment on the pull request"))?;
    Ok(())
}

impl Publisher {
    /// The published pull request (or branch) of an earlier round of `task_id`'s chain, the
    /// latest one: a later round's approval updates it rather than opening another.
    pub async fn follows_pull_request(
        &self,
        task_id: &str,
    ) -> Result<Option<Publication>, StoreError> {
        let mut found = None;
        for (_, earlier) in self.store.chain(task_id).await? {
            if earlier == task_id {
                continue;
            }
            if let Some(p) = self.store.publication(&earlier).await?
                && p.state == PublicationState::Published
            {
                found = Some(p);
            }
        }
        Ok(found)
    }

    /// A first publication's branch: the change committed on the base's tip and pushed, or
    /// the branch this task pushed already (its trailer says so).
    pub(super) async fn push_branch(
        &self,
        s: &BranchStep<'_>,
    ) -> Result<(String, bool), PublishError> {
        let remote = s.git.remote_branch(s.dir, s.push_url, s.branch).await?;
        if remote.is_some() {
            let commit = adopt_branch(s.git, s.dir, s.push_url, s.branch, s.task_id).await?;
            return Ok((commit, true));
        }
        let commit = self
            .commit(
                s.git,
                s.dir,
                s.scratch,
                s.base_commit,
                s.patch,
                s.input,
                s.base,
            )
            .await?;
        match self.push(s, &commit).await {
            Ok(()) => Ok((commit, false)),
            // Another attempt (a process that took over, a replay) pushed the same branch a
            // moment ago: its commit carries this task's trailer, use it.
            Err(e) => match s.git.remote_branch(s.dir, s.push_url, s.branch).await? {
                Some(_) => Ok((
                    adopt_branch(s.git, s.dir, s.push_url, s.branch, s.task_id).await?,
                    true,
                )),
                None => Err(e),
            },
        }
    }

    /// A later round on the branch of an earlier round's pull request: the round's whole change on
    /// the base's tip (a conflict refused, nothing pushed), committed with the branch's tip as
    /// its parent (and the base's tip too when the base moved, so that the pull request shows
    /// only the change), and pushed as a fast-forward. A branch whose tip is this round's
    /// already (a replay) is used as it is.
    pub(super) async fn update_branch(
        &self,
        s: &BranchStep<'_>,
    ) -> Result<(String, bool), PublishError> {
        let tip = s.git.remote_branch(s.dir, s.push_url, s.branch).await?;
        if tip.is_none() {
            return Err(PublishError::GitHub {
                action: "update the pull request",
                detail: format!(
                    "its branch `{}` is gone from the remote (deleted after a merge?), so rollout {} of this round was not pushed",
                    s.branch, s.input.rollout.index
                ),
            });
        }
        // A replay: the tip is this round's already.
        if let Ok(commit) = adopt_branch(s.git, s.dir, s.push_url, s.branch, s.task_id).await {
            return Ok((commit, true));
        }
        // Else it must be an earlier round's of this chain.
        let branch_tip = self
            .chain_tip(s)
            .await?
            .ok_or_else(|| PublishError::BranchTaken {
                branch: s.branch.to_string(),
            })?;
        let applied = self
            .commit(
                s.git,
                s.dir,
                s.scratch,
                s.base_commit,
                s.patch,
                s.input,
                s.base,
            )
            .await?;
        let tree = format!("{applied}^{{tree}}");
        let moved = s
            .git
            .run(
                Some(s.dir),
                &["merge-base", "--is-ancestor", s.base_commit, &branch_tip],
                "comparing the base with the branch",
                false,
            )
            .await
            .is_err();
        let message = s.scratch.join("message.txt").display().to_string();
        let mut args = vec!["commit-tree", tree.as_str(), "-p", branch_tip.as_str()];
        if moved {
            args.extend(["-p", s.base_commit]);
        }
        args.extend(["-F", message.as_str()]);
        let (name, email) = self.author();
        let mut cmd = s.git.command(Some(s.dir), false);
        cmd.args(&args)
            .env("GIT_AUTHOR_NAME", &name)
            .env("GIT_AUTHOR_EMAIL", &email)
            .env("GIT_COMMITTER_NAME", &name)
            .env("GIT_COMMITTER_EMAIL", &email);
        let commit = run(cmd, "committing the update", s.git.token.as_ref())
            .await?
            .trim()
            .to_string();
        self.push(s, &commit).await?;
        Ok((commit, false))
    }

    /// The branch's tip when another round of this task's chain pushed it (its trailer names
    /// one of the chain's tasks).
    async fn chain_tip(&self, s: &BranchStep<'_>) -> Result<Option<String>, PublishError> {
        for (_, t) in self.store.chain(s.task_id).await? {
            if let Ok(tip) = adopt_branch(s.git, s.dir, s.push_url, s.branch, &t).await {
                return Ok(Some(tip));
            }
        }
        Ok(None)
    }

    /// The configured author of threadsmith's commits.
    fn author(&self) -> (String, String) {
        let p = &self.config.publish;
        (
            p.author_name
                .clone()
                .unwrap_or_else(|| "threadsmith".into()),
            p.author_email
                .clone()
                .unwrap_or_else(|| "threadsmith@localhost".into()),
        )
    }

    /// Pushes `commit` to the branch (a fast-forward: never forced).
    async fn push(&self, s: &BranchStep<'_>, commit: &str) -> Result<(), PublishError> {
        s.git
            .run(
                Some(s.dir),
                &[
                    "push",
                    "--quiet",
                    "--porcelain",
                    s.push_url,
                    &format!("{commit}:refs/heads/{}", s.branch),
                ],
                "pushing the branch",
                true,
            )
            .await
            .map(|_| ())
    }
}
