//! Pods of the fake Kubernetes API server as real Docker containers, driven by kube-rs: the
//! securityContext, limits and volumes really applied, NetworkPolicy enforcement, OOM kills,
//! the active deadline, image pull failures, logs, deletion and cleanup.

mod fake_kubernetes_common;

use fake_kubernetes_common::{
    KEEP_ALIVE, NS, cluster, containers_of, exec, running, sandbox_pod, wait_for,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, AttachParams, DeleteParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
use std::time::Duration;
use threadsmith_runner::sandbox::kubernetes::ANNOTATION_PIDS;
use threadsmith_tests::fake_kubernetes::{FakeKubernetes, LABEL_POD, Options};

#[tokio::test]
async fn security_context_limits_and_volumes_are_applied() {
    let (server, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &sandbox_pod(
            "sec",
            json!({"dev.threadsmith.managed": "true"}),
            KEEP_ALIVE,
            "256Mi",
        ),
    )
    .await
    .expect("create");
    let pod = running(&pods, "sec").await;
    let status = pod.status.expect("status");
    // Limits alone: the requests default to them.
    assert_eq!(status.qos_class.as_deref(), Some("Guaranteed"));
    assert!(status.pod_ip.is_some() && status.start_time.is_some());
    let conditions: Vec<(String, String)> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert!(
            conditions.contains(&(kind.to_string(), "True".to_string())),
            "{kind}: {conditions:?}"
        );
    }

    let id = exec(&pods, "sec", &["id", "-u"], None).await;
    assert_eq!(id.stdout, "1000\n");
    assert_eq!(id.status.status.as_deref(), Some("Success"));
    let root = exec(&pods, "sec", &["touch", "/x"], None).await;
    assert!(
        root.stderr.contains("Read-only file system"),
        "{}",
        root.stderr
    );
    let caps = exec(
        &pods,
        "sec",
        &[
            "grep",
            "-E",
            "^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):",
            "/proc/self/status",
        ],
        None,
    )
    .await;
    assert!(
        caps.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        caps.stdout
    );
    assert!(
        caps.stdout.contains("CapBnd:\t0000000000000000"),
        "{}",
        caps.stdout
    );
    assert!(caps.stdout.contains("NoNewPrivs:\t1"), "{}", caps.stdout);
    assert!(
        caps.stdout.contains("Seccomp:\t2"),
        "RuntimeDefault is a filter: {}",
        caps.stdout
    );
    let df = exec(&pods, "sec", &["sh", "-c", "df -k /workspace /tmp | tail -n 2; echo $GREETING; pwd; touch /workspace/f /tmp/f && echo writable"], None).await;
    let lines: Vec<&str> = df.stdout.lines().collect();
    assert!(
        lines[0].starts_with("tmpfs") && lines[0].split_whitespace().nth(1) == Some("65536"),
        "{}",
        df.stdout
    );
    assert!(
        lines[1].starts_with("tmpfs") && lines[1].split_whitespace().nth(1) == Some("16384"),
        "{}",
        df.stdout
    );
    assert_eq!(&lines[2..], ["hi", "/workspace", "writable"]);
    let sa = exec(
        &pods,
        "sec",
        &[
            "sh",
            "-c",
            "test -e /var/run/secrets/kubernetes.io && echo mounted || echo none",
        ],
        None,
    )
    .await;
    assert_eq!(sa.stdout, "none\n");

    // The container: limits from the quantities, and the fake's labels only.
    let found = containers_of(server.instance().expect("a kubelet")).await;
    assert_eq!(found.len(), 1);
    let docker = bollard::Docker::connect_with_defaults().expect("docker");
    let info = docker
        .inspect_container(
            found[0].id.as_deref().expect("id"),
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .expect("inspect");
    let hc = info.host_config.expect("host config");
    assert_eq!(hc.memory, Some(256 * 1024 * 1024));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    assert!(
        !labels
            .keys()
            .any(|k| k.starts_with("dev.threadsmith.managed")),
        "{labels:?}"
    );
}

#[tokio::test]
async fn deny_all_policy_takes_the_pod_off_the_network_and_follows_labels() {
    let (server, pods) = cluster().await;
    // Something on the node to reach: a listener on the bridge's gateway.
    let gateway = server.node_ip().expect("a kubelet").to_string();
    let gateway = gateway.as_str();
    let listener = tokio::net::TcpListener::bind((gateway, 0))
        .await
        .expect("listen on the bridge gateway");
    let port = listener.local_addr().expect("addr").port();
    let accepting = tokio::spawn(async move {
        loop {
            if listener.accept().await.is_err() {
                return;
            }
        }
    });
    let policies: Api<NetworkPolicy> = Api::default_namespaced(server.client(NS).expect("client"));
    let deny: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "rollouts-deny-all"},
        "spec": {"podSelector": {"matchLabels": {"dev.threadsmith.managed": "true"},
                                 "matchExpressions": [{"key": "dev.threadsmith.network", "operator": "DoesNotExist"}]},
                 "policyTypes": ["Ingress", "Egress"]},
    }))
    .expect("policy");
    policies
        .create(&PostParams::default(), &deny)
        .await
        .expect("policy");
    pods.create(
        &PostParams::default(),
        &sandbox_pod(
            "closed",
            json!({"dev.threadsmith.managed": "true"}),
            KEEP_ALIVE,
            "128Mi",
        ),
    )
    .await
    .expect("create");
    pods.create(
        &PostParams::default(),
        &sandbox_pod(
            "open",
            json!({"dev.threadsmith.managed": "true", "dev.threadsmith.network": "setup"}),
            KEEP_ALIVE,
            "128Mi",
        ),
    )
    .await
    .expect("create");
    running(&pods, "closed").await;
    running(&pods, "open").await;
    let probe = format!(
        "timeout 5 bash -c 'exec 3<>/dev/tcp/{gateway}/{port}' && echo reached || echo unreachable"
    );
    let reach = |name: &'static str| {
        let pods = pods.clone();
        let probe = probe.clone();
        async move { exec(&pods, name, &["sh", "-c", &probe], None).await.stdout }
    };
    assert_eq!(reach("closed").await, "unreachable\n");
    assert_eq!(reach("open").await, "reached\n");
    // The setup phase ends: the label goes, the policy selects the pod, its network goes.
    pods.patch(
        "open",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"dev.threadsmith.network": null}}})),
    )
    .await
    .expect("patch");
    assert_eq!(reach("open").await, "unreachable\n");
    // Deleting the policy gives the network back.
    policies
        .delete("rollouts-deny-all", &DeleteParams::default())
        .await
        .expect("delete policy");
    assert_eq!(reach("closed").await, "reached\n");
    accepting.abort();
}

#[tokio::test]
async fn memory_limit_kills_with_oomkilled_and_deadline_fails_the_pod() {
    let (_server, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &sandbox_pod(
            "oom",
            json!({}),
            "head -c 300m /dev/zero | tail > /dev/null",
            "32Mi",
        ),
    )
    .await
    .expect("create");
    let mut late = sandbox_pod("late", json!({}), KEEP_ALIVE, "64Mi");
    late.spec.as_mut().expect("spec").active_deadline_seconds = Some(2);
    pods.create(&PostParams::default(), &late)
        .await
        .expect("create");

    let oom = wait_for(&pods, "oom", "Failed", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
    })
    .await;
    let cs = &oom
        .status
        .expect("status")
        .container_statuses
        .expect("container statuses")[0];
    let term = cs
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(
        (term.reason.as_deref(), term.exit_code),
        (Some("OOMKilled"), 137)
    );

    let late = wait_for(&pods, "late", "Failed", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
    })
    .await;
    let status = late.status.expect("status");
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    let err = pods
        .exec("late", ["true"], &AttachParams::default())
        .await
        .map(|_| ())
        .expect_err("no exec in a finished pod");
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn completed_pods_logs_deletion_and_cleanup() {
    let (server, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &sandbox_pod("done", json!({}), "echo hello from the pod; exit 0", "64Mi"),
    )
    .await
    .expect("create");
    let done = wait_for(&pods, "done", "Succeeded", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
    })
    .await;
    let term = done
        .status
        .expect("status")
        .container_statuses
        .expect("statuses")[0]
        .state
        .clone()
        .expect("state")
        .terminated
        .expect("terminated");
    assert_eq!(
        (term.reason.as_deref(), term.exit_code),
        (Some("Completed"), 0)
    );
    assert_eq!(
        pods.logs("done", &LogParams::default())
            .await
            .expect("logs"),
        "hello from the pod\n"
    );

    pods.create(
        &PostParams::default(),
        &sandbox_pod("live", json!({}), KEEP_ALIVE, "64Mi"),
    )
    .await
    .expect("create");
    let live = running(&pods, "live").await;
    let instance = server.instance().expect("kubelet").to_string();
    assert_eq!(containers_of(&instance).await.len(), 2);
    let marked = pods
        .delete("live", &DeleteParams::default().grace_period(1))
        .await
        .expect("delete");
    let marked = marked.left().expect("the pod");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let uid = live.metadata.uid.expect("uid");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods.clone(), "live", conditions::is_deleted(&uid)),
    )
    .await
    .expect("deleted in time")
    .expect("watch");
    assert_eq!(
        containers_of(&instance).await.len(),
        1,
        "the deleted pod's container is gone"
    );

    server.shutdown().await;
    assert!(
        containers_of(&instance).await.is_empty(),
        "shutdown removes every container"
    );
}

#[tokio::test]
async fn pods_that_cannot_start_say_why() {
    let (_server, pods) = cluster().await;
    let mut missing = sandbox_pod("missing", json!({}), KEEP_ALIVE, "64Mi");
    missing.spec.as_mut().expect("spec").containers[0].image =
        Some("threadsmith-no-such-image:1".into());
    pods.create(&PostParams::default(), &missing)
        .await
        .expect("create");
    let mut always = sandbox_pod("always", json!({}), KEEP_ALIVE, "64Mi");
    always.spec.as_mut().expect("spec").containers[0].image_pull_policy = None;
    pods.create(&PostParams::default(), &always)
        .await
        .expect("create");
    let mut root = sandbox_pod("root", json!({}), KEEP_ALIVE, "64Mi");
    root.spec
        .as_mut()
        .expect("spec")
        .security_context
        .as_mut()
        .expect("sc")
        .run_as_user = Some(0);
    pods.create(&PostParams::default(), &root)
        .await
        .expect("create");

    let waiting = |want: &'static str| {
        move |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c[0].state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some(want)
        }
    };
    wait_for(
        &pods,
        "missing",
        "ImagePullBackOff",
        waiting("ImagePullBackOff"),
    )
    .await;
    wait_for(
        &pods,
        "always",
        "ImagePullBackOff (no registry to pull from)",
        waiting("ImagePullBackOff"),
    )
    .await;
    let root = wait_for(
        &pods,
        "root",
        "CreateContainerConfigError",
        waiting("CreateContainerConfigError"),
    )
    .await;
    assert_eq!(
        root.status.expect("status").phase.as_deref(),
        Some("Pending")
    );
}

/// The node's `podPidsLimit` bounds every pod's processes; the runner's pids annotation lowers
/// it for its pod (the fake's stand-in for a node configured with `sandbox.pids`); a value that
/// is not a positive number is refused as the pod's config.
#[tokio::test]
async fn the_process_limit_is_the_nodes_lowered_by_the_pods_annotation() {
    threadsmith_tests::ensure_image().await;
    let server = FakeKubernetes::start_with(Options {
        pod_pids_limit: Some(300),
        ..Options::default()
    })
    .await
    .expect("start the fake with a kubelet");
    let pods: Api<Pod> = Api::default_namespaced(server.client(NS).expect("client"));
    let annotated = |name: &str, pids: Option<&str>| {
        let mut pod = sandbox_pod(name, json!({}), KEEP_ALIVE, "128Mi");
        if let Some(p) = pids {
            pod.metadata.annotations = Some([(ANNOTATION_PIDS.to_string(), p.to_string())].into());
        }
        pod
    };
    for (name, pids) in [
        ("low", Some("64")),
        ("high", Some("1000")),
        ("node", None),
        ("bad", Some("lots")),
    ] {
        pods.create(&PostParams::default(), &annotated(name, pids))
            .await
            .expect("create");
    }
    let docker = bollard::Docker::connect_with_defaults().expect("docker");
    for (name, want) in [("low", 64), ("high", 300), ("node", 300)] {
        running(&pods, name).await;
        let found: Vec<_> = containers_of(server.instance().expect("a kubelet"))
            .await
            .into_iter()
            .filter(|c| {
                c.labels.as_ref().and_then(|l| l.get(LABEL_POD))
                    == Some(&format!("{NS}/{name}/sandbox"))
            })
            .collect();
        assert_eq!(found.len(), 1, "{name}");
        let info = docker
            .inspect_container(
                found[0].id.as_deref().expect("id"),
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .expect("inspect");
        assert_eq!(
            info.host_config.expect("host config").pids_limit,
            Some(want),
            "{name}"
        );
    }
    // Applied by the kernel (cgroup v2, else v1's pids controller).
    let pids_max = exec(
        &pods,
        "low",
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        ],
        None,
    )
    .await;
    assert_eq!(pids_max.stdout.trim(), "64", "{}", pids_max.stderr);
    let bad = wait_for(&pods, "bad", "CreateContainerConfigError", |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c[0].state.as_ref()?.waiting.as_ref())
            .is_some_and(|w| {
                w.reason.as_deref() == Some("CreateContainerConfigError")
                    && w.message
                        .as_deref()
                        .is_some_and(|m| m.contains(ANNOTATION_PIDS))
            })
    })
    .await;
    assert_eq!(
        bad.status.expect("status").phase.as_deref(),
        Some("Pending")
    );
}
