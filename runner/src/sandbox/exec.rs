//! One sandbox's container: commands run under time limits, cancellable, output capped; reaping; network; removal.

use super::*;

/// Runs a command under `timeout`, then kills whatever it left behind (`kill -9 -1` spares the
/// caller and pid 1), and exits with the command's status. `kill` is a shell builtin, so this
/// works even when a fork bomb holds every pid.
const REAPING_WRAPPER: &str =
    "t=$1; shift; timeout -k 5 \"$t\" \"$@\"; rc=$?; kill -9 -1 2>/dev/null; exit $rc";
/// Extra time the host waits past a command's own limit before it kills every process itself.
const BACKSTOP: Duration = Duration::from_secs(15);

/// One rollout's container.
pub struct DockerSandbox {
    pub(super) docker: bollard::Docker,
    pub id: String,
    pub name: String,
    pub(super) pids_limit: i64,
    /// The CPU limit, put in force once the working copy is in place.
    pub(super) nano_cpus: i64,
}

impl DockerSandbox {
    /// The Docker connection (for reading the container's state from the host).
    pub(crate) fn client(&self) -> &bollard::Docker {
        &self.docker
    }

    /// Runs a command under its time limit, cancellable, with capped output.
    ///
    /// The command runs under `timeout -k 5 <secs>`, which kills its whole process group; if even
    /// that does not end it, the host kills every process of the sandbox's user after a backstop.
    pub async fn exec(
        &self,
        req: ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutcome, SandboxError> {
        let started = Instant::now();
        let secs = req.timeout.as_secs().max(1).to_string();
        let mut argv: Vec<String> = if req.reap {
            ["sh", "-c", REAPING_WRAPPER, "threadsmith", &secs]
                .map(String::from)
                .to_vec()
        } else {
            ["timeout", "-k", "5", &secs].map(String::from).to_vec()
        };
        argv.extend(req.argv);
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    attach_stdin: Some(req.stdin.is_some()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv),
                    env: (!req.env.is_empty()).then_some(req.env),
                    working_dir: Some(WORKSPACE.to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(docker_err("creating a command"))?;
        let started_exec = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(docker_err("starting a command"))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started_exec
        else {
            return Err(SandboxError::Docker {
                action: "starting a command",
                source: bollard::errors::Error::DockerStreamError {
                    error: "Docker started the command detached".into(),
                },
            });
        };
        let stdin_task = req.stdin.map(|data| {
            tokio::spawn(async move {
                let _ = input.write_all(&data).await;
                let _ = input.shutdown().await;
            })
        });

        let mut collected = ExecOutput::new(req.cap, req.keep_stdout);
        let deadline = tokio::time::Instant::now() + req.timeout + BACKSTOP;
        let mut killed_by_host = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    self.reap().await;
                    return Err(SandboxError::Cancelled);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.reap().await;
                    killed_by_host = true;
                    break;
                }
                item = output.next() => match item {
                    Some(Ok(LogOutput::StdOut { message })) => collected.stdout(&message),
                    Some(Ok(LogOutput::StdErr { message } | LogOutput::Console { message })) => {
                        collected.stderr(&message);
                    }
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "command output stream ended with an error");
                        break;
                    }
                    None => break,
                }
            }
        }
        if let Some(t) = stdin_task {
            t.abort();
        }
        let exit_code = if killed_by_host {
            None
        } else {
            self.docker
                .inspect_exec(&exec.id)
                .await
                .map_err(docker_err("reading a command's exit code"))?
                .exit_code
        };
        Ok(collected.finish(exit_code, killed_by_host, started, req.timeout))
    }

    /// Kills every process of the sandbox's user (all but the container's init).
    ///
    /// A fork bomb can hold every pid the sandbox may have, so that not even the killer can
    /// start; then the pids limit is lifted for a moment and put back.
    async fn reap(&self) {
        for _ in 0..3 {
            if self.kill_everything().await {
                return;
            }
        }
        let lift = |pids| bollard::models::ContainerUpdateBody {
            pids_limit: Some(pids),
            ..Default::default()
        };
        let _ = self
            .docker
            .update_container(&self.id, lift(self.pids_limit + 64))
            .await;
        for _ in 0..3 {
            if self.kill_everything().await {
                break;
            }
        }
        let _ = self
            .docker
            .update_container(&self.id, lift(self.pids_limit))
            .await;
    }

    /// One `kill -9 -1`; true when it ran (whether or not anything was left to kill).
    async fn kill_everything(&self) -> bool {
        let Ok(exec) = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(vec!["kill", "-9", "-1"]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
        else {
            return false;
        };
        match self.docker.start_exec(&exec.id, None).await {
            Ok(StartExecResults::Attached { mut output, .. }) => {
                while let Some(Ok(_)) = output.next().await {}
            }
            _ => return false,
        }
        matches!(
            self.docker
                .inspect_exec(&exec.id)
                .await
                .map(|i| i.exit_code),
            Ok(Some(0 | 1))
        )
    }

    /// Takes the sandbox off every network (after an opted-in setup phase).
    pub async fn cut_network(&self) -> Result<(), SandboxError> {
        let info = self
            .docker
            .inspect_container(&self.id, None::<InspectContainerOptions>)
            .await
            .map_err(docker_err("inspecting the sandbox"))?;
        let networks = info
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default();
        for name in networks.keys() {
            self.docker
                .disconnect_network(
                    name,
                    NetworkDisconnectRequest {
                        container: self.id.clone(),
                        force: Some(true),
                    },
                )
                .await
                .map_err(docker_err("taking the sandbox off the network"))?;
        }
        Ok(())
    }

    /// Puts the CPU limit in force (the container starts without it: see `Docker::create_sandbox`).
    pub async fn enforce_cpu_limit(&self) -> Result<(), SandboxError> {
        let limit = bollard::models::ContainerUpdateBody {
            nano_cpus: Some(self.nano_cpus),
            ..Default::default()
        };
        self.docker
            .update_container(&self.id, limit)
            .await
            .map_err(docker_err("limiting the sandbox's CPU"))?;
        Ok(())
    }

    /// Kills and removes the container; its workspace (a tmpfs of the container) goes with it.
    pub async fn remove(&self) {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if let Err(e) = self.docker.remove_container(&self.id, Some(opts)).await
            && !is_not_found(&e)
        {
            tracing::warn!(container = %self.name, error = %e, "could not remove sandbox");
        }
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(
        &self,
        req: ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutcome, SandboxError> {
        DockerSandbox::exec(self, req, cancel).await
    }

    async fn cut_network(&self) -> Result<(), SandboxError> {
        DockerSandbox::cut_network(self).await
    }

    async fn enforce_cpu_limit(&self) -> Result<(), SandboxError> {
        DockerSandbox::enforce_cpu_limit(self).await
    }

    async fn out_of_memory(&self) -> Option<String> {
        crate::oom::out_of_memory(self).await
    }

    async fn remove(&self) {
        DockerSandbox::remove(self).await
    }
}
