//! Reads every manifest under `deploy/kubernetes/` and checks what matters for an operator:
//! each kustomization's resources and patches exist; the `kubernetes-backend` bot mounts no
//! Docker socket (nothing it pulls in has a hostPath); its Role grants exactly pods, pods/exec,
//! pods/log and networkpolicies with the listed verbs in the rollout namespace, no more; the
//! NetworkPolicy denies all traffic to rollout pods but the opted-in setup phase; the probes
//! point at endpoints the bot serves, on a port the container declares.

// A test file: its helpers panic on what the test rejects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use threadsmith_bot::web::health::{HEALTHZ, METRICS, READYZ};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every YAML document of a file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A kustomization: its resources (files, or directories holding a kustomization) and patches.
struct Kustomization {
    dir: PathBuf,
    resources: Vec<PathBuf>,
    patches: Vec<PathBuf>,
}

fn kustomization(dir: &Path) -> Kustomization {
    let path = dir.join("kustomization.yaml");
    let docs = documents(&path);
    assert_eq!(docs.len(), 1, "{}", path.display());
    let k = &docs[0];
    assert_eq!(k["kind"], "Kustomization", "{}", path.display());
    let resources = strings(&k["resources"])
        .into_iter()
        .map(|r| dir.join(r))
        .collect();
    let patches = k["patches"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| dir.join(p["path"].as_str().expect("patches are files (`path`)")))
                .collect()
        })
        .unwrap_or_default();
    Kustomization {
        dir: dir.to_path_buf(),
        resources,
        patches,
    }
}

/// Every file an overlay pulls in (resources and patches, through the bases it names), each
/// once; panics on a resource that does not exist.
fn files_of(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let k = kustomization(dir);
    for r in k.resources.iter().chain(&k.patches) {
        assert!(
            r.exists(),
            "{} names {}, which does not exist",
            k.dir.display(),
            r.display()
        );
        if r.is_dir() {
            files_of(r, out);
        } else {
            out.insert(r.canonicalize().unwrap());
        }
    }
}

fn objects_of(overlay: &str) -> Vec<(PathBuf, Value)> {
    let mut files = BTreeSet::new();
    files_of(&root().join(overlay), &mut files);
    files
        .into_iter()
        .flat_map(|f| documents(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

fn of_kind<'a>(objects: &'a [(PathBuf, Value)], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|(_, o)| o["kind"] == kind)
        .map(|(_, o)| o)
        .collect()
}

/// Whether `v` holds, anywhere, a key `key` or a string containing `needle`.
fn mentions(v: &Value, key: &str, needle: &str) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k == key || mentions(v, key, needle)),
        Value::Array(a) => a.iter().any(|v| mentions(v, key, needle)),
        Value::String(s) => s.contains(needle),
        _ => false,
    }
}

#[test]
fn every_kustomization_names_files_that_exist_and_every_manifest_parses() {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root()).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("kustomization.yaml").exists() {
            dirs.push(dir);
        }
    }
    dirs.sort();
    let names: Vec<_> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["base", "docker-backend", "kubernetes-backend"]);
    let mut used = BTreeSet::new();
    for dir in &dirs {
        files_of(dir, &mut used);
    }
    // No manifest lies around unused, and each parses to objects with a kind and a name.
    for dir in &dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = entry.unwrap().path().canonicalize().unwrap();
            if file.file_name().unwrap() == "kustomization.yaml" {
                continue;
            }
            assert!(
                used.contains(&file),
                "{} is in no kustomization",
                file.display()
            );
            for doc in documents(&file) {
                assert!(doc["kind"].is_string(), "{}", file.display());
                assert!(doc["apiVersion"].is_string(), "{}", file.display());
                assert!(doc["metadata"]["name"].is_string(), "{}", file.display());
            }
        }
    }
}

#[test]
fn the_kubernetes_backend_bot_mounts_no_docker_socket() {
    let objects = objects_of("kubernetes-backend");
    for (file, o) in &objects {
        assert!(
            !mentions(o, "hostPath", "docker.sock"),
            "{} gives the bot something of the node's",
            file.display()
        );
    }
    // The bot runs as its ServiceAccount, non-root, with the backend's settings.
    let patch = objects
        .iter()
        .find(|(f, o)| f.ends_with("kubernetes-backend/bot.yaml") && o["kind"] == "Deployment")
        .map(|(_, o)| o)
        .expect("the overlay patches the Deployment");
    let pod = &patch["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "threadsmith");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let config = of_kind(&objects, "ConfigMap");
    assert!(
        config.iter().any(|c| c["data"]["threadsmith.toml"]
            .as_str()
            .is_some_and(|t| t.contains("backend = \"kubernetes\""))),
        "sandbox.backend = \"kubernetes\" is set"
    );
    let sa = of_kind(&objects, "ServiceAccount");
    assert_eq!(sa.len(), 1);
    assert_eq!(sa[0]["metadata"]["name"], "threadsmith");
}

#[test]
fn the_docker_backend_mounts_the_nodes_docker_socket() {
    let objects = objects_of("docker-backend");
    assert!(
        objects
            .iter()
            .any(|(_, o)| o["kind"] == "Deployment"
                && mentions(o, "hostPath", "/var/run/docker.sock")),
    );
    assert!(of_kind(&objects, "Role").is_empty());
    assert!(of_kind(&objects, "ServiceAccount").is_empty());
}

#[test]
fn the_role_grants_nothing_beyond_rollout_pods_and_their_network_policy() {
    let objects = objects_of("kubernetes-backend");
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let roles = of_kind(&objects, "Role");
    assert_eq!(roles.len(), 1);
    let role = roles[0];
    assert_eq!(role["metadata"]["namespace"], "threadsmith-rollouts");
    let allowed: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::from([
        (
            ("", "pods"),
            BTreeSet::from([
                "create",
                "get",
                "list",
                "watch",
                "delete",
                "deletecollection",
                "patch",
            ]),
        ),
        (("", "pods/exec"), BTreeSet::from(["create", "get"])),
        (("", "pods/log"), BTreeSet::from(["get"])),
        (
            ("networking.k8s.io", "networkpolicies"),
            BTreeSet::from(["create", "get", "list", "update", "patch"]),
        ),
    ]);
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().unwrap() {
        let rule_keys: BTreeSet<&str> = rule
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            rule_keys,
            BTreeSet::from(["apiGroups", "resources", "verbs"]),
            "no resourceNames, nonResourceURLs or other keys"
        );
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                granted
                    .entry((group.clone(), resource))
                    .or_default()
                    .extend(strings(&rule["verbs"]));
            }
        }
    }
    let granted: BTreeMap<(&str, &str), BTreeSet<&str>> = granted
        .iter()
        .map(|((g, r), v)| {
            (
                (g.as_str(), r.as_str()),
                v.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(granted, allowed);
    // Bound to the bot's ServiceAccount, and to nothing else.
    let bindings = of_kind(&objects, "RoleBinding");
    assert_eq!(bindings.len(), 1);
    let b = bindings[0];
    assert_eq!(b["metadata"]["namespace"], "threadsmith-rollouts");
    assert_eq!(b["roleRef"]["kind"], "Role");
    assert_eq!(b["roleRef"]["name"], role["metadata"]["name"]);
    let subjects = b["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["name"], "threadsmith");
    assert_eq!(subjects[0]["namespace"], "threadsmith");
}

#[test]
fn rollout_pods_are_denied_all_traffic_but_the_setup_phase() {
    let objects = objects_of("kubernetes-backend");
    let namespaces = of_kind(&objects, "Namespace");
    assert!(
        namespaces
            .iter()
            .any(|n| n["metadata"]["name"] == "threadsmith-rollouts"),
        "the overlay makes the rollout namespace"
    );
    let policies = of_kind(&objects, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    let p = policies[0];
    // The one the backend checks at start-up (runner/src/sandbox/kubernetes/policy.rs).
    assert_eq!(p["metadata"]["name"], "threadsmith-rollouts-no-network");
    assert_eq!(p["metadata"]["namespace"], "threadsmith-rollouts");
    let spec = &p["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"],
        serde_json::json!({"dev.threadsmith.managed": "true"})
    );
    assert_eq!(
        spec["podSelector"]["matchExpressions"],
        serde_json::json!([{"key": "dev.threadsmith.network", "operator": "DoesNotExist"}])
    );
    assert_eq!(
        spec["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    // No rule lets anything in or out.
    for direction in ["ingress", "egress"] {
        assert!(
            spec[direction].is_null() || spec[direction] == serde_json::json!([]),
            "{direction}: {}",
            spec[direction]
        );
    }
}

#[test]
fn probes_and_metrics_point_at_endpoints_the_bot_serves() {
    let served = [HEALTHZ, READYZ, METRICS];
    for overlay in ["docker-backend", "kubernetes-backend"] {
        let objects = objects_of(overlay);
        let base = objects
            .iter()
            .find(|(f, o)| f.ends_with("base/deployment.yaml") && o["kind"] == "Deployment")
            .map(|(_, o)| o)
            .expect("the base Deployment");
        let pod = &base["spec"]["template"];
        let container = &pod["spec"]["containers"][0];
        let ports: Vec<&Value> = container["ports"].as_array().unwrap().iter().collect();
        for (probe, path) in [
            ("livenessProbe", HEALTHZ),
            ("readinessProbe", READYZ),
            ("startupProbe", HEALTHZ),
        ] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{overlay}: {probe}");
            assert!(
                ports.iter().any(|p| p["name"] == get["port"]),
                "{overlay}: {probe} names a port the container declares"
            );
            // Longer than the longest readiness check (3 s).
            assert!(
                container[probe]["timeoutSeconds"].as_u64().unwrap_or(1) > 3
                    || probe == "startupProbe"
            );
        }
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        let path = annotations["prometheus.io/path"].as_str().unwrap();
        assert!(served.contains(&path));
        let port: u16 = annotations["prometheus.io/port"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(ports.iter().any(|p| p["containerPort"] == port));
        // The server listens where the probes knock.
        let listen = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "THREADSMITH_LISTEN")
            .and_then(|e| e["value"].as_str())
            .expect("THREADSMITH_LISTEN is set");
        assert!(listen.ends_with(&format!(":{port}")), "{listen}");
    }
}
