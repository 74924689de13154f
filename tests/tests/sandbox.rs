//! The sandbox settings, as Docker itself reports them for a live rollout container — on the
//! Kubernetes backend, for the container the fake kubelet made of the rollout's pod (and the pod
//! as the API server stores it). The suite runs on both backends.

use std::sync::Arc;

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use threadsmith_bot::pipeline::{self, NoProgress};
use threadsmith_runner::sandbox::kubernetes::ANNOTATION_PIDS;
use threadsmith_runner::sandbox::{LABEL_MANAGED, LABEL_TASK};
use threadsmith_tests::fake_kubernetes::{LABEL_INSTANCE, LABEL_POD};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{Backend, MODEL_KEY, TEST_NAMESPACE, TestEnv, Turn, env_on, request};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn docker_inspect_shows_every_sandbox_setting() {
    every_sandbox_setting(Backend::Docker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_inspect_shows_every_sandbox_setting_on_kubernetes() {
    every_sandbox_setting(Backend::Kubernetes).await;
}

/// The task's one rollout: its Docker container, inspected, and on Kubernetes its pod.
async fn inspect_rollout(env: &TestEnv, task_id: &str) -> (ContainerInspectResponse, Option<Pod>) {
    let docker = &env.docker;
    let (id, pod) = match (&env.kubernetes, &env.fake_kubernetes) {
        (None, _) => {
            let mine: Vec<_> = docker
                .list_managed()
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.task.as_deref() == Some(task_id))
                .collect();
            assert_eq!(mine.len(), 1, "exactly one rollout container: {mine:?}");
            (mine[0].id.clone(), None)
        }
        (Some(cluster), Some(fake)) => {
            let mine: Vec<Pod> = cluster
                .list_managed()
                .await
                .unwrap()
                .into_iter()
                .filter(|p| {
                    p.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(LABEL_TASK))
                        .map(String::as_str)
                        == Some(task_id)
                })
                .collect();
            assert_eq!(mine.len(), 1, "exactly one rollout pod");
            let name = mine[0].metadata.name.clone().unwrap();
            let filters = std::collections::HashMap::from([(
                "label".to_string(),
                vec![
                    format!("{LABEL_INSTANCE}={}", fake.instance().unwrap()),
                    format!("{LABEL_POD}={TEST_NAMESPACE}/{name}/sandbox"),
                ],
            )]);
            let containers = docker
                .client()
                .list_containers(Some(
                    ListContainersOptionsBuilder::default()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .unwrap();
            assert_eq!(
                containers.len(),
                1,
                "the pod's one container: {containers:?}"
            );
            (containers[0].id.clone().unwrap(), mine.into_iter().next())
        }
        (Some(_), None) => unreachable!("the suite runs on Docker and on the fake cluster"),
    };
    let info = docker
        .client()
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    (info, pod)
}

async fn every_sandbox_setting(backend: Backend) {
    let env = env_on(backend, |c| {
        c.sandbox.memory = Some("384m".into());
        c.sandbox.workspace_size = Some("128m".into());
        c.sandbox.tmp_size = Some("128m".into());
        c.sandbox.cpus = Some(0.5);
        c.sandbox.pids = Some(200);
    })
    .await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    // The model holds its first answer until the test has looked at the container.
    let gate = Arc::new(Notify::new());
    env.model.script(
        1,
        vec![Turn::Gated(
            gate.clone(),
            Box::new(Turn::Call("give_up", json!({"reason": "inspected"}))),
        )],
    );
    let svc = env.svc.clone();
    let task = tokio::spawn(async move {
        pipeline::run_task(
            &svc,
            request(&repo, 1, "Look at me"),
            &NoProgress,
            CancellationToken::new(),
        )
        .await
    });
    // The first model request is made from inside a running rollout.
    env.model.wait_for_requests(1).await;

    // This test's database holds this one task; its containers (pods) carry its id.
    let task_id = env.svc.store.recent_tasks(1).await.unwrap()[0].id.clone();
    let (info, pod) = inspect_rollout(&env, &task_id).await;
    assert_eq!(info.state.as_ref().and_then(|s| s.running), Some(true));
    let host = info.host_config.as_ref().unwrap();
    let config = info.config.as_ref().unwrap();

    // What both backends give the sandbox's container.
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert_eq!(
        host.security_opt.as_deref(),
        Some(&["no-new-privileges".to_string()][..]),
        "no-new-privileges and the runtime's default seccomp profile"
    );
    assert_eq!(host.memory, Some(384 << 20));
    assert_eq!(
        host.memory_swap,
        Some(384 << 20),
        "no swap beyond the memory limit"
    );
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.pids_limit, Some(200));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(config.user.as_deref(), Some("1000:1000"));
    let networks = info
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default();
    assert!(
        networks.keys().all(|k| k == "none"),
        "attached to {:?}",
        networks.keys()
    );
    let env_vars = config.env.clone().unwrap_or_default();
    assert!(
        env_vars.iter().all(|v| !v.contains(MODEL_KEY)
            && !v.to_ascii_uppercase().contains("TOKEN")
            && !v.to_ascii_uppercase().contains("KEY")
            && !v.to_ascii_uppercase().contains("SECRET")),
        "{env_vars:?}"
    );
    let mounts = info.mounts.clone().unwrap_or_default();
    let seed = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/seed"))
        .unwrap();
    assert_eq!(seed.rw, Some(false), "the seed is read-only: {seed:?}");

    match pod {
        None => {
            let labels = config.labels.clone().unwrap_or_default();
            assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
            assert_eq!(labels.get(LABEL_TASK), Some(&task_id));
            assert_eq!(host.network_mode.as_deref(), Some("none"));
            let tmpfs = host.tmpfs.as_ref().unwrap();
            assert!(tmpfs["/tmp"].contains("size="), "{tmpfs:?}");
            assert!(!tmpfs["/tmp"].contains("exec,"), "{tmpfs:?}");
            // The workspace: a tmpfs of the container, size-limited, writable, no setuid or
            // devices.
            let workspace = &tmpfs["/workspace"];
            let opts: Vec<&str> = workspace.split(',').collect();
            assert!(opts.contains(&"size=134217728"), "{workspace}");
            for flag in ["rw", "nosuid", "nodev", "uid=1000"] {
                assert!(opts.contains(&flag), "{flag} missing: {workspace}");
            }
        }
        Some(pod) => {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
            let annotations = pod.metadata.annotations.clone().unwrap_or_default();
            assert_eq!(annotations.get(LABEL_TASK), Some(&task_id));
            assert_eq!(
                annotations.get(ANNOTATION_PIDS).map(String::as_str),
                Some("200")
            );
            let spec = pod.spec.as_ref().unwrap();
            assert_eq!(spec.automount_service_account_token, Some(false));
            assert!(spec.active_deadline_seconds.is_some_and(|s| s > 0));
            // /workspace and /tmp: emptyDirs in memory, each a tmpfs of its size limit.
            for (path, vname) in [("/workspace", "workspace"), ("/tmp", "tmp")] {
                let m = mounts
                    .iter()
                    .find(|m| m.destination.as_deref() == Some(path))
                    .unwrap_or_else(|| panic!("{path} is not mounted: {mounts:?}"));
                assert_eq!(m.rw, Some(true), "{m:?}");
                let volume = env
                    .docker
                    .client()
                    .inspect_volume(m.name.as_deref().unwrap())
                    .await
                    .unwrap();
                let o = volume.options.get("o").cloned().unwrap_or_default();
                let opts: Vec<&str> = o.split(',').collect();
                assert_eq!(
                    volume.options.get("type").map(String::as_str),
                    Some("tmpfs")
                );
                for flag in ["size=134217728", "nosuid", "nodev"] {
                    assert!(opts.contains(&flag), "{vname}: {flag} missing: {o}");
                }
            }
            // The seed is streamed into the pod's seed container, the only one that mounts its
            // volume writable.
            let containers: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(containers, ["sandbox", "seed"]);
        }
    }

    gate.notify_one();
    let report = task.await.unwrap().unwrap();
    assert_eq!(report.rollouts[0].detail.as_deref(), Some("inspected"));
    env.assert_nothing_left(&report.task.id).await;
}
