//! Which process owns a container (its owner label) and the removal of what dead processes left:
//! listing threadsmith's containers and volumes, removing a task's or an orphan's.

use super::*;

/// A process's start time (clock ticks since boot), so that a reused pid is not taken for the
/// process that made a container.
fn start_time(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ")" are plain.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).map(String::from)
}

pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// This process, as written in [`LABEL_OWNER`]: `host:pid:start time`.
pub fn owner_label() -> String {
    let pid = std::process::id().to_string();
    let start = start_time(&pid).unwrap_or_default();
    format!("{}:{pid}:{start}", hostname())
}

/// Whether the process an owner label names is known to be gone: it ran on this machine and its
/// pid is free or now belongs to a process started at another time. Another machine's process is
/// never judged dead here.
pub fn owner_is_dead(owner: &str) -> bool {
    let mut parts = owner.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return true;
    };
    if host != hostname() {
        // Another machine's process: not ours to judge.
        return false;
    }
    match (parts.next(), start_time(pid)) {
        (_, None) => true,
        (Some(recorded), Some(now)) => recorded != now,
        (None, Some(_)) => false,
    }
}

impl Docker {
    /// Every container labelled as threadsmith's.
    pub async fn list_managed(&self) -> Result<Vec<ManagedContainer>, SandboxError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_MANAGED}=true")])]);
        let list = self
            .inner
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(docker_err("listing containers"))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                ManagedContainer {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    task: labels.get(LABEL_TASK).cloned(),
                    owner: labels.get(LABEL_OWNER).cloned(),
                }
            })
            .collect())
    }

    /// Removes threadsmith's containers and volumes that `doomed` selects (by task and owner).
    pub(super) async fn remove_where(
        &self,
        doomed: impl Fn(Option<&str>, Option<&str>) -> bool,
    ) -> Result<usize, SandboxError> {
        let mut removed = 0;
        for c in self.list_managed().await? {
            if doomed(c.task.as_deref(), c.owner.as_deref()) {
                self.remove_container(&c.id).await;
                removed += 1;
            }
        }
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_MANAGED}=true")])]);
        let volumes = self
            .inner
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(docker_err("listing volumes"))?;
        for v in volumes.volumes.unwrap_or_default() {
            let task = v.labels.get(LABEL_TASK).map(String::as_str);
            let owner = v.labels.get(LABEL_OWNER).map(String::as_str);
            if doomed(task, owner) {
                self.remove_volume(&v.name).await;
            }
        }
        Ok(removed)
    }

    /// Removes the containers and volumes of one task (cancellation, clean-up).
    pub async fn remove_task(&self, task_id: &str) -> Result<usize, SandboxError> {
        self.remove_where(|task, _| task == Some(task_id)).await
    }

    /// Removes containers and volumes whose owning process on this host is gone (the
    /// [`SandboxBackend::remove_orphans`] of this machine's processes).
    pub async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        self.remove_where(|_, owner| owner.is_none_or(owner_is_dead))
            .await
    }

    pub(super) async fn remove_container(&self, id: &str) {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if let Err(e) = self.inner.remove_container(id, Some(opts)).await
            && !is_not_found(&e)
        {
            tracing::warn!(container = id, error = %e, "could not remove container");
        }
    }

    pub async fn remove_volume(&self, name: &str) {
        remove_volume(&self.inner, name).await
    }
}

async fn remove_volume(docker: &bollard::Docker, name: &str) {
    let opts = RemoveVolumeOptionsBuilder::default().force(true).build();
    if let Err(e) = docker.remove_volume(name, Some(opts)).await
        && !is_not_found(&e)
    {
        tracing::warn!(volume = name, error = %e, "could not remove volume");
    }
}

pub(super) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
