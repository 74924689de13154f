//! `threadsmith serve` as a child process (the real binary): one, or two on one database, with
//! SIGTERM and a bounded wait for the exit.

use std::path::Path;
use std::time::Duration;

use crate::{FakeModel, MODEL_KEY, threadsmith};

/// A `threadsmith serve` process (the real binary), SIGKILLed when dropped: a failing test
/// leaves none behind, and dropping it is how tests kill a bot mid-task.
pub struct ServeProcess(pub std::process::Child);

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ServeProcess {
    /// The process id (a worker's id in the database holds it).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGTERM, as `docker stop`, Kubernetes and systemd do.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits for the process to exit, failing the test after `bound`.
    pub async fn wait_exit(&mut self, bound: Duration) -> std::process::ExitStatus {
        let pid = self.pid();
        // Woken by the exit itself (`waitid` with `WNOWAIT` leaves the child to be reaped below).
        let exited = tokio::task::spawn_blocking(move || exited(pid));
        match tokio::time::timeout(bound, exited).await {
            Ok(joined) => joined
                .expect("the wait for threadsmith serve ran")
                .expect("wait for threadsmith serve"),
            Err(_) => panic!("threadsmith serve still runs after {bound:?}"),
        }
        self.0
            .try_wait()
            .expect("reap threadsmith serve")
            .expect("it has exited")
    }
}

/// Blocks until child `pid` has exited, without reaping it.
fn exited(pid: u32) -> std::io::Result<()> {
    loop {
        // SAFETY: a zeroed `siginfo_t` is a valid out-parameter, and `waitid` writes only it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `waitid` on our own child, with a valid pointer to `info`.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Starts `threadsmith serve` in `dir` (which holds its `threadsmith.toml`) on `database_url`,
/// with `data_dir` for its mirrors, the scripted model and the fake Slack at `slack_api`. Its
/// log filter is `THREADSMITH_CHILD_LOG` (default `warn`); its log goes to the test's stderr.
pub fn serve_process(
    dir: &Path,
    database_url: &str,
    data_dir: &Path,
    model: &FakeModel,
    slack_api: &str,
) -> ServeProcess {
    spawn(dir, database_url, data_dir, model, Some(slack_api))
}

/// [`serve_process`] in a test environment's directory, on its database, data directory and
/// model, against the fake Slack `slack`.
pub fn serve_env(env: &crate::TestEnv, slack: &crate::fake_slack::FakeSlack) -> ServeProcess {
    serve_process(
        env.dir.path(),
        &env.svc.config.database_url(),
        &env.svc.config.data_dir(),
        &env.model,
        &slack.api_base(),
    )
}

/// [`serve_process`] without Slack: `dir`'s `threadsmith.toml` names the chat (a fake Discord).
pub fn serve_discord_process(
    dir: &Path,
    database_url: &str,
    data_dir: &Path,
    model: &FakeModel,
) -> ServeProcess {
    spawn(dir, database_url, data_dir, model, None)
}

/// Two `threadsmith serve` processes in `dir` on one database, each with a mirror cache of its
/// own (`data-a`, `data-b` in `dir`); on the fake Slack at `slack_api`, or else on the chat
/// `dir`'s `threadsmith.toml` names.
pub fn serve_two(
    dir: &Path,
    database_url: &str,
    model: &FakeModel,
    slack_api: Option<&str>,
) -> (ServeProcess, ServeProcess) {
    (
        spawn(dir, database_url, &dir.join("data-a"), model, slack_api),
        spawn(dir, database_url, &dir.join("data-b"), model, slack_api),
    )
}

fn spawn(
    dir: &Path,
    database_url: &str,
    data_dir: &Path,
    model: &FakeModel,
    slack_api: Option<&str>,
) -> ServeProcess {
    let mut cmd = std::process::Command::new(threadsmith());
    cmd.arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env(
            "THREADSMITH_LOG",
            std::env::var("THREADSMITH_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("THREADSMITH_DATABASE_URL", database_url)
        .env("THREADSMITH_DATA_DIR", data_dir)
        .env("THREADSMITH_MODEL_BASE_URL", model.base_url())
        .env("THREADSMITH_MODEL", "fake-model")
        .env("THREADSMITH_MODEL_API_KEY", MODEL_KEY);
    if let Some(api) = slack_api {
        cmd.env("THREADSMITH_SLACK_BOT_TOKEN", "xoxb-test")
            .env("THREADSMITH_SLACK_APP_TOKEN", "xapp-test")
            .env("THREADSMITH_SLACK_API_URL", api);
    }
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start threadsmith serve");
    ServeProcess(child)
}
