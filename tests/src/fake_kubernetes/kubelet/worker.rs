//! One pod's life on the node: scheduled, image checked, containers created and started,
//! exits, OOM kills and the active deadline reported, network applied, graceful deletion.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use bollard::models::{NetworkConnectRequest, NetworkDisconnectRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptions,
};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::super::hooks::{self, NODE_NAME};
use super::super::resource::PODS;
use super::super::status::ApiError;
use super::super::store::now;
use super::pod_status::{self, Container, State};
use super::{Ctl, Kubelet, container, network, remove_container, remove_volume};

mod create;

/// How long an image pull "fails" before the status says back-off.
const PULL_BACKOFF: Duration = Duration::from_millis(500);

/// Why the worker's wait for the pod's end stopped.
enum End {
    /// Deleted gracefully: stop, then remove the object.
    Terminate(i64),
    /// The object is gone (or the server stops).
    Gone,
}

struct Pod {
    k: Arc<Kubelet>,
    ns: String,
    name: String,
    containers: Vec<Container>,
    sandbox_ready: bool,
    pod_ip: Option<String>,
    connected: bool,
    qos: String,
    failed: Option<(&'static str, &'static str)>,
    deadline: Option<tokio::time::Instant>,
    /// The Docker volumes of its emptyDirs.
    volumes: Vec<String>,
}

pub(super) async fn run(
    k: Arc<Kubelet>,
    ns: String,
    name: String,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
) {
    let Ok(spec) = k.store.get(&PODS, &ns, &name) else {
        return;
    };
    let mut pod = Pod {
        k,
        ns,
        name,
        containers: spec["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Container {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                image: c["image"].as_str().unwrap_or_default().to_string(),
                image_id: None,
                id: None,
                state: State::waiting("ContainerCreating", None),
                last_state: None,
                restarts: 0,
            })
            .collect(),
        sandbox_ready: false,
        pod_ip: None,
        connected: false,
        qos: hooks::qos_class(&spec["spec"]).to_string(),
        failed: None,
        deadline: spec["spec"]["activeDeadlineSeconds"]
            .as_u64()
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(s)),
        volumes: Vec::new(),
    };
    let end = pod.live(&spec, &mut ctl).await;
    for c in &pod.containers {
        if let (End::Terminate(grace), Some(id)) = (&end, &c.id) {
            let opts = StopContainerOptionsBuilder::default()
                .t(*grace as i32)
                .build();
            if let Err(e) = pod.k.docker.stop_container(id, Some(opts)).await {
                tracing::debug!(error = %e, "stopping a fake pod's container");
            }
        }
    }
    for c in &pod.containers {
        if let Some(id) = &c.id {
            remove_container(&pod.k.docker, id).await;
        }
    }
    for v in &pod.volumes {
        remove_volume(&pod.k.docker, v).await;
    }
    if matches!(end, End::Terminate(_))
        && let Err(e) = pod.k.store.remove(&PODS, &pod.ns, &pod.name)
    {
        tracing::debug!(error = %e.message, "the deleted pod was removed meanwhile");
    }
}

impl Pod {
    /// Writes the status; `Err` when the pod is gone.
    fn report(&self, schedule: bool) -> Result<(), ApiError> {
        let host_ip = self.k.host_ip.clone();
        self.k.store.modify(&PODS, &self.ns, &self.name, |old| {
            let mut new = old.clone();
            if schedule {
                new["spec"]["nodeName"] = json!(NODE_NAME);
            }
            new["status"] = pod_status::render(
                &old["status"],
                &self.containers,
                self.sandbox_ready,
                self.pod_ip.as_deref(),
                &host_ip,
                &self.qos,
                self.failed,
            );
            (new != *old).then_some(new)
        })?;
        Ok(())
    }

    async fn live(&mut self, spec: &Value, ctl: &mut mpsc::UnboundedReceiver<Ctl>) -> End {
        if self.report(true).is_err() {
            return End::Gone;
        }
        match self.create(spec).await {
            Ok(()) => {}
            Err(reason) => {
                tracing::debug!(pod = %self.name, reason, "the fake pod cannot start");
                return self.wait_for_end(ctl).await;
            }
        }
        self.wait_for_end(ctl).await
    }

    /// Waits for deletion, container exits and the active deadline.
    async fn wait_for_end(&mut self, ctl: &mut mpsc::UnboundedReceiver<Ctl>) -> End {
        let mut waits = FuturesUnordered::new();
        for (i, c) in self.containers.iter().enumerate() {
            if let (Some(id), State::Running { .. }) = (&c.id, &c.state) {
                let docker = self.k.docker.clone();
                let id = id.clone();
                waits.push(async move {
                    let mut s = docker.wait_container(&id, None::<WaitContainerOptions>);
                    // The wait's answer (or error) only says that it ended; inspect tells how.
                    let _ended = s.next().await;
                    i
                });
            }
        }
        let deadline = self.deadline;
        loop {
            tokio::select! {
                _ = self.k.shutdown.cancelled() => return End::Gone,
                msg = ctl.recv() => match msg {
                    None | Some(Ctl::Kill) => return End::Gone,
                    Some(Ctl::Terminate { grace }) => return End::Terminate(grace),
                    Some(Ctl::Network) => {
                        if let Ok(pod) = self.k.store.get(&PODS, &self.ns, &self.name) {
                            let isolated = network::isolated(&self.k.store, &pod);
                            self.set_network(!isolated).await;
                        }
                    }
                },
                Some(i) = waits.next(), if !waits.is_empty() => {
                    self.exited(i).await;
                    if self.report(false).is_err() {
                        return End::Gone;
                    }
                }
                _ = sleep_until(deadline), if deadline.is_some() && self.failed.is_none() && !self.finished() => {
                    self.failed = Some(("DeadlineExceeded", "Pod was active on the node longer than the specified deadline"));
                    for c in &self.containers {
                        if let (Some(id), State::Running { .. }) = (&c.id, &c.state) {
                            let opts = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
                            if let Err(e) = self.k.docker.kill_container(id, Some(opts)).await {
                                tracing::debug!(error = %e, "killing a container past its deadline");
                            }
                        }
                    }
                    // The exits are reported as the waits end; the phase is Failed already.
                    if self.report(false).is_err() {
                        return End::Gone;
                    }
                }
            }
        }
    }

    fn finished(&self) -> bool {
        matches!(
            pod_status::phase(&self.containers, self.sandbox_ready),
            "Succeeded" | "Failed"
        )
    }

    /// Records how container `i` ended (restartPolicy Never: it stays ended).
    async fn exited(&mut self, i: usize) {
        let Some(id) = self.containers[i].id.clone() else {
            return;
        };
        let info = self
            .k
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await;
        let state = info.ok().and_then(|i| i.state).unwrap_or_default();
        let exit_code = state.exit_code.unwrap_or(137);
        let reason = if state.oom_killed == Some(true) {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let started_at = match &self.containers[i].state {
            State::Running { started_at } => started_at.clone(),
            _ => now(),
        };
        self.containers[i].state = State::Terminated {
            exit_code,
            reason: reason.into(),
            started_at,
            finished_at: state
                .finished_at
                .filter(|f| !f.starts_with("0001"))
                .unwrap_or_else(now),
        };
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
