//! The pod status as the kubelet reports it: phase, conditions, container statuses.

use serde_json::{Value, json};

use super::super::store::now;

/// What one container is doing, for its `containerStatuses` entry.
#[derive(Debug, Clone)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i64,
        reason: String,
        started_at: String,
        finished_at: String,
    },
}

impl State {
    pub fn waiting(reason: &str, message: Option<String>) -> Self {
        Self::Waiting {
            reason: reason.into(),
            message,
        }
    }

    fn json(&self, container_id: Option<&str>) -> Value {
        match self {
            Self::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            Self::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            Self::Terminated {
                exit_code,
                reason,
                started_at,
                finished_at,
            } => {
                let mut t = json!({
                    "exitCode": exit_code,
                    "reason": reason,
                    "startedAt": started_at,
                    "finishedAt": finished_at,
                });
                if let Some(id) = container_id {
                    t["containerID"] = json!(id);
                }
                json!({"terminated": t})
            }
        }
    }
}

/// One container of the pod as the worker tracks it.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub image_id: Option<String>,
    /// The Docker container's id, once created.
    pub id: Option<String>,
    pub state: State,
    pub last_state: Option<State>,
    pub restarts: i64,
}

impl Container {
    pub fn json(&self) -> Value {
        let container_id = self.id.as_ref().map(|id| format!("docker://{id}"));
        let running = matches!(self.state, State::Running { .. });
        let mut v = json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id.clone().unwrap_or_default(),
            "state": self.state.json(container_id.as_deref()),
            "lastState": self.last_state.as_ref().map_or(json!({}), |s| s.json(None)),
            "ready": running,
            "started": running,
            "restartCount": self.restarts,
        });
        if let Some(id) = container_id {
            v["containerID"] = json!(id);
        }
        v
    }
}

fn condition(
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    old: &Value,
) -> Value {
    let status = if ok { "True" } else { "False" };
    // The transition time stays while the status does.
    let since = old["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .filter(|c| c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
        .unwrap_or_else(now);
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The pod's phase from its containers (restartPolicy Never: every container ended).
pub fn phase(containers: &[Container], sandbox_ready: bool) -> &'static str {
    let ended: Vec<i64> = containers
        .iter()
        .filter_map(|c| match c.state {
            State::Terminated { exit_code, .. } => Some(exit_code),
            _ => None,
        })
        .collect();
    if ended.len() == containers.len() && !containers.is_empty() {
        if ended.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if sandbox_ready
        && containers
            .iter()
            .any(|c| matches!(c.state, State::Running { .. } | State::Terminated { .. }))
    {
        "Running"
    } else {
        "Pending"
    }
}

/// The status object; `old` is the stored status (for transition times and startTime).
pub fn render(
    old: &Value,
    containers: &[Container],
    sandbox_ready: bool,
    pod_ip: Option<&str>,
    host_ip: &str,
    qos: &str,
    failed: Option<(&str, &str)>,
) -> Value {
    let mut phase = phase(containers, sandbox_ready);
    if failed.is_some() {
        phase = "Failed";
    }
    let done = phase == "Succeeded" || phase == "Failed";
    let unready: Vec<&str> = containers
        .iter()
        .filter(|c| !matches!(c.state, State::Running { .. }))
        .map(|c| c.name.as_str())
        .collect();
    let all_ready = unready.is_empty();
    let (ready_reason, ready_message) = if done {
        (Some("PodCompleted"), None)
    } else if all_ready {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", sandbox_ready && !done, None, None, old),
            condition("Initialized", true, None, None, old),
            condition("Ready", all_ready && !done, ready_reason, ready_message.clone(), old),
            condition("ContainersReady", all_ready && !done, ready_reason, ready_message, old),
            condition("PodScheduled", true, None, None, old),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": old["startTime"].as_str().map(String::from).unwrap_or_else(now),
        "containerStatuses": containers.iter().map(Container::json).collect::<Vec<_>>(),
        "qosClass": qos,
    });
    if let Some(ip) = pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if let Some((reason, message)) = failed {
        status["reason"] = json!(reason);
        status["message"] = json!(message);
    }
    status
}
