//! `cargo bench -p threadsmith-tests --bench kubernetes`
//!
//! The Kubernetes backend against the fake API server (`tests/src/fake_kubernetes`, each pod a
//! Docker container), next to the Docker backend, in the same run:
//! 1. overhead per rollout (sandbox up, working copy in place, a scripted one-file change, diff
//!    collected; the removal after), phase by phase, samples of the two backends interleaved;
//! 2. wall time of one task of N=16 rollouts (the calc repository, its tests run) on each;
//! 3. what the fake itself adds: an exec of `true` through the fake's API (WebSocket, v5
//!    protocol) against `docker exec` of the same command in the same container, and how long
//!    a change of a pod takes to reach a watch.
//!
//! Prints a Markdown report for docs/BENCHMARKS.md; ratios are the figures to compare across
//! machines. It prints; it never fails on timing.
//!
//! Settings (environment): `THREADSMITH_BENCH_ROLLOUTS` — samples per backend in part 1
//! (default 7); `THREADSMITH_BENCH_N` — rollouts of the task in part 2 (default 16);
//! `THREADSMITH_BENCH_PROBES` — execs and watch events in part 3 (default 20).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{AttachParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;
use threadsmith_runner::image::DEFAULT_IMAGE;
use threadsmith_runner::sandbox::{ExecRequest, Limits, Sandbox, SandboxBackend, SandboxSpec};
use threadsmith_runner::{PhaseTimings, RepoSource, TaskPlan, sampling_for};
use threadsmith_tests::fake_kubernetes::{LABEL_INSTANCE, LABEL_POD};
use threadsmith_tests::gitrepo::{FIXED_CALC, calc_repo};
use threadsmith_tests::{Backend, TEST_NAMESPACE, TestEnv, Turn, env_on};
use tokio_util::sync::CancellationToken;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// One backend's rollouts of part 1.
#[derive(Default)]
struct Samples {
    phases: Vec<PhaseTimings>,
    totals: Vec<Duration>,
}

impl Samples {
    fn total(&self) -> Duration {
        median(self.totals.clone())
    }

    fn phase(&self, f: fn(&PhaseTimings) -> Duration) -> Duration {
        median(self.phases.iter().map(f).collect())
    }

    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} | {} | {} | {} | **{}** | {} | {} |",
            secs(self.phase(|p| p.sandbox)),
            secs(self.phase(|p| p.copy)),
            secs(self.phase(|p| p.agent)),
            secs(self.phase(|p| p.diff)),
            secs(self.phase(|p| p.removal)),
            secs(self.total()),
            secs(*self.totals.iter().min().unwrap()),
            secs(*self.totals.iter().max().unwrap()),
        )
    }
}

/// The task plan of part 1 on `env`'s backend: the calc repository's seed, no tests.
async fn plan(env: &TestEnv, name: &str) -> Arc<TaskPlan> {
    let repo = calc_repo(&env.dir.path().join(name));
    let svc = &env.svc;
    let source = RepoSource::parse(&repo.display().to_string()).unwrap();
    let prepared = svc.repos.prepare(&source, None).await.unwrap();
    let task_id = format!("bench-{name}");
    let seed_volume = env
        .runner
        .prepare_seed(
            &task_id,
            &svc.repos,
            &prepared,
            DEFAULT_IMAGE,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let mut settings = threadsmith_bot::config::SandboxSection::default()
        .or(&svc.config.sandbox)
        .resolve(DEFAULT_IMAGE)
        .unwrap();
    settings.test = None;
    Arc::new(TaskPlan {
        task_id,
        instructions: "bench".into(),
        settings,
        seed_volume,
        budget: None,
        environment: None,
        start_patch: None,
    })
}

/// One rollout whose scripted model changes one file at once; its total is the wait for its
/// result, its removal (in the background) is awaited after and reported as its own phase.
async fn rollout(env: &TestEnv, plan: &Arc<TaskPlan>, k: u32, row: &mut Samples) {
    let sampling = sampling_for(k, &[0.5], 100);
    env.model.script(
        sampling.seed,
        vec![
            Turn::Call(
                "write_file",
                json!({"path": "calc.sh", "content": FIXED_CALC}),
            ),
            Turn::Call("finish", json!({"summary": "bench", "confidence": 1.0})),
        ],
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let t = Instant::now();
    let results = env
        .runner
        .run_rollouts(
            plan.clone(),
            vec![(k, sampling)],
            tx,
            CancellationToken::new(),
        )
        .await;
    let total = t.elapsed();
    let removals = env.runner.settle_removals(&plan.task_id).await;
    drain.await.unwrap();
    assert_eq!(results[0].diff.files.len(), 1, "{:?}", results[0].detail);
    let mut phases = results[0].timings;
    phases.removal = removals.first().copied().unwrap_or_default();
    row.phases.push(phases);
    row.totals.push(total);
}

/// Part 2: one task of `n` rollouts through the pipeline, each fixing calc.sh and running its
/// tests; the task's wall time.
async fn task_of(env: &TestEnv, n: u32) -> Duration {
    let calc = calc_repo(&env.dir.path().join("calc-n"));
    env.model.reset();
    for k in 1..=n {
        env.model.script(
            u64::from(k),
            vec![
                Turn::Call("run_command", json!({"command": "bash test.sh"})),
                Turn::Call(
                    "write_file",
                    json!({"path": "calc.sh", "content": FIXED_CALC}),
                ),
                Turn::Call("finish", json!({"summary": "fixed", "confidence": 0.9})),
            ],
        );
    }
    let t = Instant::now();
    let report = env.run(&calc, n, "fix add").await;
    let wall = t.elapsed();
    assert!(report.task.error.is_none(), "{:?}", report.task.error);
    assert_eq!(report.rollouts.len(), n as usize);
    wall
}

fn spec(task: &str) -> SandboxSpec {
    SandboxSpec {
        image: DEFAULT_IMAGE.into(),
        limits: Limits {
            memory_bytes: 768 << 20,
            workspace_bytes: 256 << 20,
            tmp_bytes: 256 << 20,
            ..Limits::default()
        },
        task_id: task.into(),
        rollout: 1,
        seed_volume: None,
        start_with_network: false,
        lifetime: Duration::from_secs(600),
    }
}

/// `docker exec <id> true`, to its exit code.
async fn docker_exec_true(docker: &bollard::Docker, id: &str) {
    let exec = docker
        .create_exec(
            id,
            bollard::exec::CreateExecOptions {
                cmd: Some(vec!["true"]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    if let bollard::exec::StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.unwrap()
    {
        while output.next().await.is_some() {}
    }
    let code = docker.inspect_exec(&exec.id).await.unwrap().exit_code;
    assert_eq!(code, Some(0));
}

/// `true` through the API's exec (WebSocket), to its Status.
async fn kube_exec_true(pods: &Api<Pod>, name: &str) {
    let ap = AttachParams::default()
        .container("sandbox")
        .stdout(true)
        .stderr(true);
    let mut p = pods.exec(name, ["true"], &ap).await.unwrap();
    let status = p.take_status().unwrap();
    if let Some(mut out) = p.stdout() {
        let mut sink = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut out, &mut sink)
            .await
            .unwrap();
    }
    let status = status.await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
}

/// The median time of `n` runs of `fut`, one after another.
macro_rules! timed {
    ($n:expr, $fut:expr) => {{
        let mut v = Vec::new();
        for _ in 0..$n {
            let t = Instant::now();
            $fut.await;
            v.push(t.elapsed());
        }
        median(v)
    }};
}

/// `true` through a sandbox's exec (its wrapper, time limit and capped output).
async fn run_true(s: &dyn Sandbox) {
    let req = ExecRequest::shell("true", Duration::from_secs(30));
    let out = s.exec(req, &CancellationToken::new()).await.unwrap();
    assert_eq!(out.exit_code, Some(0));
}

/// What part 3 measured.
struct Probes {
    /// `true` through each backend's sandbox exec (wrapper, time limit, capped output).
    sandbox_docker: Duration,
    sandbox_kubernetes: Duration,
    /// `true` through the fake's exec API and by `docker exec` in the same container.
    fake_exec: Duration,
    docker_exec: Duration,
    /// A pod's label patched until the watch delivers the change.
    watch: Duration,
}

async fn probes(docker_env: &TestEnv, kube_env: &TestEnv, n: usize) -> Probes {
    let cluster = kube_env.kubernetes.as_ref().unwrap();
    let fake = kube_env.fake_kubernetes.as_ref().unwrap();
    let on_docker = SandboxBackend::create_sandbox(&docker_env.docker, &spec("bench-probe-d"))
        .await
        .unwrap();
    let on_kube = SandboxBackend::create_sandbox(cluster, &spec("bench-probe-k"))
        .await
        .unwrap();
    let sandbox_docker = timed!(n, run_true(on_docker.as_ref()));
    let sandbox_kubernetes = timed!(n, run_true(on_kube.as_ref()));

    // The pod's own container, for `docker exec` next to the API's exec.
    let pod = on_kube.name().to_string();
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_INSTANCE}={}", fake.instance().unwrap()),
            format!("{LABEL_POD}={TEST_NAMESPACE}/{pod}/sandbox"),
        ],
    )]);
    let containers = kube_env
        .docker
        .client()
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap();
    let id = containers[0].id.clone().unwrap();
    let raw = kube_env.docker.client().clone();
    let pods: Api<Pod> = Api::namespaced(fake.client(TEST_NAMESPACE).unwrap(), TEST_NAMESPACE);
    let fake_exec = timed!(n, kube_exec_true(&pods, &pod));
    let docker_exec = timed!(n, docker_exec_true(&raw, &id));

    // Watch latency: a label patched, until the watch sees it.
    let current = pods.get(&pod).await.unwrap();
    let rv = current.metadata.resource_version.unwrap();
    let wp = WatchParams::default().fields(&format!("metadata.name={pod}"));
    let mut stream = pods.watch(&wp, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    for i in 0..n {
        let value = format!("p{i}");
        let t = Instant::now();
        pods.patch(
            &pod,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"bench": value}}})),
        )
        .await
        .unwrap();
        loop {
            match stream.try_next().await.unwrap() {
                Some(WatchEvent::Modified(p))
                    if p.metadata.labels.as_ref().and_then(|l| l.get("bench")) == Some(&value) =>
                {
                    break;
                }
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
        seen.push(t.elapsed());
    }
    on_docker.remove().await;
    on_kube.remove().await;
    Probes {
        sandbox_docker,
        sandbox_kubernetes,
        fake_exec,
        docker_exec,
        watch: median(seen),
    }
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let load_before = load_average();
    let samples = setting("THREADSMITH_BENCH_ROLLOUTS", 7).max(1) as u32;
    let n = setting("THREADSMITH_BENCH_N", 16).clamp(1, 16) as u32;
    let probes_n = setting("THREADSMITH_BENCH_PROBES", 20).max(1);
    let limits = |c: &mut threadsmith_bot::config::Config| {
        c.sandbox.memory = Some("512m".into());
        c.sandbox.workspace_size = Some("128m".into());
        c.sandbox.tmp_size = Some("128m".into());
        c.limits.running_rollouts = Some(16);
    };
    let docker = env_on(Backend::Docker, limits).await;
    let kube = env_on(Backend::Kubernetes, limits).await;

    // --- 1. overhead per rollout, interleaved ------------------------------------------------
    let (plan_d, plan_k) = (plan(&docker, "calc-d").await, plan(&kube, "calc-k").await);
    let (mut on_docker, mut on_kube) = (Samples::default(), Samples::default());
    for k in 1..=samples {
        rollout(&docker, &plan_d, k, &mut on_docker).await;
        rollout(&kube, &plan_k, k, &mut on_kube).await;
    }
    docker.runner.release_task(&plan_d.task_id).await;
    kube.runner.release_task(&plan_k.task_id).await;
    eprintln!("{}", on_docker.row("docker"));
    eprintln!("{}", on_kube.row("kubernetes (fake API server)"));

    // --- 2. N rollouts of one task ----------------------------------------------------------
    let wall_docker = task_of(&docker, n).await;
    let wall_kube = task_of(&kube, n).await;
    eprintln!(
        "N={n}: docker {} kubernetes {}",
        secs(wall_docker),
        secs(wall_kube)
    );

    // --- 3. what the fake adds -----------------------------------------------------------------
    let p = probes(&docker, &kube, probes_n).await;

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let docker_version = docker.docker.server_version().await.unwrap_or_default();
    println!("## Rollouts on Kubernetes (the fake API server) next to Docker\n");
    println!(
        "`cargo bench -p threadsmith-tests --bench kubernetes` — {samples} samples per backend, \
         interleaved, medians. {cores} cores; Docker {docker_version}. Load average (1, 5, 15 \
         min): {load_before} at the start, {} at the end.\n",
        load_average()
    );
    println!(
        "| per rollout (calc repository) | sandbox up | working copy | agent | diff | removal | total | min | max |\n|---|---|---|---|---|---|---|---|---|"
    );
    println!("{}", on_docker.row("docker"));
    println!("{}", on_kube.row("kubernetes, fake API server"));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "\nKubernetes / Docker per rollout: **{:.2}×** (sandbox up {:.2}×, working copy {:.2}×).\n",
        ratio(on_kube.total(), on_docker.total()),
        ratio(on_kube.phase(|p| p.sandbox), on_docker.phase(|p| p.sandbox)),
        ratio(on_kube.phase(|p| p.copy), on_docker.phase(|p| p.copy)),
    );
    println!(
        "| one task, N={n} rollouts (tests run) | docker | kubernetes | ratio |\n|---|---|---|---|"
    );
    println!(
        "| wall time | {} | {} | **{:.2}×** |\n",
        secs(wall_docker),
        secs(wall_kube),
        ratio(wall_kube, wall_docker)
    );
    println!("| what the fake adds ({probes_n} probes, medians) | time |\n|---|---|");
    println!(
        "| `true` through the Docker backend's exec | {} |",
        ms(p.sandbox_docker)
    );
    println!(
        "| `true` through the Kubernetes backend's exec (fake API) | {} |",
        ms(p.sandbox_kubernetes)
    );
    println!(
        "| `true` by the API's exec (WebSocket v5) into the fake's pod | {} |",
        ms(p.fake_exec)
    );
    println!(
        "| `true` by `docker exec` into the same container | {} |",
        ms(p.docker_exec)
    );
    println!(
        "| a pod's change until a watch delivers it | {} |",
        ms(p.watch)
    );
    println!(
        "\nThe fake's exec path costs {} over `docker exec` per command (the WebSocket upgrade \
         and the fake's relay); on a real cluster that hop is the API server and the kubelet's \
         CRI exec instead, and pods are scheduled, pulled and started by the node (not measured \
         here).",
        ms(p.fake_exec.saturating_sub(p.docker_exec))
    );
    eprintln!("bench took {}", secs(started.elapsed()));
}
