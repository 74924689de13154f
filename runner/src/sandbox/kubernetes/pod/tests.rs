use std::time::Duration;

use super::*;
use crate::sandbox::Limits;
use crate::sandbox::kubernetes::Toleration as ConfigToleration;
use crate::sandbox::kubernetes::owners::is_label_value;

fn spec(start_with_network: bool) -> SandboxSpec {
    SandboxSpec {
        image: "registry.example/threadsmith-rollout:1".into(),
        limits: Limits::default(),
        task_id: "0b5e3c1e-58a4-4d0c-9d55-3f1f0fbd6a2e".into(),
        rollout: 3,
        seed_volume: Some("seed-0b5e3c1e-abc123".into()),
        start_with_network,
        lifetime: Duration::from_secs(2 * 3600 + 60),
    }
}

fn options() -> KubernetesOptions {
    KubernetesOptions {
        namespace: "threadsmith-rollouts".into(),
        runtime_class: Some("gvisor".into()),
        node_selector: [("threadsmith.dev/rollouts".to_string(), "true".to_string())].into(),
        tolerations: vec![ConfigToleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("rollouts".into()),
            effect: Some("NoSchedule".into()),
            toleration_seconds: None,
        }],
        image_pull_secret: Some("registry-credentials".into()),
        ..KubernetesOptions::default()
    }
}

const OWNER: &str = "threadsmith-bot-7d9f8b6c5-xk2lp:1:4242";

/// Every security field of a rollout pod, for a reviewer to see at once.
#[test]
fn the_pod_spec_shows_every_security_field() {
    let pod = pod_spec(
        &spec(false),
        &options(),
        "threadsmith-0b5e3c1e-3-a1b2c3",
        OWNER,
        Some(10 << 20),
    );
    insta::assert_json_snapshot!(pod);
}

#[test]
fn a_setup_phase_with_network_is_labelled_apart_and_the_minimal_pod_has_no_extras() {
    let pod = pod_spec(
        &spec(true),
        &KubernetesOptions::default(),
        "threadsmith-x-1-a1b2c3",
        OWNER,
        None,
    );
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(LABEL_NETWORK).map(String::as_str),
        Some(NETWORK_SETUP)
    );
    for v in labels.values() {
        assert!(is_label_value(v), "{v}");
    }
    let spec = pod.spec.unwrap();
    assert_eq!(spec.service_account_name, None);
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.runtime_class_name, None);
    assert_eq!(spec.node_selector, None);
    assert_eq!(spec.tolerations, None);
    assert_eq!(spec.image_pull_secrets, None);
    let volumes: Vec<_> = spec.volumes.unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(volumes, ["workspace", "tmp"], "no seed, no seed volume");
}

#[test]
fn limits_follow_the_sandbox_settings() {
    let mut s = spec(false);
    s.limits = Limits {
        memory_bytes: 3 << 30,
        cpus: 1.5,
        pids: 256,
        workspace_bytes: 2 << 30,
        tmp_bytes: 128 << 20,
    };
    s.lifetime = Duration::from_millis(10);
    let pod = pod_spec(&s, &options(), "p", OWNER, None);
    // The process limit is said, not set: the node's podPidsLimit applies.
    assert_eq!(
        pod.metadata.annotations.unwrap()[ANNOTATION_PIDS],
        "256",
        "sandbox.pids in its annotation"
    );
    let spec = pod.spec.unwrap();
    assert_eq!(spec.active_deadline_seconds, Some(1), "never zero");
    let limits = spec.containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.limits.clone())
        .unwrap();
    assert_eq!(limits["cpu"].0, "1500m");
    assert_eq!(limits["memory"].0, (3u64 << 30).to_string());
    let sizes: Vec<_> = spec
        .volumes
        .unwrap()
        .into_iter()
        .map(|v| v.empty_dir.unwrap().size_limit.unwrap().0)
        .collect();
    assert_eq!(
        sizes,
        [(2u64 << 30).to_string(), (128u64 << 20).to_string()]
    );
}
