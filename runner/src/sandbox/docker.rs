//! The Docker engine: connecting, images, the task's seed volume and the creation of sandboxes.

use super::*;

/// The sandbox's pid 1: reaps orphans, and as pid 1 is immune to the `kill -9 -1` that ends
/// whatever a command left behind (docker-init would exit with its child).
pub(super) const INIT: [&str; 3] = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done",
];

/// How long [`SandboxBackend::reachable`] waits for the engine's answer to a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection to the Docker engine.
#[derive(Clone)]
pub struct Docker {
    pub(super) inner: bollard::Docker,
}

pub(super) fn labels(task_id: &str, rollout: Option<u32>) -> HashMap<String, String> {
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

pub(super) fn short(id: &str) -> &str {
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
    pub async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<DockerSandbox, SandboxError> {
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
                // No CPU limit until the working copy is in place: the copy step extracts its
                // parts on every CPU; the limit is in force before the agent or any setup runs
                // (`Sandbox::enforce_cpu_limit`).
                nano_cpus: None,
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
        let sandbox = DockerSandbox {
            docker: self.inner.clone(),
            id: created.id,
            name: base,
            pids_limit: limits.pids,
            nano_cpus: (limits.cpus * 1e9) as i64,
        };
        if let Err(e) = self.inner.start_container(&sandbox.id, None).await {
            sandbox.remove().await;
            return Err(docker_err("starting the sandbox")(e));
        }
        Ok(sandbox)
    }
}

pub(super) fn short_random() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_string()
}

/// The whole environment of a sandbox: an allow-list, never the host's.
pub(super) fn sandbox_env() -> Vec<String> {
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

#[async_trait]
impl SandboxBackend for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn environments(&self) -> Option<&dyn crate::environment::EnvironmentCache> {
        Some(self)
    }

    async fn reachable(&self) -> Result<(), SandboxError> {
        match tokio::time::timeout(PING_TIMEOUT, self.inner.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SandboxError::Unreachable(e.to_string())),
            Err(_) => Err(SandboxError::Unreachable(format!(
                "no answer to a ping within {} s",
                PING_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn require_image(&self, image: &str) -> Result<(), SandboxError> {
        Docker::require_image(self, image).await
    }

    async fn create_seed(
        &self,
        task_id: &str,
        image: &str,
        archive: Vec<u8>,
    ) -> Result<String, SandboxError> {
        Docker::create_seed(self, task_id, image, archive).await
    }

    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, SandboxError> {
        Ok(Box::new(Docker::create_sandbox(self, spec).await?))
    }

    async fn remove_task(&self, task_id: &str) -> Result<usize, SandboxError> {
        Docker::remove_task(self, task_id).await
    }

    async fn remove_orphans(&self, is_dead: &OwnerIsDead) -> Result<usize, SandboxError> {
        self.remove_where(|_, owner| owner.is_none_or(is_dead))
            .await
    }
}
