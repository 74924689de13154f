//! Docker sandboxes, through bollard: one container per rollout.
//!
//! While an agent works its container has no network, no secret in its environment, a non-root
//! user, no capabilities, `no-new-privileges`, memory / CPU / pids limits, a read-only root and
//! size-limited writable `/workspace` and `/tmp`. Every command runs under a time limit and its
//! output is capped (see [`crate::output`]). Containers and volumes carry labels so that
//! threadsmith can find its own and remove the orphans of a dead process.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, NetworkDisconnectRequest,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::output::{CappedBuffer, CappedOutput, OutputCap};

mod owners;

use owners::is_not_found;
pub use owners::{owner_is_dead, owner_label};

/// Every container and volume threadsmith makes carries this label.
pub const LABEL_MANAGED: &str = "dev.threadsmith.managed";
pub const LABEL_TASK: &str = "dev.threadsmith.task";
pub const LABEL_ROLLOUT: &str = "dev.threadsmith.rollout";
/// `host:pid` of the process that made the container, to tell orphans from live ones.
pub const LABEL_OWNER: &str = "dev.threadsmith.owner";

/// The user agents run as inside the sandbox.
pub const AGENT_USER: &str = "1000:1000";
/// Where the repository's working copy lives in every sandbox.
pub const WORKSPACE: &str = "/workspace";
/// Where the task's read-only seed (base commit objects and a template checkout) is mounted.
pub const SEED: &str = "/seed";
/// The sandbox's pid 1: reaps orphans, and as pid 1 is immune to the `kill -9 -1` that ends
/// whatever a command left behind (docker-init would exit with its child).
const INIT: [&str; 3] = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done",
];
/// Runs a command under `timeout`, then kills whatever it left behind (`kill -9 -1` spares the
/// caller and pid 1), and exits with the command's status. `kill` is a shell builtin, so this
/// works even when a fork bomb holds every pid.
const REAPING_WRAPPER: &str =
    "t=$1; shift; timeout -k 5 \"$t\" \"$@\"; rc=$?; kill -9 -1 2>/dev/null; exit $rc";
/// Extra time the host waits past a command's own limit before it kills every process itself.
const BACKSTOP: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "cannot reach the Docker engine ({0}). Start Docker, or point DOCKER_HOST at it, and make sure this user may use its socket."
    )]
    Unreachable(String),
    #[error(
        "the rollout image `{0}` is not in the local Docker engine. Build it with `threadsmith image build` (works offline), or set the repository's `image`."
    )]
    ImageMissing(String),
    #[error("Docker failed while {action}: {source}")]
    Docker {
        action: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the rollout was cancelled")]
    Cancelled,
}

fn docker_err(action: &'static str) -> impl FnOnce(bollard::errors::Error) -> SandboxError {
    move |source| SandboxError::Docker { action, source }
}

/// Resource limits of one sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub memory_bytes: i64,
    pub cpus: f64,
    pub pids: i64,
    pub workspace_bytes: u64,
    pub tmp_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            cpus: 1.0,
            pids: 512,
            // Both tmpfs, so charged to `memory_bytes`: they take at most three quarters of it
            // (see `crate::oom::check_memory_budget`).
            workspace_bytes: 1 << 30,
            tmp_bytes: 256 << 20,
        }
    }
}

/// What a sandbox is made from.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub image: String,
    pub limits: Limits,
    pub task_id: String,
    pub rollout: u32,
    /// The task's seed volume, mounted read-only at [`SEED`].
    pub seed_volume: Option<String>,
    /// Start attached to Docker's default bridge (for an opted-in setup phase or external agent).
    /// [`Sandbox::cut_network`] takes it away again.
    pub start_with_network: bool,
}

/// A command to run inside a sandbox.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    pub cap: OutputCap,
    /// Keep stdout whole, up to this many bytes, beside the capped combined output.
    pub keep_stdout: Option<usize>,
    pub env: Vec<String>,
    /// Kill every process the command left behind once it ends (no process outlives its
    /// command). Off only for threadsmith's own bookkeeping commands.
    pub reap: bool,
}

impl ExecRequest {
    /// `bash -c <script>` with the default cap.
    pub fn shell(script: impl Into<String>, timeout: Duration) -> Self {
        Self {
            argv: vec!["bash".into(), "-c".into(), script.into()],
            stdin: None,
            timeout,
            cap: OutputCap::default(),
            keep_stdout: None,
            env: Vec::new(),
            reap: true,
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone)]
pub struct ExecOutcome {
    /// `None` when the process was killed by the host before Docker reported an exit code.
    pub exit_code: Option<i64>,
    /// stdout and stderr, interleaved as they arrived, head and tail kept.
    pub output: CappedOutput,
    /// The whole of stdout when [`ExecRequest::keep_stdout`] asked for it and it fit.
    pub stdout: Option<Vec<u8>>,
    /// stdout was asked for whole but was larger than allowed.
    pub stdout_overflow: bool,
    pub duration: Duration,
    pub timed_out: bool,
}

impl ExecOutcome {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// A container made by threadsmith, as found by a listing.
#[derive(Debug, Clone)]
pub struct ManagedContainer {
    pub id: String,
    pub name: String,
    pub task: Option<String>,
    pub owner: Option<String>,
}

/// Connection to the Docker engine.
#[derive(Clone)]
pub struct Docker {
    inner: bollard::Docker,
}

fn labels(task_id: &str, rollout: Option<u32>) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_TASK.to_string(), task_id.to_string()),
        (LABEL_OWNER.to_string(), owner_label()),
    ]);
    if let Some(k) = rollout {
        labels.insert(LABEL_ROLLOUT.to_string(), k.to_string());
    }
    labels
}

fn short(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(at, _)| &id[..at])
}

impl Docker {
    /// Connects with the usual defaults (`DOCKER_HOST`, else the local socket) and pings.
    pub async fn connect() -> Result<Self, SandboxError> {
        let inner = bollard::Docker::connect_with_defaults()
            .map_err(|e| SandboxError::Unreachable(e.to_string()))?;
        inner
            .ping()
            .await
            .map_err(|e| SandboxError::Unreachable(e.to_string()))?;
        Ok(Self { inner })
    }

    pub fn client(&self) -> &bollard::Docker {
        &self.inner
    }

    pub async fn server_version(&self) -> Result<String, SandboxError> {
        let v = self
            .inner
            .version()
            .await
            .map_err(docker_err("asking its version"))?;
        Ok(v.version.unwrap_or_else(|| "unknown".into()))
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool, SandboxError> {
        match self.inner.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(docker_err("looking up the image")(e)),
        }
    }

    pub async fn require_image(&self, image: &str) -> Result<(), SandboxError> {
        if self.image_exists(image).await? {
            Ok(())
        } else {
            Err(SandboxError::ImageMissing(image.to_string()))
        }
    }

    /// Makes the task's seed volume from a tar archive: one upload per task, shared read-only by
    /// every rollout of it.
    pub async fn create_seed(
        &self,
        task_id: &str,
        image: &str,
        archive: Vec<u8>,
    ) -> Result<String, SandboxError> {
        let name = format!("threadsmith-seed-{}-{}", short(task_id), short_random());
        self.inner
            .create_volume(VolumeCreateRequest {
                name: Some(name.clone()),
                labels: Some(labels(task_id, None)),
                ..Default::default()
            })
            .await
            .map_err(docker_err("creating the seed volume"))?;
        // A short-lived loader container, so that the upload goes into the volume.
        let loader = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["true".into()]),
            labels: Some(labels(task_id, None)),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                mounts: Some(vec![Mount {
                    target: Some(SEED.into()),
                    source: Some(name.clone()),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .inner
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::default()
                        .name(&format!("{name}-loader"))
                        .build(),
                ),
                loader,
            )
            .await
            .map_err(docker_err("creating the seed loader"))?;
        let upload = self
            .inner
            .upload_to_container(
                &created.id,
                Some(
                    UploadToContainerOptionsBuilder::default()
                        .path(SEED)
                        .build(),
                ),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(docker_err("uploading the repository seed"));
        self.remove_container(&created.id).await;
        if let Err(e) = upload {
            self.remove_volume(&name).await;
            return Err(e);
        }
        Ok(name)
    }

    /// Creates and starts the sandbox of one rollout.
    pub async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let base = format!(
            "threadsmith-{}-{}-{}",
            short(&spec.task_id),
            spec.rollout,
            short_random()
        );
        let limits = &spec.limits;
        // The workspace is a tmpfs of the container itself (not a volume): no volume to create
        // and remove per rollout, and it goes with the container. Owned by the agent's user,
        // executable (the agent runs the repository's scripts), no setuid, no devices.
        let workspace_tmpfs = format!(
            "rw,exec,nosuid,nodev,size={},uid=1000,gid=1000,mode=0755",
            limits.workspace_bytes
        );
        let mut mounts = Vec::new();
        if let Some(seed) = &spec.seed_volume {
            mounts.push(Mount {
                target: Some(SEED.into()),
                source: Some(seed.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(true),
                ..Default::default()
            });
        }
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(INIT.iter().map(|s| s.to_string()).collect()),
            user: Some(AGENT_USER.into()),
            working_dir: Some(WORKSPACE.into()),
            env: Some(sandbox_env()),
            labels: Some(labels(&spec.task_id, Some(spec.rollout))),
            host_config: Some(HostConfig {
                network_mode: Some(if spec.start_with_network {
                    "bridge".into()
                } else {
                    "none".into()
                }),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                memory: Some(limits.memory_bytes),
                memory_swap: Some(limits.memory_bytes),
                nano_cpus: Some((limits.cpus * 1e9) as i64),
                pids_limit: Some(limits.pids),
                init: Some(false),
                tmpfs: Some(HashMap::from([
                    (
                        "/tmp".to_string(),
                        format!("rw,nosuid,nodev,size={},mode=1777", limits.tmp_bytes),
                    ),
                    (WORKSPACE.to_string(), workspace_tmpfs),
                ])),
                mounts: Some(mounts),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = match self
            .inner
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&base).build()),
                body,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return Err(match e {
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 404, ..
                    } => SandboxError::ImageMissing(spec.image.clone()),
                    e => docker_err("creating the sandbox")(e),
                });
            }
        };
        let sandbox = Sandbox {
            docker: self.inner.clone(),
            id: created.id,
            name: base,
            pids_limit: limits.pids,
        };
        if let Err(e) = self.inner.start_container(&sandbox.id, None).await {
            sandbox.remove().await;
            return Err(docker_err("starting the sandbox")(e));
        }
        Ok(sandbox)
    }
}

fn short_random() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_string()
}

/// The whole environment of a sandbox: an allow-list, never the host's.
fn sandbox_env() -> Vec<String> {
    [
        "HOME=/tmp",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
        "TERM=dumb",
        "CI=1",
        "GIT_AUTHOR_NAME=threadsmith",
        "GIT_AUTHOR_EMAIL=threadsmith@localhost",
        "GIT_COMMITTER_NAME=threadsmith",
        "GIT_COMMITTER_EMAIL=threadsmith@localhost",
        "GIT_PAGER=cat",
        "PAGER=cat",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// One rollout's container.
pub struct Sandbox {
    docker: bollard::Docker,
    pub id: String,
    pub name: String,
    pids_limit: i64,
}

impl Sandbox {
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

        let mut combined = CappedBuffer::new(req.cap);
        let mut stdout = req.keep_stdout.map(|_| Vec::new());
        let mut stdout_overflow = false;
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
                    Some(Ok(LogOutput::StdOut { message })) => {
                        combined.push(&message);
                        if let (Some(buf), Some(max)) = (stdout.as_mut(), req.keep_stdout) {
                            if buf.len() + message.len() > max {
                                stdout_overflow = true;
                            } else {
                                buf.extend_from_slice(&message);
                            }
                        }
                    }
                    Some(Ok(LogOutput::StdErr { message } | LogOutput::Console { message })) => {
                        combined.push(&message);
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
        // 124: `timeout` stopped it; 137 after the limit: it ignored SIGTERM and was killed.
        let timed_out = killed_by_host
            || exit_code == Some(124)
            || (exit_code == Some(137) && started.elapsed() >= req.timeout);
        Ok(ExecOutcome {
            exit_code,
            output: combined.finish(),
            stdout: if stdout_overflow { None } else { stdout },
            stdout_overflow,
            duration: started.elapsed(),
            timed_out,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_told_apart_from_reused_pids() {
        let me = owner_label();
        assert!(!owner_is_dead(&me), "{me}");
        let (host_pid, _) = me.rsplit_once(':').unwrap();
        assert!(
            owner_is_dead(&format!("{host_pid}:1")),
            "same pid, another start time"
        );
        let host = me.split(':').next().unwrap();
        assert!(owner_is_dead(&format!("{host}:999999999:1")), "no such pid");
        assert!(
            !owner_is_dead("another-host:1:1"),
            "other machines are not judged"
        );
        assert!(owner_is_dead("garbage"));
    }
}
