//! Approve → a branch on the git host and, on GitHub, a pull request.
//!
//! The approved rollout's diff is applied on a fresh working copy of the base branch's current
//! tip on the host (a `--shared` clone of the cached mirror), committed, and pushed to
//! `<prefix><task>-<rollout>`; then the pull request is opened. Every step is idempotent: a
//! branch already pushed for this task (its commit carries a `Threadsmith-Task` trailer) and a
//! pull request already open from it are reused, and a per-task lock plus the `publications`
//! row make two approvals at once publish once. A patch that no longer applies is refused before
//! anything is pushed.
//!
//! Credentials: the token reaches git only through its environment (`GIT_CONFIG_*`, an
//! `Authorization` header), never its arguments, the remote URL, a log line or the database.

mod attempt;
pub mod body;
mod commit;
mod git;
pub mod github;
mod update;

use git::Git;
use update::BranchStep;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use threadsmith_runner::repo::{RepoCache, RepoError, RepoSource};
use threadsmith_runner::secret::Secret;
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::config::{Config, parse_repo_file};
use crate::spec::TaskSpec;
use crate::store::{Publication, Store, StoreError};
use body::BodyInput;
use github::GitHub;

/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Push the branch and open a pull request (GitHub).
    PullRequest,
    /// Push the branch and link to it (any git host).
    Push,
    /// Record the approval only.
    Off,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "No git host is configured, so the approval is recorded but nothing is pushed. Set THREADSMITH_GITHUB_TOKEN (or a GitHub App) to open pull requests, or `[publish] mode = \"push\"` to push branches to any git host."
    )]
    Off,
    #[error("{0}")]
    Config(String),
    #[error("task `{task}` has no rollout {rollout}")]
    NoSuchRollout { task: String, rollout: u32 },
    #[error("rollout {0} changed nothing, so there is nothing to push")]
    NothingToPush(u32),
    #[error(
        "Rollout {rollout} no longer applies to `{base}`: the branch moved since the task ran and now conflicts in {files}. Nothing was pushed. Retry to run the task again on the new `{base}`."
    )]
    Conflict {
        rollout: u32,
        base: String,
        files: String,
    },
    #[error(
        "The branch `{branch}` already exists on the remote and holds other work, so nothing was pushed. Delete or rename it, or set another `[publish] branch_prefix`."
    )]
    BranchTaken { branch: String },
    #[error("git failed while {action}: {detail}")]
    Git {
        action: &'static str,
        detail: String,
    },
    #[error("GitHub refused to {action}: {detail}")]
    GitHub {
        action: &'static str,
        detail: String,
    },
    #[error(
        "GitHub's answer to opening the pull request could not be read ({detail}), so it may have been opened. The approval stands: approve rollout {rollout} again to look the pull request up; no second one is opened."
    )]
    Unreadable { rollout: u32, detail: String },
    #[error("rollout {rollout} is not the approved one")]
    NotApproved { rollout: u32 },
    #[error("Publishing rollout {rollout} failed: {detail}")]
    FailedElsewhere { rollout: u32, detail: String },
    #[error("another approval of this task is still being published; try again in a few minutes")]
    StillPublishing,
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an approval produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub rollout: u32,
    pub branch: String,
    pub commit: String,
    /// The pull request's address, or in push-only mode the branch's.
    pub url: String,
    pub pr_number: Option<u64>,
    /// It existed before this call (a second approval, a replay).
    pub reused: bool,
    /// A later round's approval updated an earlier round's pull request (or branch).
    pub updated: bool,
}

/// Who asked, and where to link back to.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub thread_link: Option<String>,
    pub approved_by: Option<String>,
}

/// Where a task's repository lives and where its branches go.
struct Target {
    source: RepoSource,
    push_url: String,
    github: Option<(String, String)>,
    settings_test: Option<String>,
}

pub struct Publisher {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    repos: RepoCache,
    github: Option<GitHub>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Publisher {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        repos: RepoCache,
    ) -> Result<Self, PublishError> {
        let github = GitHub::new(&config.github)?;
        Ok(Self {
            config,
            store,
            repos,
            github,
            locks: Mutex::default(),
        })
    }

    pub fn mode(&self) -> Mode {
        match self.config.publish.mode.as_deref() {
            Some("push") => Mode::Push,
            Some("off") => Mode::Off,
            Some(_) => Mode::PullRequest,
            None if self.github.is_some() => Mode::PullRequest,
            None => Mode::Off,
        }
    }

    /// Checks the `[publish]` section; `serve` refuses to start on a mistake here.
    pub fn check(&self) -> Result<(), PublishError> {
        match self.config.publish.mode.as_deref() {
            None | Some("pull_request" | "push" | "off") => {}
            Some(other) => {
                return Err(PublishError::Config(format!(
                    "`[publish] mode = \"{other}\"` is not a mode: use `pull_request`, `push` or `off`"
                )));
            }
        }
        if self.mode() == Mode::PullRequest && self.github.is_none() {
            return Err(PublishError::Config(
                "`[publish] mode = \"pull_request\"` needs GitHub credentials: THREADSMITH_GITHUB_TOKEN, or a GitHub App (github.app_id and its key)".into(),
            ));
        }
        Ok(())
    }

    pub fn branch_name(&self, task_id: &str, rollout: u32) -> String {
        let prefix = self
            .config
            .publish
            .branch_prefix
            .as_deref()
            .unwrap_or("threadsmith/");
        format!("{prefix}{}-{rollout}", &task_id[..task_id.len().min(8)])
    }

    fn target(&self, repo: &str) -> Result<Target, PublishError> {
        let configured = self.config.repo(repo);
        let url = configured.map_or(repo, |r| r.url.as_str());
        let source = RepoSource::parse(url)?;
        let push_url = configured
            .and_then(|r| r.push_url.clone())
            .unwrap_or_else(|| url.to_string());
        if push_url.ends_with(".bundle") {
            return Err(PublishError::Config(format!(
                "`{repo}` comes from a bundle file, which cannot be pushed to: set `push_url` in its [[repos]] entry"
            )));
        }
        let github = configured
            .and_then(|r| r.github.as_deref())
            .and_then(github::split_repo)
            .or_else(|| github::repo_from_url(&push_url))
            .or_else(|| github::repo_from_url(url))
            .or_else(|| configured.and_then(|r| github::split_repo(&r.name)));
        Ok(Target {
            source,
            push_url,
            github,
            settings_test: configured.and_then(|r| r.settings.test.clone()),
        })
    }

    async fn publish_claimed(
        &self,
        task: &crate::store::TaskRow,
        rollout: u32,
        branch: &str,
        mode: Mode,
        ctx: &Context,
        follows: Option<&Publication>,
    ) -> Result<Published, PublishError> {
        let task_id = task.id.as_str();
        let no_such = || PublishError::NoSuchRollout {
            task: task_id.to_string(),
            rollout,
        };
        let row = self
            .store
            .rollouts(task_id)
            .await?
            .into_iter()
            .find(|r| r.index == rollout)
            .ok_or_else(no_such)?;
        let diff = self
            .store
            .diff(task_id, rollout)
            .await?
            .filter(|d| !d.patch.trim().is_empty())
            .ok_or(PublishError::NothingToPush(rollout))?;
        let target = self.target(&task.repo)?;
        let client = match (mode, &self.github, &target.github) {
            (Mode::PullRequest, Some(gh), Some((owner, name))) => {
                Some(gh.client_for(owner, name).await?)
            }
            (Mode::PullRequest, None, _) => {
                return Err(PublishError::Config(
                    "opening pull requests needs GitHub credentials: set THREADSMITH_GITHUB_TOKEN or a GitHub App".into(),
                ));
            }
            (Mode::PullRequest, Some(_), None) => {
                return Err(PublishError::Config(format!(
                    "`{}` is not a GitHub repository threadsmith can name: set `github = \"owner/name\"` in its [[repos]] entry, or `[publish] mode = \"push\"`",
                    task.repo
                )));
            }
            (_, Some(gh), Some((owner, name))) if target.push_url.starts_with("https://") => {
                Some(gh.client_for(owner, name).await?)
            }
            _ => None,
        };
        let git_token = client.as_ref().map(|(_, t)| t.clone());
        let git = Git {
            program: self
                .config
                .publish
                .git
                .clone()
                .unwrap_or_else(|| "git".into()),
            token: git_token,
        };
        let base = task
            .base_ref
            .clone()
            .ok_or_else(|| PublishError::Config("the task has no base branch recorded".into()))?;
        let prepared = self.repos.prepare(&target.source, Some(&base)).await?;

        let work = tempfile::Builder::new()
            .prefix("threadsmith-publish-")
            .tempdir()
            .map_err(|e| PublishError::Git {
                action: "making a working copy",
                detail: e.to_string(),
            })?;
        let dir = work.path().join("repo");
        let mirror = prepared.mirror.display().to_string();
        let dir_arg = dir.display().to_string();
        git.run(
            None,
            &[
                "clone",
                "--quiet",
                "--shared",
                "--no-checkout",
                &mirror,
                &dir_arg,
            ],
            "making a working copy",
            false,
        )
        .await?;

        let spec = task
            .spec_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<TaskSpec>(j).ok())
            .unwrap_or_else(|| TaskSpec::from_text(&task.spec));
        let commands = self.store.commands(task_id, rollout).await?;
        let test_command = match target.settings_test.clone() {
            Some(t) => Some(t),
            None => self
                .repos
                .read_file(&prepared, ".threadsmith.toml")
                .await
                .and_then(|text| parse_repo_file(&text).ok())
                .and_then(|s| s.test)
                .or_else(|| self.config.sandbox.test.clone()),
        };
        let page_link = match &self.config.public_url {
            Some(public) => Some(format!(
                "{}/t/{}/rollouts/{rollout}",
                public.trim_end_matches('/'),
                self.store.web_token(task_id).await?
            )),
            None => None,
        };
        let input = BodyInput {
            task_id,
            spec: &spec,
            rollout: &row,
            diff: &diff,
            commands: &commands,
            test_command: test_command.as_deref(),
            thread_link: ctx.thread_link.as_deref(),
            page_link: page_link.as_deref(),
            approved_by: ctx.approved_by.as_deref(),
        };

        let step = BranchStep {
            git: &git,
            dir: &dir,
            scratch: work.path(),
            base_commit: &prepared.base_commit,
            patch: &diff.patch,
            input: &input,
            base: &base,
            push_url: &target.push_url,
            branch,
            task_id,
        };
        let (commit, reused_branch) = match follows {
            Some(_) => self.update_branch(&step).await?,
            None => self.push_branch(&step).await?,
        };

        let (url, pr_number, reused_pr) = match (mode, client) {
            (Mode::PullRequest, Some((client, _))) => {
                let (owner, name) = target.github.clone().ok_or_else(|| {
                    PublishError::Config("no GitHub repository for the task".into())
                })?;
                let title = body::title(&spec);
                let text = body::pull_request_body(&input);
                let pr = github::open_pull_request(
                    &client,
                    rollout,
                    &github::NewPull {
                        owner: &owner,
                        name: &name,
                        branch,
                        base: &base,
                        title: &title,
                        body: &text,
                        draft: self.config.publish.draft.unwrap_or(false),
                    },
                )
                .await?;
                if let Some(earlier) = follows {
                    let round = self.store.place(task_id).await?.round;
                    let text = update::update_comment(&input, round, earlier);
                    update::comment_once(&client, &owner, &name, pr.number, task_id, &text).await?;
                }
                (pr.url, Some(pr.number), pr.reused)
            }
            _ => {
                let url = match &self.config.publish.branch_url {
                    Some(t) => t.replace("{repo}", &task.repo).replace("{branch}", branch),
                    None => format!("{} (branch {branch})", target.push_url),
                };
                (url, None, reused_branch)
            }
        };
        Ok(Published {
            rollout,
            branch: branch.to_string(),
            commit,
            url,
            pr_number,
            reused: reused_branch && reused_pr,
            updated: follows.is_some(),
        })
    }
}
