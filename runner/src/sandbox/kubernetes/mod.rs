//! The Kubernetes backend: one pod per rollout, through kube-rs (`kube`, `k8s-openapi`).
//!
//! The same isolation as on Docker, said in the pod spec (`pod.rs`): a non-root user (1000), no
//! privilege escalation, no capability, the runtime's default seccomp profile, a read-only root,
//! `/workspace` and `/tmp` as size-limited `emptyDir`s in memory (charged to the pod's memory
//! limit, as Docker's tmpfs), CPU and memory limits, no service account token, and a deadline.
//! No network: a NetworkPolicy (`policy.rs`) selects every rollout pod but those of an opted-in
//! setup phase (a label that [`Sandbox::cut_network`] takes away) and denies all traffic. The
//! task's seed is kept by this process (`seed.rs`) and streamed through exec into each pod's seed
//! container, the only one that mounts it writable (the agent's mounts it read-only);
//! commands run through the exec API (`exec.rs`) with the same time limits, capped output and
//! reaping as on Docker. Pods carry the managed, task, rollout and owner labels (`owners.rs`), so
//! that a task's pods and those of dead bot processes — on any machine, judged by the store's live
//! workers — can be found and deleted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;

use super::*;

mod exec;
mod owners;
mod pod;
mod policy;
mod seed;
mod start;

pub use exec::KubernetesSandbox;
pub use owners::{decode_owner, encode_owner, is_label_value, label_value};
pub use pod::{ANNOTATION_PIDS, pod_spec};
pub use policy::{POLICY_NAME, PolicyCheck, network_policy};

/// Set (to [`NETWORK_SETUP`]) on the pod of an opted-in setup phase: the NetworkPolicy does not
/// select it, so it has the cluster's network until [`Sandbox::cut_network`] removes the label.
pub const LABEL_NETWORK: &str = "dev.threadsmith.network";
pub const NETWORK_SETUP: &str = "setup";

/// How long one call to the API server may take (exec streams excepted: their commands have
/// their own limits).
const API_LIMIT: Duration = Duration::from_secs(30);

/// How old a pod must be before it can be taken for an orphan.
const ORPHAN_MIN_AGE: Duration = Duration::from_secs(60);

/// A toleration of the rollout pods, as written in the config (`sandbox.kubernetes.tolerations`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    pub key: Option<String>,
    /// `Equal` (the default) or `Exists`.
    pub operator: Option<String>,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; none matches every effect.
    pub effect: Option<String>,
    pub toleration_seconds: Option<i64>,
}

/// Where and how rollout pods run (`[sandbox.kubernetes]`).
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesOptions {
    pub namespace: String,
    /// A kubeconfig file; without it the in-cluster service account, else the default kubeconfig.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig's context to use (its current one when unset).
    pub context: Option<String>,
    pub runtime_class: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub image_pull_secret: Option<String>,
    /// The rollout pods' service account; its token is never mounted.
    pub service_account: Option<String>,
    /// How long a pod may take to be scheduled, pull its image and start.
    pub start_timeout: Duration,
}

impl Default for KubernetesOptions {
    fn default() -> Self {
        Self {
            namespace: "threadsmith-rollouts".into(),
            kubeconfig: None,
            context: None,
            runtime_class: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            image_pull_secret: None,
            service_account: None,
            start_timeout: Duration::from_secs(180),
        }
    }
}

/// A Kubernetes cluster's namespace, as a place to run rollouts.
#[derive(Clone)]
pub struct Kubernetes {
    client: kube::Client,
    options: Arc<KubernetesOptions>,
    seeds: Arc<Mutex<seed::Seeds>>,
}

pub(super) fn kube_err(action: &'static str) -> impl FnOnce(kube::Error) -> SandboxError {
    move |e| SandboxError::Backend {
        backend: "kubernetes",
        action,
        detail: describe(&e),
    }
}

/// A kube error in words: the API server's own message when it sent a Status.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        e => e.to_string(),
    }
}

pub(super) fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

/// One API call under [`API_LIMIT`].
pub(super) async fn call<T>(
    action: &'static str,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, SandboxError> {
    match tokio::time::timeout(API_LIMIT, fut).await {
        Ok(r) => r.map_err(kube_err(action)),
        Err(_) => Err(SandboxError::Backend {
            backend: "kubernetes",
            action,
            detail: format!(
                "the API server did not answer within {}s",
                API_LIMIT.as_secs()
            ),
        }),
    }
}

fn backend_err(action: &'static str, detail: impl Into<String>) -> SandboxError {
    SandboxError::Backend {
        backend: "kubernetes",
        action,
        detail: detail.into(),
    }
}

impl Kubernetes {
    /// Connects: the kubeconfig named in the options, else the in-cluster service account
    /// (inside a pod), else the default kubeconfig (`KUBECONFIG`, `~/.kube/config`). Makes no
    /// call yet; [`Kubernetes::prepare`] checks the cluster.
    pub async fn connect(options: KubernetesOptions) -> Result<Self, SandboxError> {
        let kube_options = kube::config::KubeConfigOptions {
            context: options.context.clone(),
            ..Default::default()
        };
        let config = match &options.kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    backend_err(
                        "reading the kubeconfig",
                        format!("{}: {e}", path.display()),
                    )
                })?;
                kube::Config::from_custom_kubeconfig(file, &kube_options)
                    .await
                    .map_err(|e| backend_err("reading the kubeconfig", e.to_string()))?
            }
            None if options.context.is_none()
                && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
            {
                kube::Config::incluster().map_err(|e| {
                    backend_err("reading the in-cluster service account", e.to_string())
                })?
            }
            None => kube::Config::from_kubeconfig(&kube_options)
                .await
                .map_err(|e| {
                    backend_err(
                        "reading the default kubeconfig",
                        format!(
                            "{e}. Set sandbox.kubernetes.kubeconfig, or run the bot in the cluster with a service account"
                        ),
                    )
                })?,
        };
        Self::with_config(config, options)
    }

    /// Over an explicit client configuration (the tests' fake API server).
    pub fn with_config(
        mut config: kube::Config,
        options: KubernetesOptions,
    ) -> Result<Self, SandboxError> {
        // Exec streams carry commands that may print nothing for minutes: no read timeout on
        // the connection; every other call has its own limit (see `call`).
        config.read_timeout = None;
        if config.connect_timeout.is_none() {
            config.connect_timeout = Some(Duration::from_secs(10));
        }
        let client = kube::Client::try_from(config)
            .map_err(|e| backend_err("making the Kubernetes client", e.to_string()))?;
        Ok(Self {
            client,
            options: Arc::new(options),
            seeds: Arc::default(),
        })
    }

    pub fn options(&self) -> &KubernetesOptions {
        &self.options
    }

    pub(super) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.options.namespace)
    }

    /// The API server's version (`major.minor`), for `doctor`.
    pub async fn server_version(&self) -> Result<String, SandboxError> {
        let v = call(
            "asking the API server's version",
            self.client.apiserver_version(),
        )
        .await?;
        Ok(v.git_version)
    }

    /// The API server answers and the namespace exists. Reading a namespace needs a cluster
    /// role; with only the namespace's Role (deploy/kubernetes), listing its pods shows that
    /// the namespace may be used.
    pub async fn check_namespace(&self) -> Result<(), SandboxError> {
        let ns = &self.options.namespace;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        match tokio::time::timeout(API_LIMIT, namespaces.get(ns)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if is_status(&e, 404) => Err(backend_err(
                "looking up its namespace",
                format!(
                    "the namespace `{ns}` does not exist. Create it (kubectl create namespace {ns}) or set sandbox.kubernetes.namespace"
                ),
            )),
            Ok(Err(e)) if is_status(&e, 403) => {
                let lp = kube::api::ListParams::default().limit(1);
                call("listing pods in its namespace", self.pods().list(&lp))
                    .await
                    .map(|_| ())
            }
            Ok(Err(e)) => Err(kube_err("looking up its namespace")(e)),
            Err(_) => Err(backend_err(
                "looking up its namespace",
                format!(
                    "the API server did not answer within {}s",
                    API_LIMIT.as_secs()
                ),
            )),
        }
    }

    /// At start-up: the namespace is there and the rollouts' NetworkPolicy is in place
    /// (created when missing). A policy that differs from threadsmith's is an error: rollouts
    /// would not be cut off from the network.
    pub async fn prepare(&self) -> Result<PolicyCheck, SandboxError> {
        self.check_namespace().await?;
        let check = self.ensure_policy().await?;
        if let PolicyCheck::Differs(why) = &check {
            return Err(backend_err(
                "checking the rollouts' NetworkPolicy",
                format!(
                    "the NetworkPolicy `{POLICY_NAME}` in `{}` is not threadsmith's: {why}. Delete it (threadsmith creates it again) or make it deny all ingress and egress of pods labelled {LABEL_MANAGED}=true without {LABEL_NETWORK}",
                    self.options.namespace
                ),
            ));
        }
        Ok(check)
    }
}

#[async_trait]
impl SandboxBackend for Kubernetes {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn owners_span_machines(&self) -> bool {
        true
    }

    async fn reachable(&self) -> Result<(), SandboxError> {
        self.check_namespace().await
    }

    /// The cluster pulls images itself (with the configured pull secret): whether it can is
    /// only known when a pod starts, and a pod that cannot pull says so then.
    async fn require_image(&self, _image: &str) -> Result<(), SandboxError> {
        Ok(())
    }

    async fn create_seed(
        &self,
        task_id: &str,
        _image: &str,
        archive: Vec<u8>,
    ) -> Result<String, SandboxError> {
        Ok(self.keep_seed(task_id, archive))
    }

    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, SandboxError> {
        Ok(Box::new(self.start(spec).await?))
    }

    async fn remove_task(&self, task_id: &str) -> Result<usize, SandboxError> {
        self.drop_seeds(task_id);
        self.remove_where(|task, _| task == Some(task_id), Duration::ZERO)
            .await
    }

    /// Pods made in the last minute are spared: their process may have registered as a worker
    /// after the caller read the live ones.
    async fn remove_orphans(&self, is_dead: &OwnerIsDead) -> Result<usize, SandboxError> {
        self.remove_where(|_, owner| owner.is_none_or(is_dead), ORPHAN_MIN_AGE)
            .await
    }
}
