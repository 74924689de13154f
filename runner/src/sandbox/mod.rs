//! Sandboxes: the interface every backend implements ([`SandboxBackend`] for a place to run
//! rollouts, [`Sandbox`] for one rollout's sandbox), the vocabulary they share, and the Docker
//! backend (through bollard: one container per rollout; `docker.rs`, `exec.rs`, `owners.rs`).
//! Everything above the interface — the agent loop, diffs, tests, ranking, cancel, recovery — is
//! the same whatever the backend.
//!
//! On Docker, while an agent works its container has no network, no secret in its environment, a non-root
//! user, no capabilities, `no-new-privileges`, memory / CPU / pids limits, a read-only root and
//! size-limited writable `/workspace` and `/tmp`. Every command runs under a time limit and its
//! output is capped (see [`crate::output`]). Containers and volumes carry labels so that
//! threadsmith can find its own and remove the orphans of a dead process.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
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

mod docker;
mod environments;
mod exec;
pub mod kubernetes;
mod owners;

pub use docker::Docker;
pub use environments::{LABEL_ENVIRONMENT, SNAPSHOT_REPO};
pub use exec::DockerSandbox;
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
    /// A backend other than Docker failed (each backend says what it was doing).
    #[error("the {backend} sandbox backend failed while {action}: {detail}")]
    Backend {
        backend: &'static str,
        action: &'static str,
        detail: String,
    },
    #[error("the rollout was cancelled")]
    Cancelled,
}

/// Whether the process an owner label names is gone; see [`SandboxBackend::remove_orphans`].
pub type OwnerIsDead = dyn Fn(&str) -> bool + Send + Sync;

/// A place to run rollouts (Docker today; a Kubernetes cluster next). Every object it makes
/// carries the task, the rollout and the owning process (see [`owner_label`]), so that a task's
/// objects and a dead process's can be found again.
///
/// Held as `Arc<dyn SandboxBackend>`, hence `async_trait`: native `async fn` in traits is not
/// object-safe, and boxed futures are what a trait object needs anyway.
#[async_trait]
pub trait SandboxBackend: Send + Sync {
    /// The backend's name in logs and messages (`docker`).
    fn name(&self) -> &'static str;

    /// Whether the backend is shared by processes on several machines (a cluster), so that only
    /// the store's live workers can tell a dead owner; a backend of one machine is judged by its
    /// process table ([`owner_is_dead`]). See [`SandboxBackend::remove_orphans`].
    fn owners_span_machines(&self) -> bool {
        false
    }

    /// Where the backend keeps environment snapshots (see [`crate::environment`]); `None` when
    /// it keeps none (the setup then runs in every rollout).
    fn environments(&self) -> Option<&dyn crate::environment::EnvironmentCache> {
        None
    }

    /// Whether the backend can be reached now (Docker: ping; Kubernetes: the API server and the namespace).
    async fn reachable(&self) -> Result<(), SandboxError>;

    /// Fails with [`SandboxError::ImageMissing`] when the rollout image cannot be used.
    async fn require_image(&self, image: &str) -> Result<(), SandboxError>;

    /// Makes the task's seed from its seed archive (a tar of `objects/`, the checkout archive
    /// and `tree/`: see [`crate::repo`]), once per task, shared read-only by every rollout of it
    /// at [`SEED`]. Returns the seed's name, for [`SandboxSpec::seed_volume`].
    async fn create_seed(
        &self,
        task_id: &str,
        image: &str,
        archive: Vec<u8>,
    ) -> Result<String, SandboxError>;

    /// Creates and starts the sandbox of one rollout; on failure nothing of it is left.
    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, SandboxError>;

    /// Removes every object of the task (its sandboxes and its seed); how many sandboxes went.
    async fn remove_task(&self, task_id: &str) -> Result<usize, SandboxError>;

    /// Removes the objects whose owner `is_dead` judges gone, and those with no owner; how many
    /// sandboxes went. Docker's callers pass [`owner_is_dead`] (this machine's processes); a
    /// backend shared by several machines is given the store's view of live workers.
    async fn remove_orphans(&self, is_dead: &OwnerIsDead) -> Result<usize, SandboxError>;
}

/// One rollout's sandbox: the repository's working copy at [`WORKSPACE`], the seed at [`SEED`].
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// Its name in logs (a container's or a pod's name).
    fn name(&self) -> &str;

    /// Runs a command under its time limit, cancellable ([`SandboxError::Cancelled`], every
    /// process of it killed), with its output capped; with `reap`, nothing it started survives it.
    async fn exec(
        &self,
        req: ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutcome, SandboxError>;

    /// Takes the sandbox off every network (after an opted-in setup phase).
    async fn cut_network(&self) -> Result<(), SandboxError>;

    /// Puts the sandbox's CPU limit in force. A backend may start a sandbox without it, so that
    /// the working copy is put in place on every CPU (the copy step extracts its parts at once):
    /// this is called once the copy is done, before anything else runs in the sandbox, and the
    /// rollout ends if it fails. By default the limit is in force from the start: nothing to do.
    async fn enforce_cpu_limit(&self) -> Result<(), SandboxError> {
        Ok(())
    }

    /// Why the sandbox can run no more commands — it stopped, or its memory is full — read from
    /// outside it; `None` when it can, or when the backend cannot tell (see [`crate::oom`]).
    async fn out_of_memory(&self) -> Option<String>;

    /// Kills and removes the sandbox and its workspace; failures are logged, not returned.
    async fn remove(&self);
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
    /// The longest the sandbox may live, every phase included: a backstop the backend enforces
    /// itself where it can (Kubernetes: the pod's `activeDeadlineSeconds`).
    pub lifetime: Duration,
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

/// What a running command printed, collected the same way by every backend: stdout and stderr
/// interleaved and capped, and stdout kept whole when [`ExecRequest::keep_stdout`] asks and it
/// fits; [`ExecOutput::finish`] makes the [`ExecOutcome`].
pub(crate) struct ExecOutput {
    combined: CappedBuffer,
    stdout: Option<Vec<u8>>,
    keep_stdout: Option<usize>,
    stdout_overflow: bool,
}

impl ExecOutput {
    /// Collects under the request's `cap` and `keep_stdout`.
    pub(crate) fn new(cap: OutputCap, keep_stdout: Option<usize>) -> Self {
        Self {
            combined: CappedBuffer::new(cap),
            stdout: keep_stdout.map(|_| Vec::new()),
            keep_stdout,
            stdout_overflow: false,
        }
    }

    pub(crate) fn stdout(&mut self, chunk: &[u8]) {
        self.combined.push(chunk);
        if let (Some(buf), Some(max)) = (self.stdout.as_mut(), self.keep_stdout) {
            if buf.len() + chunk.len() > max {
                self.stdout_overflow = true;
            } else {
                buf.extend_from_slice(chunk);
            }
        }
    }

    pub(crate) fn stderr(&mut self, chunk: &[u8]) {
        self.combined.push(chunk);
    }

    /// The outcome of a command started at `started` under `timeout`; `exit_code` is `None`
    /// when the host killed it (`killed_by_host`).
    pub(crate) fn finish(
        self,
        exit_code: Option<i64>,
        killed_by_host: bool,
        started: Instant,
        timeout: Duration,
    ) -> ExecOutcome {
        // 124: `timeout` stopped it; 137 after the limit: it ignored SIGTERM and was killed.
        let timed_out = killed_by_host
            || exit_code == Some(124)
            || (exit_code == Some(137) && started.elapsed() >= timeout);
        ExecOutcome {
            exit_code,
            output: self.combined.finish(),
            stdout: if self.stdout_overflow {
                None
            } else {
                self.stdout
            },
            stdout_overflow: self.stdout_overflow,
            duration: started.elapsed(),
            timed_out,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_backend_says_when_it_cannot_be_reached() {
        let backend = crate::testing::MemoryBackend::new();
        backend.reachable().await.unwrap();
        let shared = backend.clone();
        backend.set_unreachable(Some("the engine is gone"));
        let err = shared.reachable().await.unwrap_err();
        assert!(
            matches!(&err, SandboxError::Backend { detail, .. } if detail == "the engine is gone"),
            "{err}"
        );
        backend.set_unreachable(None);
        shared.reachable().await.unwrap();
    }

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
