//! End-to-end test support: fakes of the outside services, real git repositories, and a
//! harness that builds threadsmith's real services against a real Docker engine.

pub mod browser;
pub mod discord_fake;
pub mod fake_github;
pub mod fake_kubernetes;
pub mod fake_model;
pub mod fake_slack;
pub mod gitrepo;
mod inbox;
pub mod postgres;
pub mod selection;
mod serve;
pub mod standalone;

use std::path::Path;

use threadsmith_bot::config::Config;
use threadsmith_bot::pipeline::{self, NoProgress, Services, TaskReport, TaskRequest};
use threadsmith_runner::image::{self, DEFAULT_IMAGE, OfflineBuild};
use threadsmith_runner::sandbox::kubernetes::{Kubernetes, KubernetesOptions};
use threadsmith_runner::secret::Secret;
use threadsmith_runner::{Docker, ModelClient, RepoCache, Runner};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

pub use fake_model::{FakeModel, Turn};
pub use inbox::settle;
pub use serve::{ServeProcess, serve_discord_process, serve_env, serve_process, serve_two};

/// The model key the harness configures; tests check it never leaks.
pub const MODEL_KEY: &str = "sk-threadsmith-test-key-9f8e7d6c";

static IMAGE_READY: OnceCell<()> = OnceCell::const_new();

/// Makes sure the rollout image exists, building it offline when it is missing (as
/// `threadsmith image build` does). Fails loudly when it cannot: a test never skips itself.
pub async fn ensure_image() {
    IMAGE_READY
        .get_or_init(|| async {
            let docker = Docker::connect()
                .await
                .expect("these tests need a running Docker engine");
            if docker.image_exists(DEFAULT_IMAGE).await.expect("ask Docker for the image") {
                return;
            }
            // One build at a time across test processes.
            let lock = tokio::task::spawn_blocking(|| {
                let f = std::fs::File::create(std::env::temp_dir().join("threadsmith-image.lock"))
                    .expect("create the image lock file");
                f.lock().expect("lock the image lock file");
                f
            })
            .await
            .expect("lock task");
            if !docker.image_exists(DEFAULT_IMAGE).await.expect("ask Docker for the image") {
                image::build_offline(&docker, &OfflineBuild::default(), &|line| eprintln!("{line}"))
                    .await
                    .expect("building the rollout image offline failed; run `threadsmith image build` (needs root and debootstrap)");
            }
            drop(lock);
        })
        .await;
}

/// Where a test's rollouts run: the suites that take one run on each ([`BACKENDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Docker,
    /// Pods on the fake Kubernetes API server ([`fake_kubernetes`]), each a Docker container.
    Kubernetes,
    /// Pods on a real cluster: the kubeconfig in [`CLUSTER_KUBECONFIG`], the namespace in
    /// `THREADSMITH_TEST_NAMESPACE` (default [`TEST_NAMESPACE`]), the rollout image the nodes
    /// pull in `THREADSMITH_TEST_IMAGE` (default the local image's name). Only the tests that
    /// say so use it (they are `#[ignore]`d: see README, "Rollouts on Kubernetes").
    Cluster,
}

/// The environment variable naming a real cluster's kubeconfig for [`Backend::Cluster`].
pub const CLUSTER_KUBECONFIG: &str = "THREADSMITH_TEST_KUBECONFIG";

pub const BACKENDS: [Backend; 2] = [Backend::Docker, Backend::Kubernetes];

/// The namespace of the Kubernetes backend's rollout pods in tests.
pub const TEST_NAMESPACE: &str = "threadsmith";

/// A fresh world for one test: its own database and cache, a fake model, real Docker.
pub struct TestEnv {
    pub svc: Services,
    /// The runner `svc` runs its tasks with.
    pub runner: Runner,
    /// The Docker engine the runner's sandboxes are in (for looking at containers and volumes).
    pub docker: Docker,
    pub model: FakeModel,
    pub dir: tempfile::TempDir,
    /// With [`Backend::Kubernetes`] or [`Backend::Cluster`]: the backend.
    pub kubernetes: Option<Kubernetes>,
    /// With [`Backend::Kubernetes`]: the fake API server the backend talks to.
    pub fake_kubernetes: Option<fake_kubernetes::FakeKubernetes>,
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records every log line of every level of this test process (to look for secrets in them).
/// Call it before [`env`], which otherwise installs its own logger.
pub fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}

/// What [`capture_logs`] recorded so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Builds the test world on Docker; `customize` adjusts the config first.
pub async fn env(customize: impl FnOnce(&mut Config)) -> TestEnv {
    env_on(Backend::Docker, customize).await
}

/// Builds the test world with rollouts on `backend`; `customize` adjusts the config first.
pub async fn env_on(backend: Backend, customize: impl FnOnce(&mut Config)) -> TestEnv {
    // Errors and warnings of the code under test show in a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("THREADSMITH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    ensure_image().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let model = FakeModel::start().await;
    let mut config = Config {
        database_url: Some(format!(
            "sqlite://{}",
            dir.path().join("threadsmith.db").display()
        )),
        data_dir: Some(dir.path().join("data")),
        ..Config::default()
    };
    config.model.base_url = Some(model.base_url());
    config.model.model = Some("fake-model".into());
    config.model.api_key = Some(Secret::new(MODEL_KEY));
    config.model.retry_base_ms = Some(10);
    config.model.max_retries = Some(2);
    config.sandbox.memory = Some("768m".into());
    config.sandbox.pids = Some(256);
    config.sandbox.workspace_size = Some("256m".into());
    config.sandbox.tmp_size = Some("256m".into());
    config.sandbox.command_timeout_secs = Some(120);
    config.sandbox.rollout_timeout_secs = Some(300);
    // No environment cache unless a test turns it on (tests/tests/envcache.rs): tests share
    // one Docker engine, within a run and across runs, and a snapshot another test saved would
    // skip the setup this test is about.
    config.sandbox.environment_ttl = Some("0".into());
    if backend == Backend::Cluster
        && let Ok(image) = std::env::var("THREADSMITH_TEST_IMAGE")
    {
        config.sandbox.image = Some(image);
    }
    customize(&mut config);
    let store = threadsmith_bot::store::open(&config.database_url())
        .await
        .expect("open the test database");
    let docker = Docker::connect().await.expect("connect to Docker");
    let client = config
        .model_config()
        .map(|m| ModelClient::new(m).expect("model client"));
    let repos = RepoCache::new(config.data_dir());
    let (runner, kubernetes, fake_kubernetes) = match backend {
        Backend::Docker => (
            threadsmith_bot::wiring::runner(docker.clone(), client),
            None,
            None,
        ),
        Backend::Cluster => {
            let cluster = real_cluster().await;
            let runner =
                threadsmith_bot::wiring::runner_on(std::sync::Arc::new(cluster.clone()), client);
            (runner, Some(cluster), None)
        }
        Backend::Kubernetes => {
            let fake = fake_kubernetes::FakeKubernetes::start()
                .await
                .expect("start the fake Kubernetes API server");
            let cluster = Kubernetes::with_config(
                kube::Config::new(fake.url().parse().expect("the fake's URL")),
                KubernetesOptions {
                    namespace: TEST_NAMESPACE.into(),
                    ..KubernetesOptions::default()
                },
            )
            .expect("a client of the fake API server");
            cluster
                .prepare()
                .await
                .expect("the namespace and its NetworkPolicy");
            let runner =
                threadsmith_bot::wiring::runner_on(std::sync::Arc::new(cluster.clone()), client);
            (runner, Some(cluster), Some(fake))
        }
    };
    TestEnv {
        svc: Services::new(config, store, runner.clone(), repos)
            .expect("the publish settings are valid"),
        runner,
        docker,
        model,
        dir,
        kubernetes,
        fake_kubernetes,
    }
}

/// The real cluster of [`Backend::Cluster`], prepared (its namespace checked, the NetworkPolicy
/// in place). Fails loudly without [`CLUSTER_KUBECONFIG`]: the tests that use it are ignored
/// unless asked for, and then must not pass without a cluster.
async fn real_cluster() -> Kubernetes {
    let path = std::env::var_os(CLUSTER_KUBECONFIG).unwrap_or_else(|| {
        panic!("set {CLUSTER_KUBECONFIG} to the kubeconfig of a cluster to run this test on")
    });
    let namespace =
        std::env::var("THREADSMITH_TEST_NAMESPACE").unwrap_or_else(|_| TEST_NAMESPACE.into());
    let cluster = Kubernetes::connect(KubernetesOptions {
        namespace,
        kubeconfig: Some(path.into()),
        ..KubernetesOptions::default()
    })
    .await
    .expect("a client of the cluster in THREADSMITH_TEST_KUBECONFIG");
    cluster
        .prepare()
        .await
        .expect("the cluster's namespace (create it) and its NetworkPolicy");
    cluster
}

impl TestEnv {
    /// Runs a task to its end through the real pipeline.
    pub async fn run(&self, repo: &Path, attempts: u32, text: &str) -> TaskReport {
        self.run_request(request(repo, attempts, text)).await
    }

    pub async fn run_request(&self, req: TaskRequest) -> TaskReport {
        pipeline::run_task(&self.svc, req, &NoProgress, CancellationToken::new())
            .await
            .expect("the store works")
    }

    /// Asserts that no container, volume or pod of the task is left.
    pub async fn assert_nothing_left(&self, task_id: &str) {
        if let Some(cluster) = &self.kubernetes {
            let left: Vec<_> = cluster
                .list_managed()
                .await
                .expect("list pods")
                .into_iter()
                .filter(|p| {
                    p.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(threadsmith_runner::sandbox::LABEL_TASK))
                        .map(String::as_str)
                        == Some(task_id)
                })
                .filter_map(|p| p.metadata.name)
                .collect();
            assert!(left.is_empty(), "pods left behind: {left:?}");
        }
        let left: Vec<_> = self
            .docker
            .list_managed()
            .await
            .expect("list containers")
            .into_iter()
            .filter(|c| c.task.as_deref() == Some(task_id))
            .collect();
        assert!(left.is_empty(), "containers left behind: {left:?}");
        let volumes = self
            .docker
            .client()
            .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
            .await
            .expect("list volumes");
        let left: Vec<_> = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| {
                v.labels
                    .get(threadsmith_runner::sandbox::LABEL_TASK)
                    .map(String::as_str)
                    == Some(task_id)
            })
            .map(|v| v.name)
            .collect();
        assert!(left.is_empty(), "volumes left behind: {left:?}");
    }
}

/// Points a config at a fake Slack in Socket Mode (see [`fake_slack`]), with status edits
/// unthrottled so that tests see every state.
pub fn use_fake_slack(c: &mut Config, api_base: &str) {
    c.slack.bot_token = Some(Secret::new("xoxb-test"));
    c.slack.app_token = Some(Secret::new("xapp-test"));
    c.slack.api_url = Some(api_base.to_string());
    c.status_edit_interval_ms = Some(0);
}

/// The model for a calc.sh bug thread: the spec (seed 0), then rollout 1 fixes `add` and
/// rollout 2 "fixes" `sub` too (its tests fail).
pub fn script_calc_fix(env: &TestEnv) {
    env.model.script(
        0,
        vec![crate::Turn::Call(
            "write_spec",
            serde_json::json!({
                "title": "add() subtracts instead of adding",
                "problem": "add 2 3 prints -1 (from the thread).",
                "expected": "add 2 3 prints 5",
                "acceptance_checks": ["bash test.sh passes"],
                "hints": ["calc.sh"]
            }),
        )],
    );
    env.model.script(
        1,
        vec![
            crate::Turn::Call("write_file", serde_json::json!({"path": "calc.sh", "content": crate::gitrepo::FIXED_CALC})),
            crate::Turn::Call(
                "finish",
                serde_json::json!({"summary": "Fixed **add**: it used `-`. <!channel> <@U333>", "confidence": 0.9}),
            ),
        ],
    );
    env.model.script(
        2,
        vec![
            crate::Turn::Call(
                "write_file",
                serde_json::json!({"path": "calc.sh", "content": crate::gitrepo::OVERFIXED_CALC}),
            ),
            crate::Turn::Call(
                "finish",
                serde_json::json!({"summary": "Changed both.", "confidence": 0.5}),
            ),
        ],
    );
}

/// The `threadsmith` binary of this workspace, brought up to date once per test process (a
/// stale binary would test old code).
pub fn threadsmith() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test exe");
            let bin = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target dir")
                .join("threadsmith");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = std::process::Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "threadsmith-bot",
                "--bin",
                "threadsmith",
            ]);
            // What cargo set for this test (CARGO_MANIFEST_DIR, …) would look like a changed
            // environment to build scripts and rebuild half the dependency tree.
            for (key, _) in std::env::vars() {
                if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
                    cmd.env_remove(key);
                }
            }
            let status = cmd.status().expect("run cargo build");
            assert!(status.success(), "building the threadsmith binary failed");
            bin
        })
        .clone()
}

pub fn request(repo: &Path, attempts: u32, text: &str) -> TaskRequest {
    TaskRequest {
        text: text.into(),
        repo: repo.display().to_string(),
        base: None,
        attempts,
        origin: "test".into(),
        requester: Some("tester".into()),
        spec: None,
        task_id: None,
        round: None,
    }
}

/// `threadsmith serve` in this test process on `svc` (see `threadsmith_bot::serve::start`),
/// with the token that stops it.
pub async fn start_serve(svc: &Services) -> (threadsmith_bot::serve::Running, CancellationToken) {
    let shutdown = CancellationToken::new();
    let running = threadsmith_bot::serve::start(svc.clone(), shutdown.clone())
        .await
        .expect("serve starts");
    (running, shutdown)
}

/// Chat text with what varies between runs in the cost words taken out: numbers of tokens
/// (`18.2k tokens` → `<n> tokens`) and durations (`4m 12s`, `3 s`, `950 ms` → `<time>`), for
/// snapshots.
pub fn redact_costs(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let number = |w: &str| {
        let w = w.trim_end_matches(['k', 'M']);
        !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.')
    };
    let minutes = |w: &str| {
        w.len() > 1 && w.ends_with('m') && w[..w.len() - 1].chars().all(|c| c.is_ascii_digit())
    };
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let (w, next) = (words[i], words.get(i + 1).copied().unwrap_or(""));
        if number(w) && next.starts_with("tokens") {
            out.push("<n>".into());
        } else if number(w)
            && (next == "s" || next == "ms" || next.starts_with("s\\") || next.starts_with("ms\\"))
        {
            let rest = next.trim_start_matches("ms").trim_start_matches('s');
            out.push(format!("<time>{rest}"));
            i += 1;
        } else if minutes(w)
            && next.len() >= 3
            && next[..2].chars().all(|c| c.is_ascii_digit())
            && next[2..].starts_with('s')
        {
            out.push(format!("<time>{}", &next[3..]));
            i += 1;
        } else {
            out.push(w.to_string());
        }
        i += 1;
    }
    out.join(" ")
}

#[cfg(test)]
mod redact_tests {
    #[test]
    fn cost_words_are_redacted() {
        assert_eq!(
            super::redact_costs(
                "patch · 4m 12s · 18.2k tokens · $0.004\\nTotal: 950 tokens in 3 model calls · 3 s of rollouts"
            ),
            "patch · <time> · <n> tokens · $0.004\\nTotal: <n> tokens in 3 model calls · <time> of rollouts"
        );
        assert_eq!(
            super::redact_costs("in 1 file · 950 ms\\nx"),
            "in 1 file · <time>\\nx"
        );
    }
}
