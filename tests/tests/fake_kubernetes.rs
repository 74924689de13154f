//! The fake Kubernetes API server's objects, driven by kube-rs: CRUD, optimistic
//! concurrency, validation, selectors, pagination, NetworkPolicies and namespaces. These run
//! without a node (pods stay Pending); watches and exact error bodies are in
//! `fake_kubernetes_watch.rs`, pods on Docker in `fake_kubernetes_pods.rs` and `_exec.rs`.

mod fake_kubernetes_common;

use fake_kubernetes_common::{NS, api_error, pod, server};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn pods_crud_with_server_owned_metadata_and_defaults() {
    let (_server, pods) = server().await;
    let created = pods
        .create(&PostParams::default(), &pod("p1", json!({"app": "a"})))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some(NS));
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "{meta:?}"
    );
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv1: u64 = meta
        .resource_version
        .as_deref()
        .expect("rv")
        .parse()
        .expect("numeric rv");
    let spec = created.spec.as_ref().expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("Always"),
        ":latest defaults to Always"
    );
    let status = created.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));

    let got = pods.get("p1").await.expect("get");
    assert_eq!(got.metadata.uid, created.metadata.uid);

    let err = api_error(
        pods.create(&PostParams::default(), &pod("p1", json!({})))
            .await
            .expect_err("duplicate"),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    // Labels change through a merge patch and a strategic merge patch; the resourceVersion
    // moves on, the generation does not (no spec change).
    let patched = pods
        .patch(
            "p1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": null, "phase": "agent"}}})),
        )
        .await
        .expect("merge patch");
    let labels = patched.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("phase").map(String::as_str), Some("agent"));
    assert!(!labels.contains_key("app"));
    let rv2: u64 = patched
        .metadata
        .resource_version
        .as_deref()
        .expect("rv")
        .parse()
        .expect("rv");
    assert!(rv2 > rv1);
    assert_eq!(patched.metadata.generation, Some(1));
    let patched = pods
        .patch(
            "p1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("strategic patch");
    assert_eq!(patched.metadata.labels.unwrap_or_default().len(), 2);

    let list = pods.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());

    // Without a node the pod was never scheduled: deletion is immediate.
    let deleted = pods
        .delete("p1", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deleted.is_left(), "pods answer a delete with the object");
    let err = api_error(pods.get("p1").await.expect_err("gone"));
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "pods \"p1\" not found");
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict_and_spec_is_immutable() {
    let (_server, pods) = server().await;
    let first = pods
        .create(&PostParams::default(), &pod("p", json!({})))
        .await
        .expect("create");
    let mut a = first.clone();
    a.metadata.labels = Some([("k".to_string(), "1".to_string())].into());
    pods.replace("p", &PostParams::default(), &a)
        .await
        .expect("first replace");
    let mut b = first.clone();
    b.metadata.labels = Some([("k".to_string(), "2".to_string())].into());
    let err = api_error(
        pods.replace("p", &PostParams::default(), &b)
            .await
            .expect_err("stale"),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );

    // A merge patch carrying a stale resourceVersion is refused too.
    let stale = first.metadata.resource_version.clone().expect("rv");
    let err = api_error(
        pods.patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale, "labels": {"k": "3"}}})),
        )
        .await
        .expect_err("stale patch"),
    );
    assert_eq!(err.code, 409);

    let err = api_error(
        pods.patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restartPolicy": "Always"}})),
        )
        .await
        .expect_err("spec is immutable"),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.starts_with(
            "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields"
        ),
        "{}",
        err.message
    );
    // What may change does.
    let ok = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"activeDeadlineSeconds": 60}})),
        )
        .await
        .expect("activeDeadlineSeconds may change");
    assert_eq!(ok.spec.expect("spec").active_deadline_seconds, Some(60));
    assert_eq!(
        ok.metadata.generation,
        Some(2),
        "a spec change moves the generation"
    );
}

#[tokio::test]
async fn invalid_objects_are_refused_with_their_causes() {
    let (_server, pods) = server().await;
    let err = api_error(
        pods.create(&PostParams::default(), &pod("Bad_Name", json!({})))
            .await
            .expect_err("bad name"),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let details = err.details.expect("details");
    assert_eq!(details.kind, "Pod");
    assert_eq!(details.causes[0].field, "metadata.name");
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");

    let bad: Pod = serde_json::from_value(json!({"metadata": {"name": "x", "labels": {"bad key!": "v"}}, "spec": {"containers": [{"name": "c"}]}}))
        .expect("pod");
    let err = api_error(
        pods.create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid"),
    );
    let fields: Vec<String> = err
        .details
        .expect("details")
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, ["metadata.labels", "spec.containers[0].image"]);
    assert!(
        err.message.starts_with("Pod \"x\" is invalid: ["),
        "{}",
        err.message
    );

    let none: Pod =
        serde_json::from_value(json!({"metadata": {"name": "y"}, "spec": {"containers": []}}))
            .expect("pod");
    let err = api_error(
        pods.create(&PostParams::default(), &none)
            .await
            .expect_err("no containers"),
    );
    assert_eq!(
        err.message,
        "Pod \"y\" is invalid: spec.containers: Required value"
    );

    // A namespace that does not exist.
    let other: Api<Pod> = Api::namespaced(pods.clone().into_client(), "nowhere");
    let err = api_error(
        other
            .create(&PostParams::default(), &pod("z", json!({})))
            .await
            .expect_err("no namespace"),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test]
async fn label_and_field_selectors() {
    let (_server, pods) = server().await;
    for (name, labels) in [
        ("a", json!({"app": "x", "tier": "web"})),
        ("b", json!({"app": "y", "tier": "db"})),
        ("c", json!({"app": "x"})),
    ] {
        pods.create(&PostParams::default(), &pod(name, labels))
            .await
            .expect("create");
    }
    let names = |sel: &'static str| {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels(sel))
                .await
                .expect(sel);
            list.items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("app=x").await, ["a", "c"]);
    assert_eq!(names("app==x,tier").await, ["a"]);
    assert_eq!(names("app!=x").await, ["b"]);
    assert_eq!(names("tier in (db, web)").await, ["a", "b"]);
    assert_eq!(names("tier notin (web)").await, ["b", "c"]);
    assert_eq!(names("!tier").await, ["c"]);
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("fields");
    assert_eq!(by_name.items.len(), 1);
    let err = api_error(
        pods.list(&ListParams::default().labels("app in x"))
            .await
            .expect_err("bad selector"),
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    let err = api_error(
        pods.list(&ListParams::default().fields("spec.image=x"))
            .await
            .expect_err("bad field"),
    );
    assert_eq!(err.message, "field label not supported: spec.image");

    // deletecollection by selector answers with what it deleted.
    let gone = pods
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=x"),
        )
        .await
        .expect("deletecollection");
    let gone = gone.left().expect("a list");
    assert_eq!(gone.items.len(), 2);
    assert_eq!(names("").await, ["b"]);
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let (_server, pods) = server().await;
    for i in 0..5 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), json!({})))
            .await
            .expect("create");
    }
    let first = pods
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().expect("continue");
    let second = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items[0].metadata.name.as_deref(), Some("p2"));
    let err = api_error(
        pods.list(&ListParams::default().limit(2).continue_token("zz"))
            .await
            .expect_err("bad token"),
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn network_policies_and_namespaces() {
    let (server, _pods) = server().await;
    let client = server.client(NS).expect("client");
    let policies: Api<NetworkPolicy> = Api::default_namespaced(client.clone());
    let np: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "deny-all"},
        "spec": {"podSelector": {"matchLabels": {"dev.threadsmith.managed": "true"}}, "policyTypes": ["Ingress", "Egress"]},
    }))
    .expect("policy");
    let created = policies
        .create(&PostParams::default(), &np)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    let mut changed = created.clone();
    changed.spec.as_mut().expect("spec").policy_types = Some(vec!["Egress".into()]);
    let replaced = policies
        .replace("deny-all", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert_eq!(replaced.metadata.generation, Some(2));
    let err = api_error(
        policies
            .replace("deny-all", &PostParams::default(), &changed)
            .await
            .expect_err("stale"),
    );
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on networkpolicies.networking.k8s.io \"deny-all\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let bad: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}, "policyTypes": ["Sideways"]},
    }))
    .expect("policy");
    let err = api_error(
        policies
            .create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid"),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .starts_with("NetworkPolicy.networking.k8s.io \"bad\" is invalid: ["),
        "{}",
        err.message
    );
    assert_eq!(
        policies
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let deleted = policies
        .delete("deny-all", &DeleteParams::default())
        .await
        .expect("delete");
    let status = deleted.right().expect("a Status");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );

    let namespaces: Api<Namespace> = Api::all(client);
    let ns = namespaces.get(NS).await.expect("namespace");
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    assert_eq!(
        api_error(namespaces.get("absent").await.expect_err("absent")).code,
        404
    );
    let version = server
        .client(NS)
        .expect("client")
        .apiserver_version()
        .await
        .expect("version");
    assert_eq!(version.major, "1");
}
