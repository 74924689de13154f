//! The pod of one rollout, as a pure function of the sandbox's spec and the backend's options:
//! every security setting in one place (and in the snapshot test of this file).

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, LocalObjectReference, Pod,
    PodSecurityContext, PodSpec, ResourceRequirements, SeccompProfile, SecurityContext, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::owners::{encode_owner, label_value};
use super::{KubernetesOptions, LABEL_NETWORK, NETWORK_SETUP};
use crate::sandbox::{
    LABEL_MANAGED, LABEL_OWNER, LABEL_ROLLOUT, LABEL_TASK, SEED, SandboxSpec, WORKSPACE,
};

/// The name of the container the agent's commands run in.
pub const CONTAINER: &str = "sandbox";
/// The container that receives the task's seed (with a seed): the only one that mounts the
/// seed's volume writable; [`CONTAINER`] mounts it read-only, and cannot reach this container's
/// file system or processes (no shared process namespace).
pub const SEED_CONTAINER: &str = "seed";
/// The seed container's memory beyond the seed's size (the tar that fills it; and where the
/// volume is a tmpfs, its pages are charged to the container that writes them).
const SEED_CONTAINER_MEMORY: u64 = 64 << 20;
/// The agent's user and group (as on Docker: [`crate::sandbox::AGENT_USER`]).
const UID: i64 = 1000;
/// Room for the seed beyond its archive's size (file system overhead of many small files).
const SEED_SLACK: u64 = 64 << 20;

/// The annotations that hold the task and owner whole (labels hold them only when they fit a
/// label value; see [`label_value`]).
pub const ANNOTATION_TASK: &str = LABEL_TASK;
pub const ANNOTATION_OWNER: &str = LABEL_OWNER;
/// `sandbox.pids`, said on the pod. Kubernetes has no per-pod process limit in the pod spec: a
/// real node applies its kubelet's `podPidsLimit` to every pod and ignores this annotation; the
/// tests' fake kubelet reads it as that node limit (as Docker's `PidsLimit` of the container).
pub const ANNOTATION_PIDS: &str = "dev.threadsmith.pids-limit";

fn quantity(bytes: u64) -> Quantity {
    Quantity(bytes.to_string())
}

fn millicpus(cpus: f64) -> Quantity {
    Quantity(format!("{}m", (cpus * 1000.0).round().max(1.0) as u64))
}

fn memory_dir(name: &str, bytes: u64) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(quantity(bytes)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

/// Every security setting of a rollout pod's containers.
fn container_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(UID),
        run_as_group: Some(UID),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

fn keep_alive() -> Vec<String> {
    crate::sandbox::docker::INIT
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The seed's container: idle until the seed is streamed into it through exec, then idle for
/// the pod's life; a tenth of a CPU, and memory for the seed (`volume_bytes`) and its tar.
fn seed_container(image: &str, volume_bytes: u64) -> Container {
    let resources = std::collections::BTreeMap::from([
        ("cpu".to_string(), Quantity("100m".into())),
        (
            "memory".to_string(),
            quantity(volume_bytes.saturating_add(SEED_CONTAINER_MEMORY)),
        ),
    ]);
    Container {
        name: SEED_CONTAINER.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(keep_alive()),
        resources: Some(ResourceRequirements {
            limits: Some(resources.clone()),
            requests: Some(resources),
            ..Default::default()
        }),
        security_context: Some(container_security()),
        // The seed only: nothing the agent can write reaches this container.
        volume_mounts: Some(vec![mount("seed", SEED)]),
        ..Default::default()
    }
}

/// The pod of `spec`'s rollout, named `name`, owned by `owner` (`host:pid:start`). The seed
/// (`seed_bytes`, the archive's size) goes in a disk `emptyDir` of its size: it is read, not
/// written, and in memory it would take from the agent's share.
pub fn pod_spec(
    spec: &SandboxSpec,
    options: &KubernetesOptions,
    name: &str,
    owner: &str,
    seed_bytes: Option<u64>,
) -> Pod {
    let limits = &spec.limits;
    let mut labels = std::collections::BTreeMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_TASK.to_string(), label_value(&spec.task_id)),
        (LABEL_ROLLOUT.to_string(), spec.rollout.to_string()),
        (LABEL_OWNER.to_string(), encode_owner(owner)),
    ]);
    if spec.start_with_network {
        labels.insert(LABEL_NETWORK.to_string(), NETWORK_SETUP.to_string());
    }
    let annotations = std::collections::BTreeMap::from([
        (ANNOTATION_TASK.to_string(), spec.task_id.clone()),
        (ANNOTATION_OWNER.to_string(), owner.to_string()),
        (ANNOTATION_PIDS.to_string(), limits.pids.to_string()),
    ]);
    let resources = std::collections::BTreeMap::from([
        ("cpu".to_string(), millicpus(limits.cpus)),
        (
            "memory".to_string(),
            quantity(u64::try_from(limits.memory_bytes).unwrap_or(0)),
        ),
    ]);
    let mut volumes = vec![
        memory_dir("workspace", limits.workspace_bytes),
        memory_dir("tmp", limits.tmp_bytes),
    ];
    let mut mounts = vec![mount("workspace", WORKSPACE), mount("tmp", "/tmp")];
    let mut seeder = None;
    if let Some(bytes) = seed_bytes {
        let volume_bytes = bytes.saturating_add(SEED_SLACK);
        volumes.push(Volume {
            name: "seed".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(quantity(volume_bytes)),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            read_only: Some(true),
            ..mount("seed", SEED)
        });
        seeder = Some(seed_container(&spec.image, volume_bytes));
    }
    let container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(keep_alive()),
        working_dir: Some(WORKSPACE.into()),
        env: Some(
            crate::sandbox::docker::sandbox_env()
                .into_iter()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some(EnvVar {
                        name: k.into(),
                        value: Some(v.into()),
                        ..Default::default()
                    })
                })
                .collect(),
        ),
        resources: Some(ResourceRequirements {
            limits: Some(resources.clone()),
            requests: Some(resources),
            ..Default::default()
        }),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(options.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: std::iter::once(container).chain(seeder).collect(),
            restart_policy: Some("Never".into()),
            active_deadline_seconds: Some(spec.lifetime.as_secs().max(1) as i64),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            host_network: Some(false),
            host_pid: Some(false),
            host_ipc: Some(false),
            termination_grace_period_seconds: Some(5),
            service_account_name: options.service_account.clone(),
            runtime_class_name: options.runtime_class.clone(),
            node_selector: (!options.node_selector.is_empty())
                .then(|| options.node_selector.clone()),
            tolerations: (!options.tolerations.is_empty()).then(|| {
                options
                    .tolerations
                    .iter()
                    .map(|t| Toleration {
                        key: t.key.clone(),
                        operator: t.operator.clone(),
                        value: t.value.clone(),
                        effect: t.effect.clone(),
                        toleration_seconds: t.toleration_seconds,
                    })
                    .collect()
            }),
            image_pull_secrets: options
                .image_pull_secret
                .as_ref()
                .map(|s| vec![LocalObjectReference { name: s.clone() }]),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(UID),
                run_as_group: Some(UID),
                fs_group: Some(UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..Default::default()
            }),
            volumes: Some(volumes),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests;
