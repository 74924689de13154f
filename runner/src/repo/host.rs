//! git and tar on the host for the repository cache: each call under a time limit and a
//! cancellation (see [`crate::process::output`]), its failures as [`RepoError`]s.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::RepoError;
use crate::process::RunError;

/// The limits of one piece of work's host calls: each call's time limit, and what cancels them.
#[derive(Clone, Copy)]
pub(super) struct Host<'a> {
    pub(super) limit: Duration,
    pub(super) cancel: &'a CancellationToken,
}

impl Host<'_> {
    fn error(&self, action: &'static str, e: RunError) -> RepoError {
        match e {
            RunError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                RepoError::GitMissing
            }
            RunError::Io { source, .. } => RepoError::Git {
                action,
                detail: source.to_string(),
            },
            RunError::TimedOut { limit, .. } => RepoError::TimedOut { action, limit },
            RunError::Cancelled { .. } => RepoError::Cancelled { action },
        }
    }

    pub(super) async fn git(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        action: &'static str,
    ) -> Result<Vec<u8>, RepoError> {
        let mut cmd = crate::process::command("git");
        if let Some(dir) = dir {
            cmd.arg("-C").arg(dir);
        }
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .stdin(std::process::Stdio::null());
        let out = crate::process::output(&mut cmd, self.limit, self.cancel)
            .await
            .map_err(|e| self.error(action, e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(RepoError::Git {
                action,
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// Runs `tar` with the seed's ownership (the sandbox's user) and returns its stdout.
    pub(super) async fn tar(&self, args: &[&str]) -> Result<Vec<u8>, RepoError> {
        let action = "packing the seed";
        let mut cmd = crate::process::command("tar");
        cmd.args(["--owner=1000", "--group=1000", "--numeric-owner"])
            .args(args)
            .stdin(std::process::Stdio::null());
        let out = crate::process::output(&mut cmd, self.limit, self.cancel)
            .await
            .map_err(|e| match self.error(action, e) {
                RepoError::GitMissing => RepoError::Git {
                    action,
                    detail: "tar is not installed on this machine".into(),
                },
                other => other,
            })?;
        if !out.status.success() {
            return Err(RepoError::Git {
                action,
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }
}
