//! The sandbox settings, as Docker itself reports them for a live rollout container.

use std::sync::Arc;

use bollard::query_parameters::InspectContainerOptions;
use serde_json::json;
use threadsmith_bot::pipeline::{self, NoProgress};
use threadsmith_runner::sandbox::{LABEL_MANAGED, LABEL_TASK};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{MODEL_KEY, Turn, env, request};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn docker_inspect_shows_every_sandbox_setting() {
    let env = env(|c| {
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

    // This test's database holds this one task; its containers carry its id.
    let task_id = env.svc.store.recent_tasks(1).await.unwrap()[0].id.clone();
    let docker = &env.docker;
    let mine: Vec<_> = docker
        .list_managed()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.task.as_deref() == Some(task_id.as_str()))
        .collect();
    assert_eq!(mine.len(), 1, "exactly one rollout container: {mine:?}");
    let info = docker
        .client()
        .inspect_container(&mine[0].id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(info.state.as_ref().and_then(|s| s.running), Some(true));
    let labels = info
        .config
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap_or_default();
    assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
    assert_eq!(labels.get(LABEL_TASK), Some(&task_id));
    let host = info.host_config.as_ref().unwrap();
    let config = info.config.as_ref().unwrap();

    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert_eq!(
        host.security_opt.as_deref(),
        Some(&["no-new-privileges".to_string()][..])
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
    let tmpfs = host.tmpfs.as_ref().unwrap();
    assert!(tmpfs["/tmp"].contains("size="), "{tmpfs:?}");
    assert!(!tmpfs["/tmp"].contains("exec,"), "{tmpfs:?}");
    // The workspace: a tmpfs of the container, size-limited, writable, no setuid or devices.
    let workspace = &tmpfs["/workspace"];
    let opts: Vec<&str> = workspace.split(',').collect();
    assert!(opts.contains(&"size=134217728"), "{workspace}");
    for flag in ["rw", "nosuid", "nodev", "uid=1000"] {
        assert!(opts.contains(&flag), "{flag} missing: {workspace}");
    }
    let mounts = info.mounts.as_ref().unwrap();
    let seed = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/seed"))
        .unwrap();
    assert_eq!(seed.rw, Some(false), "the seed is read-only");
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

    gate.notify_one();
    let report = task.await.unwrap().unwrap();
    assert_eq!(report.rollouts[0].detail.as_deref(), Some("inspected"));
    env.assert_nothing_left(&report.task.id).await;
}
