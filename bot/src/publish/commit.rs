//! The commit a publication pushes: the approved rollout's patch applied on the base branch's
//! tip, with the task's message and the configured author; a conflict names its files.

use std::path::{Path, PathBuf};

use super::body::{self, BodyInput};
use super::git::{Git, run};
use super::{PublishError, Publisher};

impl Publisher {
    /// Applies the patch on the base branch's tip and commits it; a conflict is reported, not
    /// committed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn commit(
        &self,
        git: &Git,
        dir: &Path,
        scratch: &Path,
        base_commit: &str,
        patch: &str,
        input: &BodyInput<'_>,
        base: &str,
    ) -> Result<String, PublishError> {
        git.run(
            Some(dir),
            &["checkout", "--quiet", "--detach", base_commit],
            "checking out the base",
            false,
        )
        .await?;
        let patch_file = scratch.join("rollout.patch");
        let message_file = scratch.join("message.txt");
        let write = |path: &PathBuf, text: &str| {
            std::fs::write(path, text).map_err(|e| PublishError::Git {
                action: "writing the patch",
                detail: e.to_string(),
            })
        };
        write(&patch_file, patch)?;
        write(&message_file, &body::commit_message(input))?;
        let patch_arg = patch_file.display().to_string();
        let applied = git
            .run(
                Some(dir),
                &[
                    "apply",
                    "--index",
                    "--3way",
                    "--whitespace=nowarn",
                    &patch_arg,
                ],
                "applying the patch",
                false,
            )
            .await;
        if let Err(PublishError::Git { detail, .. }) = &applied {
            let mut files: Vec<String> = git
                .run(
                    Some(dir),
                    &["diff", "--name-only", "--diff-filter=U"],
                    "listing conflicts",
                    false,
                )
                .await
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            for line in detail.lines() {
                let f = line
                    .strip_prefix("error: patch failed: ")
                    .and_then(|r| r.rsplit_once(':').map(|(f, _)| f))
                    .or_else(|| {
                        line.strip_prefix("error: ")
                            .and_then(|r| r.strip_suffix(": patch does not apply"))
                    })
                    .or_else(|| line.strip_prefix("U "));
                if let Some(f) = f
                    && !files.iter().any(|x| x == f)
                {
                    files.push(f.to_string());
                }
            }
            let files = if files.is_empty() {
                "the changed files".to_string()
            } else {
                files
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(PublishError::Conflict {
                rollout: input.rollout.index,
                base: base.to_string(),
                files,
            });
        }
        applied?;
        let name = self
            .config
            .publish
            .author_name
            .clone()
            .unwrap_or_else(|| "threadsmith".into());
        let email = self
            .config
            .publish
            .author_email
            .clone()
            .unwrap_or_else(|| "threadsmith@localhost".into());
        let msg_arg = message_file.display().to_string();
        let mut cmd = git.command(Some(dir), false);
        cmd.args(["commit", "--quiet", "--no-verify", "-F", &msg_arg])
            .env("GIT_AUTHOR_NAME", &name)
            .env("GIT_AUTHOR_EMAIL", &email)
            .env("GIT_COMMITTER_NAME", &name)
            .env("GIT_COMMITTER_EMAIL", &email);
        run(cmd, "committing", git.token.as_ref()).await?;
        git.run(
            Some(dir),
            &["rev-parse", "HEAD"],
            "reading the commit",
            false,
        )
        .await
        .map(|s| s.trim().to_string())
    }
}
