//! The fake's one node: a kubelet that watches the store and runs each pod as Docker
//! containers (one per pod container; the first holds the pod's network, the others share it).

mod container;
mod network;
mod pod_status;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::resource::{NETWORK_POLICIES, PODS};
use super::store::{EventType, Store, name_of, namespace_of};

/// The fake server instance a container belongs to (never a pod's own label).
pub const LABEL_INSTANCE: &str = "dev.threadsmith.fake-kubernetes";
/// `<namespace>/<pod>/<container>` of the container.
pub const LABEL_POD: &str = "dev.threadsmith.fake-kubernetes.pod";
/// The process id of the test process running the server (for [`remove_leftovers`]).
pub const LABEL_SERVER_PID: &str = "dev.threadsmith.fake-kubernetes.pid";

/// What the kubelet tells a pod's worker.
#[derive(Debug)]
pub(crate) enum Ctl {
    /// The pod was deleted with this grace period: stop the containers, then remove the object.
    Terminate { grace: i64 },
    /// The object is gone already: kill and remove the containers.
    Kill,
    /// Labels or policies changed: apply the network the policies give the pod now.
    Network,
}

pub(crate) struct Kubelet {
    docker: bollard::Docker,
    store: Store,
    instance: String,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    pods: Mutex<HashMap<(String, String), mpsc::UnboundedSender<Ctl>>>,
    /// The node's address as pods see it: the default bridge's gateway.
    host_ip: String,
    /// The node's `podPidsLimit` (`None`: unlimited, the kubelet's default).
    pub(crate) pod_pids_limit: Option<i64>,
}

impl Kubelet {
    pub async fn start(
        store: Store,
        tasks: TaskTracker,
        shutdown: CancellationToken,
        pod_pids_limit: Option<i64>,
    ) -> anyhow::Result<Arc<Self>> {
        let docker = bollard::Docker::connect_with_defaults()?;
        docker.ping().await?;
        let bridge = docker
            .inspect_network(
                "bridge",
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await?;
        let host_ip = bridge
            .ipam
            .and_then(|i| i.config)
            .and_then(|c| c.into_iter().find_map(|c| c.gateway))
            .unwrap_or_else(|| "172.17.0.1".into());
        let k = Arc::new(Self {
            docker,
            store,
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            tasks: tasks.clone(),
            shutdown,
            pods: Mutex::new(HashMap::new()),
            host_ip,
            pod_pids_limit,
        });
        let sub = k
            .store
            .subscribe(&PODS, None)
            .map_err(|_| anyhow::anyhow!("a fresh store has its whole history"))?;
        let me = k.clone();
        tasks.spawn(async move { me.informer(sub).await });
        Ok(k)
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn host_ip(&self) -> &str {
        &self.host_ip
    }

    pub fn docker(&self) -> &bollard::Docker {
        &self.docker
    }

    fn pods(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), mpsc::UnboundedSender<Ctl>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tell(&self, key: &(String, String), ctl: Ctl) {
        if let Some(tx) = self.pods().get(key) {
            // A worker that ended has nothing left to act on.
            let _ended = tx.send(ctl);
        }
    }

    async fn informer(self: Arc<Self>, sub: super::store::Subscription) {
        for ev in sub.backlog {
            self.clone().pod_added(&ev.obj);
        }
        let mut events = sub.events;
        loop {
            let ev = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                ev = events.recv() => match ev { Some(ev) => ev, None => return },
            };
            if ev.res == NETWORK_POLICIES {
                let keys: Vec<_> = self.pods().keys().cloned().collect();
                for key in keys {
                    self.tell(&key, Ctl::Network);
                }
                continue;
            }
            if ev.res != PODS {
                continue;
            }
            let key = (
                namespace_of(&ev.obj).to_string(),
                name_of(&ev.obj).to_string(),
            );
            match ev.kind {
                EventType::Added => self.clone().pod_added(&ev.obj),
                EventType::Deleted => self.tell(&key, Ctl::Kill),
                EventType::Modified => {
                    let prev = ev.prev.as_ref();
                    let deleting = ev.obj.pointer("/metadata/deletionTimestamp").is_some();
                    if deleting
                        && prev.is_some_and(|p| p.pointer("/metadata/deletionTimestamp").is_none())
                    {
                        let grace = ev
                            .obj
                            .pointer("/metadata/deletionGracePeriodSeconds")
                            .and_then(Value::as_i64)
                            .unwrap_or(30);
                        self.tell(&key, Ctl::Terminate { grace });
                    }
                    if prev.is_some_and(|p| {
                        p.pointer("/metadata/labels") != ev.obj.pointer("/metadata/labels")
                    }) {
                        self.tell(&key, Ctl::Network);
                    }
                }
            }
        }
    }

    fn pod_added(self: Arc<Self>, pod: &Value) {
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        let key = (namespace_of(pod).to_string(), name_of(pod).to_string());
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut pods = self.pods();
            if pods.contains_key(&key) {
                return;
            }
            pods.insert(key.clone(), tx);
        }
        let me = self.clone();
        self.tasks.spawn(async move {
            worker::run(me.clone(), key.0.clone(), key.1.clone(), rx).await;
            me.pods().remove(&key);
        });
    }

    fn labels(&self, ns: &str, pod: &str, container: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_INSTANCE.to_string(), self.instance.clone()),
            (LABEL_POD.to_string(), format!("{ns}/{pod}/{container}")),
            (LABEL_SERVER_PID.to_string(), std::process::id().to_string()),
        ])
    }

    /// Removes every container of this server.
    pub async fn remove_all(&self) {
        remove_matching(&self.docker, &format!("{LABEL_INSTANCE}={}", self.instance)).await;
    }

    /// [`Self::remove_all`] from a synchronous context (`Drop`), on a thread of its own; first
    /// waits (at most 10 s) for `workers` to end, when given.
    pub fn remove_all_blocking(&self, workers: Option<TaskTracker>) {
        let filter = format!("{LABEL_INSTANCE}={}", self.instance);
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => rt.block_on(async {
                    if let Some(workers) = workers
                        && tokio::time::timeout(Duration::from_secs(10), workers.wait())
                            .await
                            .is_err()
                    {
                        tracing::warn!(
                            "the fake Kubernetes server's workers did not end within 10 s"
                        );
                    }
                    if let Ok(docker) = bollard::Docker::connect_with_defaults() {
                        remove_matching(&docker, &filter).await;
                    }
                }),
                Err(e) => tracing::warn!(error = %e, "no runtime to remove the fake's containers"),
            }
        })
        .join();
        if joined.is_err() {
            tracing::warn!("removing the fake Kubernetes containers panicked");
        }
    }
}

async fn remove_matching(docker: &bollard::Docker, label: &str) {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&HashMap::from([(
            "label".to_string(),
            vec![label.to_string()],
        )]))
        .build();
    let list = match docker.list_containers(Some(opts)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "listing the fake's containers");
            return;
        }
    };
    for c in list {
        if let Some(id) = c.id {
            remove_container(docker, &id).await;
        }
    }
    let opts = bollard::query_parameters::ListVolumesOptionsBuilder::default()
        .filters(&HashMap::from([(
            "label".to_string(),
            vec![label.to_string()],
        )]))
        .build();
    match docker.list_volumes(Some(opts)).await {
        Ok(list) => {
            for v in list.volumes.unwrap_or_default() {
                remove_volume(docker, &v.name).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing the fake's volumes"),
    }
}

pub(crate) async fn remove_volume(docker: &bollard::Docker, name: &str) {
    match docker
        .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
        .await
    {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => tracing::warn!(error = %e, volume = name, "removing a fake pod's volume"),
    }
}

pub(crate) async fn remove_container(docker: &bollard::Docker, id: &str) {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        // 409: removal already in progress.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => {}
        Err(e) => tracing::warn!(error = %e, container = id, "removing a fake pod's container"),
    }
}

/// Removes the containers of fake servers whose process is gone (a test that was killed).
pub async fn remove_leftovers() -> anyhow::Result<usize> {
    let docker = bollard::Docker::connect_with_defaults()?;
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&HashMap::from([(
            "label".to_string(),
            vec![LABEL_INSTANCE.to_string()],
        )]))
        .build();
    let mut removed = 0;
    for c in docker.list_containers(Some(opts)).await? {
        let pid = c
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SERVER_PID))
            .and_then(|p| p.parse::<i32>().ok());
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = pid.is_some_and(|p| p > 0 && unsafe { libc::kill(p, 0) } == 0);
        if !alive && let Some(id) = c.id {
            remove_container(&docker, &id).await;
            removed += 1;
        }
    }
    let opts = bollard::query_parameters::ListVolumesOptionsBuilder::default()
        .filters(&HashMap::from([(
            "label".to_string(),
            vec![LABEL_INSTANCE.to_string()],
        )]))
        .build();
    for v in docker
        .list_volumes(Some(opts))
        .await?
        .volumes
        .unwrap_or_default()
    {
        let pid = v
            .labels
            .get(LABEL_SERVER_PID)
            .and_then(|p| p.parse::<i32>().ok());
        // SAFETY: as above.
        let alive = pid.is_some_and(|p| p > 0 && unsafe { libc::kill(p, 0) } == 0);
        if !alive {
            remove_volume(&docker, &v.name).await;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The Docker container of a pod's container, for exec and logs: the named one, or the only
/// one. The error is the API server's answer.
pub(crate) fn container_of(
    pod: &Value,
    container: Option<&str>,
) -> Result<(String, Option<String>), super::status::ApiError> {
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let pod_name = name_of(pod);
    let name = match container {
        Some(c) if !c.is_empty() => {
            if !names.contains(&c) {
                return Err(super::status::ApiError::bad_request(format!(
                    "container {c} is not valid for pod {pod_name}"
                )));
            }
            c.to_string()
        }
        _ if names.len() == 1 => names[0].to_string(),
        _ => {
            return Err(super::status::ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let id = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name.as_str()))
        .and_then(|s| s["containerID"].as_str())
        .and_then(|id| id.strip_prefix("docker://"))
        .map(String::from);
    Ok((name, id))
}
