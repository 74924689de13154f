//! A fake Kubernetes API server that speaks the real wire protocol (as kube-rs uses it) over
//! plain HTTP on 127.0.0.1: core/v1 pods (with `status`, `exec` over WebSocket, `log`),
//! namespaces, networking.k8s.io/v1 networkpolicies, discovery and `/version`. Objects are
//! JSON with uid, creationTimestamp, one global resourceVersion and generation; conflicts,
//! validation and every error answer are shaped as the real server's `Status` bodies; lists take
//! label and field selectors and `limit`/`continue`; watches stream newline-delimited events.
//!
//! With a kubelet ([`FakeKubernetes::start`]) every pod runs as real Docker containers, its
//! securityContext, resources and emptyDir volumes translated to container settings, and
//! NetworkPolicies that deny all egress take the pod off every network. Without one
//! ([`FakeKubernetes::start_api_only`]) the cluster has no node and pods stay Pending.
//!
//! The containers carry the fake's own labels ([`LABEL_INSTANCE`], [`LABEL_POD`]), never the
//! pod's; they are removed when the server shuts down or is dropped, and
//! [`remove_leftovers`] removes those of servers whose process died.

mod api;
mod exec;
mod handlers;
mod hooks;
mod kubelet;
mod list;
mod logs;
mod patch;
pub mod quantity;
mod request;
mod resource;
mod selector;
mod status;
mod store;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use kubelet::{LABEL_INSTANCE, LABEL_POD, LABEL_SERVER_PID, remove_leftovers};

/// Namespaces a new fake cluster has.
pub const NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "threadsmith"];

/// What the route handlers share.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub store: store::Store,
    pub kubelet: Option<Arc<kubelet::Kubelet>>,
    pub bookmark_interval: Duration,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

/// Settings of a fake cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run pods as Docker containers (a node); without it pods stay Pending.
    pub kubelet: bool,
    pub namespaces: Vec<String>,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Address to listen on; 127.0.0.1 with a free port by default.
    pub listen: SocketAddr,
    /// The node's `podPidsLimit` (the kubelet's setting for every pod; `None`: unlimited, its
    /// default). A pod's `dev.threadsmith.pids-limit` annotation lowers it for that pod.
    pub pod_pids_limit: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kubelet: true,
            namespaces: NAMESPACES.iter().map(|s| s.to_string()).collect(),
            bookmark_interval: Duration::from_secs(5),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pod_pids_limit: None,
        }
    }
}

pub struct FakeKubernetes {
    addr: SocketAddr,
    ctx: Ctx,
}

impl FakeKubernetes {
    /// A cluster of one node whose pods are Docker containers.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Options::default()).await
    }

    /// A cluster with no node: the API alone, pods stay Pending.
    pub async fn start_api_only() -> anyhow::Result<Self> {
        Self::start_with(Options {
            kubelet: false,
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(opts: Options) -> anyhow::Result<Self> {
        let names: Vec<&str> = opts.namespaces.iter().map(String::as_str).collect();
        let store = store::Store::new(&names);
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let kubelet = if opts.kubelet {
            Some(
                kubelet::Kubelet::start(
                    store.clone(),
                    tasks.clone(),
                    shutdown.clone(),
                    opts.pod_pids_limit,
                )
                .await
                .context("starting the fake kubelet (needs Docker)")?,
            )
        } else {
            None
        };
        let ctx = Ctx {
            store,
            kubelet,
            bookmark_interval: opts.bookmark_interval,
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
        };
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("binding {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let app = api::router(ctx.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the fake Kubernetes API server stopped");
            }
        });
        Ok(Self { addr, ctx })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this server whose context's namespace is `namespace`.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// A kube-rs client for this server, its default namespace `namespace`.
    pub fn client(&self, namespace: &str) -> anyhow::Result<kube::Client> {
        let mut config = kube::Config::new(self.url().parse().context("the server's URL")?);
        config.default_namespace = namespace.to_string();
        config.read_timeout = Some(Duration::from_secs(300));
        Ok(kube::Client::try_from(config)?)
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.ctx.store.resource_version()
    }

    /// Forgets the history of changes, as etcd's compaction does: watches from an older
    /// resourceVersion get 410 Gone.
    pub fn compact(&self) {
        self.ctx.store.compact();
    }

    /// The id its Docker containers carry in [`LABEL_INSTANCE`] (none without a kubelet).
    pub fn instance(&self) -> Option<&str> {
        self.ctx.kubelet.as_ref().map(|k| k.instance())
    }

    /// The node's address as pods see it (the default bridge's gateway), with a kubelet.
    pub fn node_ip(&self) -> Option<&str> {
        self.ctx.kubelet.as_ref().map(|k| k.host_ip())
    }

    /// Stops serving and removes every container of this server.
    pub async fn shutdown(self) {
        self.ctx.shutdown.cancel();
        if let Some(k) = &self.ctx.kubelet {
            k.remove_all().await;
        }
        self.ctx.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.ctx.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("tasks of the fake Kubernetes server still running after 10 s");
        }
    }
}

impl Drop for FakeKubernetes {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
        // On a multi-threaded runtime, the pods' workers go on running on the other threads:
        // one may be creating a volume right now, after which it removes what it made once it
        // sees the shutdown. They are given that time (bounded) before the sweep, so that the
        // runtime's end does not drop a worker between the two and leave its volume behind.
        // (A current-thread runtime runs nothing while this blocks: swept at once.)
        let multi_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let Some(k) = &self.ctx.kubelet else { return };
        if multi_threaded {
            self.ctx.tasks.close();
            let workers = self.ctx.tasks.clone();
            tokio::task::block_in_place(|| k.remove_all_blocking(Some(workers)));
        } else {
            k.remove_all_blocking(None);
        }
    }
}
