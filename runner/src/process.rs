//! Child processes on the host (git, tar, …) with an allow-listed environment.
//!
//! The bot's environment holds its secrets (the model key, chat and GitHub tokens, a database
//! URL with its password); a child inherits none of it. It gets what a git or a packer needs
//! to work on this machine — the search path, home, locale, time zone, temporary directory,
//! certificate locations, proxies, the SSH agent and the git settings an operator may set for
//! the host's git — and whatever its caller adds explicitly with `.env(…)` (a push's credential
//! header, a commit's author).
//!
//! [`output`] runs one to its end under a time limit and a cancellation: a hung `git fetch`
//! comes back as an error instead of holding a rollout slot.

use std::ffi::{OsStr, OsString};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Variables a child keeps, by exact name.
const KEEP: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSH_AUTH_SOCK",
    // The host's git as the operator set it up (never GIT_DIR or GIT_WORK_TREE, which would
    // point a command elsewhere, nor GIT_CONFIG_COUNT/KEY/VALUE, which callers set themselves).
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_PROXY_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_TRACE",
    "GIT_CURL_VERBOSE",
];

/// Whether a child keeps the variable `name` (`LC_*` and [`KEEP`]).
pub fn kept(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("LC_") || KEEP.contains(&n))
}

/// The allow-listed part of `vars`.
pub fn allowed_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter().filter(|(k, _)| kept(k)).collect()
}

/// `program` with an environment of only the allow-listed variables of this process's.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(allowed_env(std::env::vars_os()));
    cmd
}

/// Why a host process gave no output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not run `{program}`: {source}")]
    Io {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` did not finish within {} s, so it was stopped", limit.as_secs_f64())]
    TimedOut { program: String, limit: Duration },
    #[error("`{program}` was stopped: the task was cancelled")]
    Cancelled { program: String },
}

/// Runs `cmd` to its end and collects its output (stdout and stderr piped), unless `limit`
/// passes or `cancel` fires first: then the child and every process it started (it leads its
/// own process group: a remote helper, `ssh`, an `upload-pack`) are killed, and the error says
/// which came first.
pub async fn output(
    cmd: &mut Command,
    limit: Duration,
    cancel: &CancellationToken,
) -> Result<Output, RunError> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let child = cmd.spawn().map_err(|source| RunError::Io {
        program: program.clone(),
        source,
    })?;
    let group = child.id();
    let stopped = tokio::select! {
        out = child.wait_with_output() => {
            return out.map_err(|source| RunError::Io { program, source });
        }
        _ = tokio::time::sleep(limit) => RunError::TimedOut { program, limit },
        _ = cancel.cancelled() => RunError::Cancelled { program },
    };
    // The child itself was killed as its future was dropped (`kill_on_drop`); now the rest.
    if let Some(group) = group {
        kill_group(group);
    }
    Err(stopped)
}

/// SIGKILL to the process group `group` leads.
fn kill_group(group: u32) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    // SAFETY: `killpg` only sends a signal. The group is the one this process made for its
    // child (`process_group(0)`), whose leader is not reaped yet, so the id is not reused.
    let sent = unsafe { libc::killpg(group, libc::SIGKILL) };
    if sent != 0 {
        // ESRCH: every process of the group is gone already.
        tracing::debug!(group, error = %std::io::Error::last_os_error(), "could not kill a process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_process_is_stopped_at_its_limit_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut cmd = command("sh");
        cmd.arg("-c")
            .arg("sleep 600 & echo $! > \"$0\"; wait")
            .arg(&pid_file);
        let started = std::time::Instant::now();
        let err = output(
            &mut cmd,
            Duration::from_millis(300),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("`sh` did not finish within 0.3 s"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // The child's child is gone (killed, or a zombie awaiting its reaper).
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let gone = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone() {
            assert!(std::time::Instant::now() < deadline, "pid {pid} still runs");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn cancellation_stops_a_process() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut cmd = command("sleep");
        cmd.arg("600");
        let err = output(&mut cmd, Duration::from_secs(600), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Cancelled { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_process_that_ends_in_time_gives_its_output() {
        let mut cmd = command("sh");
        cmd.arg("-c").arg("echo out; echo err >&2; exit 3");
        let out = output(&mut cmd, Duration::from_secs(30), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            (out.stdout.as_slice(), out.stderr.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn secrets_are_left_out_and_the_basics_kept() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/bot"),
            ("LC_ALL", "C.UTF-8"),
            ("SSL_CERT_FILE", "/etc/ssl/cert.pem"),
            ("GIT_SSH_COMMAND", "ssh -i key"),
            ("THREADSMITH_MODEL_API_KEY", "sk-secret"),
            ("THREADSMITH_SLACK_BOT_TOKEN", "xoxb-secret"),
            ("THREADSMITH_DATABASE_URL", "postgres://u:pw@db/x"),
            ("OPENAI_API_KEY", "sk-other"),
            ("GIT_DIR", "/elsewhere"),
            ("GIT_CONFIG_COUNT", "1"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<String> = allowed_env(vars)
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            kept,
            ["PATH", "HOME", "LC_ALL", "SSL_CERT_FILE", "GIT_SSH_COMMAND"]
        );
    }
}
