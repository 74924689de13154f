//! Watches of the fake Kubernetes API server (kube-rs's `Api::watch` and its runtime watcher:
//! paged lists, streaming lists, 410 Gone) and its error bodies byte for byte over raw HTTP.

mod fake_kubernetes_common;

use fake_kubernetes_common::{NS, pod, server};
use futures_util::{StreamExt, TryStreamExt};
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn watch_streams_added_modified_deleted_and_bookmarks() {
    let (server, pods) = server().await;
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = pods
        .watch(&WatchParams::default().labels("app=w").timeout(20), &rv)
        .await
        .expect("watch")
        .boxed();
    pods.create(&PostParams::default(), &pod("w", json!({"app": "w"})))
        .await
        .expect("create");
    pods.create(&PostParams::default(), &pod("other", json!({"app": "o"})))
        .await
        .expect("create other");
    pods.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"n": "1"}}})),
    )
    .await
    .expect("patch");
    // Leaving the selector is a DELETED for this watch.
    pods.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .expect("patch out");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream
            .try_next()
            .await
            .expect("event")
            .expect("stream open")
        {
            WatchEvent::Added(p) => seen.push(("ADDED", p.metadata.name.unwrap_or_default())),
            WatchEvent::Modified(p) => seen.push(("MODIFIED", p.metadata.name.unwrap_or_default())),
            WatchEvent::Deleted(p) => seen.push(("DELETED", p.metadata.name.unwrap_or_default())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "w".to_string()),
            ("MODIFIED", "w".into()),
            ("DELETED", "w".into())
        ]
    );

    // From a compacted resourceVersion: 410 Gone as an ERROR event.
    server.compact();
    let mut stale = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match stale.try_next().await.expect("event").expect("an event") {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn the_runtime_watcher_lists_then_watches_and_streams_initial_events() {
    let (_server, pods) = server().await;
    pods.create(&PostParams::default(), &pod("before", json!({"app": "r"})))
        .await
        .expect("create");
    pods.create(
        &PostParams::default(),
        &pod("before-2", json!({"app": "r"})),
    )
    .await
    .expect("create");
    let mut existing = vec!["before".to_string(), "before-2".to_string()];
    // Paged lists (one object a page), then streaming lists (sendInitialEvents).
    for config in [
        watcher::Config::default().page_size(1),
        watcher::Config::default().streaming_lists(),
    ] {
        let mut events = watcher(pods.clone(), config.labels("app=r")).boxed();
        let mut init = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.try_next())
                .await
                .expect("in time")
                .expect("ok")
                .expect("open")
            {
                watcher::Event::Init => {}
                watcher::Event::InitApply(p) => init.push(p.metadata.name.unwrap_or_default()),
                watcher::Event::InitDone => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        init.sort();
        existing.sort();
        assert_eq!(init, existing);
        let name = format!("after-{}", rand_suffix());
        pods.create(&PostParams::default(), &pod(&name, json!({"app": "r"})))
            .await
            .expect("create");
        match tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open")
        {
            watcher::Event::Apply(p) => assert_eq!(p.metadata.name.as_deref(), Some(name.as_str())),
            other => panic!("unexpected {other:?}"),
        }
        existing.push(name);
    }
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_string()
}

/// The exact `Status` bodies, read over raw HTTP.
#[tokio::test]
async fn error_bodies_are_the_real_servers() {
    let (server, _pods) = server().await;
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/{NS}/pods", server.url());
    let answer = |r: reqwest::Response| async move {
        let code = r.status().as_u16();
        (code, r.json::<Value>().await.expect("a JSON body"))
    };

    let (code, body) = answer(http.get(format!("{base}/nope")).send().await.expect("get")).await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "pods \"nope\" not found", "reason": "NotFound",
               "details": {"name": "nope", "kind": "pods"}, "code": 404})
    );

    let np = format!(
        "{}/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/nope",
        server.url()
    );
    let (code, body) = answer(http.get(np).send().await.expect("get")).await;
    assert_eq!(code, 404);
    assert_eq!(
        body["message"],
        "networkpolicies.networking.k8s.io \"nope\" not found"
    );
    assert_eq!(
        body["details"],
        json!({"name": "nope", "group": "networking.k8s.io", "kind": "networkpolicies"})
    );

    let pod_json = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad"},
                          "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let (code, body) = answer(
        http.post(&base)
            .header(CONTENT_TYPE, "application/json")
            .body(pod_json.to_string())
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Pod \"Bad\" is invalid: metadata.name: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
               "reason": "Invalid",
               "details": {"name": "Bad", "kind": "Pod", "causes": [{
                   "reason": "FieldValueInvalid",
                   "message": "Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                   "field": "metadata.name"}]},
               "code": 422})
    );

    // Wrong content type, malformed JSON, another kind, a name that is not the URL's.
    let (code, body) = answer(
        http.post(&base)
            .header(CONTENT_TYPE, "text/plain")
            .body("x")
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, body) = answer(
        http.post(&base)
            .header(CONTENT_TYPE, "application/json")
            .body("{")
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Pod in version \"v1\" cannot be handled as a Pod: "),
        "{body}"
    );
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
    let (code, body) = answer(
        http.post(&base)
            .header(CONTENT_TYPE, "application/json")
            .body(wrong_kind.to_string())
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (
            400,
            Some("the kind in the data (Namespace) does not match the expected kind (Pod)")
        )
    );
    let ok_pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let (code, _) = answer(
        http.post(&base)
            .header(CONTENT_TYPE, "application/json")
            .body(ok_pod.to_string())
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(code, 201);
    let (code, body) = answer(
        http.put(format!("{base}/b"))
            .header(CONTENT_TYPE, "application/json")
            .body(ok_pod.to_string())
            .send()
            .await
            .expect("put"),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (
            400,
            Some("the name of the object (a) does not match the name on the URL (b)")
        )
    );
    let (code, body) = answer(
        http.patch(format!("{base}/a"))
            .header(CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .expect("patch"),
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, body) = answer(
        http.post(format!("{}/api/v1/namespaces/{NS}/widgets", server.url()))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (
            404,
            Some("the server could not find the requested resource")
        )
    );
    let (code, body) = answer(
        http.get(format!("{base}?labelSelector=a%20in%20b"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!((code, body["kind"].as_str()), (400, Some("Status")));

    // A watch from a compacted resourceVersion: HTTP 200, then one ERROR event.
    server.compact();
    let text = http
        .get(format!("{base}?watch=true&resourceVersion=1"))
        .send()
        .await
        .expect("watch")
        .text()
        .await
        .expect("body");
    let event: Value = serde_json::from_str(text.lines().next().expect("one line")).expect("JSON");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}
