//! What the fake Kubernetes tests share: pods to create, a server with or without a node,
//! waiting for a pod, exec through kube-rs.

#![allow(dead_code)] // each test file uses some of these

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};
use threadsmith_tests::fake_kubernetes::{FakeKubernetes, LABEL_INSTANCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const NS: &str = "threadsmith";

pub fn pod(name: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "threadsmith-rollout:latest"}], "restartPolicy": "Never"},
    }))
    .expect("a valid pod")
}

pub async fn server() -> (FakeKubernetes, Api<Pod>) {
    let server = FakeKubernetes::start_api_only()
        .await
        .expect("start the fake");
    let client = server.client(NS).expect("client");
    (server, Api::default_namespaced(client))
}

pub fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub const IMAGE: &str = "threadsmith-rollout:latest";

pub const KEEP_ALIVE: &str = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";

/// A rollout-like pod: every security field the Kubernetes backend sets.
pub fn sandbox_pod(name: &str, labels: Value, command: &str, memory: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "sandbox",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", command],
                "workingDir": "/workspace",
                "env": [{"name": "GREETING", "value": "hi"}],
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"limits": {"cpu": "500m", "memory": memory}},
                "volumeMounts": [{"name": "workspace", "mountPath": "/workspace"}, {"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [
                {"name": "workspace", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
            ],
        },
    }))
    .expect("a valid pod")
}

pub async fn cluster() -> (FakeKubernetes, Api<Pod>) {
    threadsmith_tests::ensure_image().await;
    let server = FakeKubernetes::start()
        .await
        .expect("start the fake with a kubelet");
    let pods = Api::default_namespaced(server.client(NS).expect("client"));
    (server, pods)
}

pub async fn wait_for(pods: &Api<Pod>, name: &str, what: &str, cond: impl Fn(&Pod) -> bool) -> Pod {
    let found = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), name, move |p: Option<&Pod>| {
            p.is_some_and(&cond)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{name}: {what} in time"))
    .expect("watch");
    found.expect("the pod exists")
}

pub async fn running(pods: &Api<Pod>, name: &str) -> Pod {
    let p = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), name, conditions::is_pod_running()),
    )
    .await
    .expect("running in time")
    .expect("watch");
    p.expect("the pod exists")
}

pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
}

pub async fn exec(pods: &Api<Pod>, name: &str, argv: &[&str], stdin: Option<&str>) -> Output {
    tokio::time::timeout(Duration::from_secs(60), exec_inner(pods, name, argv, stdin))
        .await
        .unwrap_or_else(|_| panic!("exec {argv:?} in {name} ends in time"))
}

pub async fn exec_inner(pods: &Api<Pod>, name: &str, argv: &[&str], stdin: Option<&str>) -> Output {
    let params = AttachParams::default()
        .stdin(stdin.is_some())
        .stdout(true)
        .stderr(true);
    let mut proc = pods
        .exec(name, argv.iter().copied(), &params)
        .await
        .expect("exec starts");
    if let Some(input) = stdin {
        let mut w = proc.stdin().expect("stdin");
        w.write_all(input.as_bytes()).await.expect("write stdin");
        // kube 5's stdin is one half of a split simplex pipe: dropping it is no EOF, a
        // shutdown is (and becomes v5's close of channel 0).
        w.shutdown().await.expect("close stdin");
    }
    let mut out = proc.stdout().expect("stdout");
    let mut err = proc.stderr().expect("stderr");
    let status = proc.take_status().expect("status");
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let (r1, r2) = tokio::join!(
        out.read_to_string(&mut stdout),
        err.read_to_string(&mut stderr)
    );
    r1.expect("read stdout");
    r2.expect("read stderr");
    let status = status.await.expect("a final status");
    proc.join().await.expect("exec ends cleanly");
    Output {
        stdout,
        stderr,
        status,
    }
}

pub async fn containers_of(server_instance: &str) -> Vec<bollard::models::ContainerSummary> {
    let docker = bollard::Docker::connect_with_defaults().expect("docker");
    let filter = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_INSTANCE}={server_instance}")],
    )]);
    docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .expect("list containers")
}
