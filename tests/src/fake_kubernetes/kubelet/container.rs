//! A pod's container as Docker container settings: the kubelet's and the container runtime's
//! translation of command/args, env, workingDir, securityContext, resources and volumes.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions};
use serde_json::Value;

use threadsmith_runner::sandbox::kubernetes::ANNOTATION_PIDS;

use super::super::quantity;

/// Why a container cannot be created (`CreateContainerConfigError`'s message).
pub type ConfigError = String;

/// The effective value of a securityContext field: the container's, else the pod's.
fn sc<'a>(pod: &'a Value, c: &'a Value, field: &str) -> Option<&'a Value> {
    c.pointer(&format!("/securityContext/{field}"))
        .filter(|v| !v.is_null())
        .or_else(|| {
            pod.pointer(&format!("/spec/securityContext/{field}"))
                .filter(|v| !v.is_null())
        })
}

fn pod_ref(pod: &Value) -> String {
    let meta = &pod["metadata"];
    format!(
        "\"{}_{}({})\"",
        meta["name"].as_str().unwrap_or_default(),
        meta["namespace"].as_str().unwrap_or_default(),
        meta["uid"].as_str().unwrap_or_default()
    )
}

/// The Docker `User` and the check of `runAsNonRoot` against it (the image's user when the pod
/// sets none).
fn user(pod: &Value, c: &Value, image_user: &str) -> Result<Option<String>, ConfigError> {
    let uid = sc(pod, c, "runAsUser").and_then(Value::as_i64);
    let gid = sc(pod, c, "runAsGroup").and_then(Value::as_i64);
    let cname = c["name"].as_str().unwrap_or_default();
    if sc(pod, c, "runAsNonRoot").and_then(Value::as_bool) == Some(true) {
        match uid {
            Some(0) => {
                return Err(format!(
                    "container's runAsUser breaks non-root policy (pod: {}, container: {cname})",
                    pod_ref(pod)
                ));
            }
            Some(_) => {}
            None => {
                let name = image_user.split(':').next().unwrap_or_default();
                match name.parse::<i64>() {
                    Ok(0) => {
                        return Err(format!(
                            "container has runAsNonRoot and image will run as root (pod: {}, container: {cname})",
                            pod_ref(pod)
                        ));
                    }
                    Ok(_) => {}
                    Err(_) if name.is_empty() || name == "root" => {
                        return Err(format!(
                            "container has runAsNonRoot and image will run as root (pod: {}, container: {cname})",
                            pod_ref(pod)
                        ));
                    }
                    Err(_) => {
                        return Err(format!(
                            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root (pod: {}, container: {cname})",
                            pod_ref(pod)
                        ));
                    }
                }
            }
        }
    }
    Ok(match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        // runAsGroup without runAsUser: the image's user with that group.
        (None, Some(g)) => {
            let name = image_user
                .split(':')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("0");
            Some(format!("{name}:{g}"))
        }
        (None, None) => None,
    })
}

/// `env` with `value` and the `fieldRef`s the downward API offers; references to Secrets and
/// ConfigMaps fail as they do when the object does not exist (the fake stores none).
fn env(pod: &Value, c: &Value, pod_ip: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = vec![
        format!(
            "HOSTNAME={}",
            pod["metadata"]["name"].as_str().unwrap_or_default()
        ),
        "KUBERNETES_SERVICE_HOST=10.96.0.1".to_string(),
        "KUBERNETES_SERVICE_PORT=443".to_string(),
        "KUBERNETES_SERVICE_PORT_HTTPS=443".to_string(),
        "KUBERNETES_PORT=tcp://10.96.0.1:443".to_string(),
    ];
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default();
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            v.to_string()
        } else if let Some(path) = e
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            match path {
                "metadata.name" | "metadata.namespace" | "metadata.uid" => pod["metadata"]
                    [&path[9..]]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                "spec.nodeName" => super::super::hooks::NODE_NAME.to_string(),
                "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                "status.podIP" => pod_ip.to_string(),
                other => {
                    if let Some(key) = other
                        .strip_prefix("metadata.labels['")
                        .and_then(|k| k.strip_suffix("']"))
                    {
                        pod["metadata"]["labels"][key]
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    } else {
                        return Err(format!("unsupported fieldPath: {other}"));
                    }
                }
            }
        } else if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
            return Err(format!(
                "secret \"{}\" not found",
                r["name"].as_str().unwrap_or_default()
            ));
        } else if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
            return Err(format!(
                "configmap \"{}\" not found",
                r["name"].as_str().unwrap_or_default()
            ));
        } else {
            String::new()
        };
        out.push(format!("{name}={value}"));
    }
    Ok(out)
}

/// The size of an emptyDir's tmpfs: its `sizeLimit`, else the container's memory limit, else
/// 1 GiB.
pub fn empty_dir_size(vol: &Value, memory: Option<i64>) -> i64 {
    vol.pointer("/emptyDir/sizeLimit")
        .and_then(quantity::bytes)
        .or(memory)
        .unwrap_or(1 << 30)
}

/// The Docker volume that holds a pod's emptyDir (see `worker.rs`, which creates it).
pub fn volume_name(prefix: &str, volume: &str) -> String {
    format!("{prefix}-{volume}")
}

/// The mounts of the container's emptyDir volumes: each a Docker volume of its own on a tmpfs
/// (shared by the pod's containers, mode 1777 and not filled from the image, like an emptyDir).
fn mounts(pod: &Value, c: &Value, prefix: &str) -> Result<Vec<Mount>, ConfigError> {
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for m in c["volumeMounts"].as_array().into_iter().flatten() {
        let vname = m["name"].as_str().unwrap_or_default();
        let path = m["mountPath"].as_str().unwrap_or_default();
        let Some(vol) = volumes.iter().find(|v| v["name"] == vname) else {
            return Err(format!(
                "cannot find volume \"{vname}\" to mount into container \"{}\"",
                c["name"].as_str().unwrap_or_default()
            ));
        };
        if vol.get("emptyDir").is_none() {
            return Err(format!(
                "volume \"{vname}\": the fake kubelet mounts emptyDir volumes only"
            ));
        }
        out.push(Mount {
            target: Some(path.to_string()),
            source: Some(volume_name(prefix, vname)),
            typ: Some(MountType::VOLUME),
            read_only: m["readOnly"].as_bool(),
            volume_options: Some(MountVolumeOptions {
                no_copy: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    Ok(out)
}

/// The pod's process limit: the node's `podPidsLimit` (the kubelet's setting for every pod),
/// lowered by the pod's [`ANNOTATION_PIDS`] — the fake's stand-in for a node configured with
/// the runner's `sandbox.pids` (a real kubelet ignores the annotation). `None`: unlimited, as a
/// kubelet's default of -1.
fn pids_limit(pod: &Value, node: Option<i64>) -> Result<Option<i64>, ConfigError> {
    let annotated = match pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_PIDS))
        .and_then(Value::as_str)
    {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(format!(
                    "annotation {ANNOTATION_PIDS}: {v:?} is not a positive number of processes"
                ));
            }
        },
    };
    Ok(match (node.filter(|n| *n > 0), annotated) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Everything but the network: `network_mode` is set by the caller. `node_pids` is the node's
/// `podPidsLimit`.
pub fn build(
    pod: &Value,
    c: &Value,
    node_pids: Option<i64>,
    image_user: &str,
    pod_ip: &str,
    volume_prefix: &str,
    labels: HashMap<String, String>,
) -> Result<ContainerCreateBody, ConfigError> {
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
    };
    let memory = c
        .pointer("/resources/limits/memory")
        .and_then(quantity::bytes);
    let nano_cpus = c
        .pointer("/resources/limits/cpu")
        .and_then(quantity::nano_cpus);
    let mut security_opt = Vec::new();
    if sc(pod, c, "allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
        security_opt.push("no-new-privileges".to_string());
    }
    match sc(pod, c, "seccompProfile").and_then(|p| p["type"].as_str()) {
        // Docker's default profile is the runtime default.
        Some("RuntimeDefault") => {}
        Some("Localhost") => {
            return Err(
                "seccomp profile type Localhost is not supported by the fake kubelet".into(),
            );
        }
        // The kubelet runs containers unconfined unless asked (no --seccomp-default).
        _ => security_opt.push("seccomp=unconfined".into()),
    }
    let caps = c.pointer("/securityContext/capabilities");
    let cap_drop = caps.and_then(|c| strings(&c["drop"]));
    let cap_add = caps.and_then(|c| strings(&c["add"]));
    let mut group_add: Vec<String> = pod
        .pointer("/spec/securityContext/supplementalGroups")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_i64().map(|g| g.to_string()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(fs) = pod
        .pointer("/spec/securityContext/fsGroup")
        .and_then(Value::as_i64)
    {
        group_add.push(fs.to_string());
    }
    let host_config = HostConfig {
        memory,
        memory_swap: memory,
        nano_cpus,
        pids_limit: pids_limit(pod, node_pids)?,
        readonly_rootfs: sc(pod, c, "readOnlyRootFilesystem").and_then(Value::as_bool),
        privileged: c
            .pointer("/securityContext/privileged")
            .and_then(Value::as_bool),
        cap_drop,
        cap_add,
        security_opt: Some(security_opt),
        group_add: (!group_add.is_empty()).then_some(group_add),
        mounts: Some(mounts(pod, c, volume_prefix)?),
        init: Some(false),
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: c["image"].as_str().map(String::from),
        entrypoint: strings(&c["command"]),
        cmd: strings(&c["args"]).or_else(|| c.get("command").map(|_| Vec::new())),
        working_dir: c["workingDir"].as_str().map(String::from),
        env: Some(env(pod, c, pod_ip)?),
        user: user(pod, c, image_user)?,
        hostname: pod["metadata"]["name"]
            .as_str()
            .map(|n| n.chars().take(63).collect()),
        open_stdin: c["stdin"].as_bool(),
        stdin_once: c["stdinOnce"].as_bool(),
        tty: c["tty"].as_bool(),
        labels: Some(labels),
        host_config: Some(host_config),
        ..Default::default()
    })
}
