//! git on the host for publishing: an allow-listed environment with the token only in git's
//! configuration variables, a time limit on every call, errors with the token redacted.

use super::*;

/// The commit of `branch` on the remote, when it is this task's (its trailer says so).
pub(super) async fn adopt_branch(
    git: &Git,
    dir: &Path,
    url: &str,
    branch: &str,
    task_id: &str,
) -> Result<String, PublishError> {
    git.run(
        Some(dir),
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            url,
            &format!("refs/heads/{branch}"),
        ],
        "fetching the existing branch",
        true,
    )
    .await?;
    let message = git
        .run(
            Some(dir),
            &["log", "-1", "--format=%H%n%B", "FETCH_HEAD"],
            "reading the existing branch",
            false,
        )
        .await?;
    let (sha, message) = message.split_once('\n').unwrap_or((message.as_str(), ""));
    if !message.contains(&format!("Threadsmith-Task: {task_id}")) {
        return Err(PublishError::BranchTaken {
            branch: branch.to_string(),
        });
    }
    Ok(sha.trim().to_string())
}

/// git with the host's configuration, no prompts, no hooks, and (for remote calls) the token in
/// its environment.
pub(super) struct Git {
    pub(super) program: String,
    pub(super) token: Option<Secret>,
}

impl Git {
    pub(super) fn command(&self, dir: Option<&Path>, remote: bool) -> Command {
        // Only the allow-listed environment: not the model key, the chat tokens or the database
        // URL; the credential header below is the one secret a push gets.
        let mut cmd = threadsmith_runner::process::command(&self.program);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "commit.gpgSign=false",
        ])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        if remote && let Some(token) = &self.token {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("x-access-token:{}", token.expose()));
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        cmd
    }

    pub(super) async fn run(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        action: &'static str,
        remote: bool,
    ) -> Result<String, PublishError> {
        let mut cmd = self.command(dir, remote);
        cmd.args(args);
        run(cmd, action, self.token.as_ref()).await
    }

    /// The branch's commit on the remote, if it exists.
    pub(super) async fn remote_branch(
        &self,
        dir: &Path,
        url: &str,
        branch: &str,
    ) -> Result<Option<String>, PublishError> {
        let out = self
            .run(
                Some(dir),
                &["ls-remote", "--heads", url, &format!("refs/heads/{branch}")],
                "looking for the branch on the remote",
                true,
            )
            .await?;
        Ok(out
            .lines()
            .find_map(|l| l.split_whitespace().next())
            .map(str::to_string))
    }
}

pub(super) async fn run(
    mut cmd: Command,
    action: &'static str,
    token: Option<&Secret>,
) -> Result<String, PublishError> {
    let redact = |text: &str| match token {
        Some(t) if !t.expose().is_empty() => text.replace(t.expose(), "[redacted]"),
        _ => text.to_string(),
    };
    let child = cmd.spawn().map_err(|e| PublishError::Git {
        action,
        detail: format!("cannot run git: {e}"),
    })?;
    let out = tokio::time::timeout(GIT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| PublishError::Git {
            action,
            detail: format!("no answer within {} s", GIT_TIMEOUT.as_secs()),
        })?
        .map_err(|e| PublishError::Git {
            action,
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        Err(PublishError::Git {
            action,
            detail: redact(format!("{}\n{}", stderr.trim(), stdout.trim()).trim()),
        })
    }
}
