//! `cargo bench -p threadsmith-tests --bench rollouts`
//!
//! 1. Orchestration overhead per rollout (container up, working copy in place, diff collected,
//!    container gone) on a generated repository of ~50 MB in 5,000 files, with a zero-latency
//!    scripted model — side by side, in the same run, with the naive way: a fresh `git clone`
//!    inside a fresh container per rollout.
//! 2. Wall time of a task with N=4 rollouts against N=1, with a fixed-latency scripted model.
//!
//! Prints a Markdown report (copied into docs/BENCHMARKS.md). Ratios, not absolute times, are
//! the figures to compare across machines.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use serde_json::json;
use threadsmith_runner::image::DEFAULT_IMAGE;
use threadsmith_runner::sandbox::{LABEL_MANAGED, LABEL_TASK};
use threadsmith_runner::{RepoSource, TaskPlan, sampling_for};
use threadsmith_tests::gitrepo::git;
use threadsmith_tests::{Turn, env};
use tokio_util::sync::CancellationToken;

const FILES: usize = 5_000;
const FILE_BYTES: usize = 10_000;
const SAMPLES: u32 = 7;

/// Deterministic, poorly compressible text.
fn generate_repo(dir: &Path) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..FILES {
        let sub = dir.join(format!("src/m{:02}", i % 50));
        std::fs::create_dir_all(&sub).unwrap();
        let mut text = Vec::with_capacity(FILE_BYTES);
        while text.len() < FILE_BYTES {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push(if text.len() % 80 == 79 {
                b'\n'
            } else {
                alphabet[(state % 64) as usize]
            });
        }
        std::fs::write(sub.join(format!("f{i:04}.txt")), text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "-m", "generated"]);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let env = env(|c| {
        c.sandbox.workspace_size = Some("1g".into());
        c.sandbox.memory = Some("1g".into());
    })
    .await;
    let repo = env.dir.path().join("big");
    let t = Instant::now();
    generate_repo(&repo);
    eprintln!("generated the repository in {}", secs(t.elapsed()));
    let size: u64 = walk_size(&repo.join("src"));

    // --- 1. overhead per rollout ------------------------------------------------------------
    let svc = &env.svc;
    let source = RepoSource::parse(&repo.display().to_string()).unwrap();
    let t = Instant::now();
    let prepared = svc.repos.prepare(&source, None).await.unwrap();
    let mirror_time = t.elapsed();
    let task_id = "bench-overhead".to_string();
    let t = Instant::now();
    let seed = svc
        .runner
        .prepare_seed(&task_id, &svc.repos, &prepared, DEFAULT_IMAGE)
        .await
        .unwrap();
    let seed_time = t.elapsed();
    let mut settings = threadsmith_bot::config::SandboxSection::default()
        .or(&svc.config.sandbox)
        .resolve(DEFAULT_IMAGE)
        .unwrap();
    settings.test = None;
    let plan = Arc::new(TaskPlan {
        task_id: task_id.clone(),
        instructions: "bench".into(),
        settings,
        seed_volume: seed,
    });
    let mut ours = Vec::new();
    let mut naive = Vec::new();
    let mut naive_tmpfs = Vec::new();
    for k in 1..=SAMPLES {
        let sampling = sampling_for(k, &[0.5], 100);
        env.model.script(
            sampling.seed,
            vec![
                Turn::Call(
                    "write_file",
                    json!({"path": "src/m00/f0000.txt", "content": "changed\n"}),
                ),
                Turn::Call("finish", json!({"summary": "bench", "confidence": 1.0})),
            ],
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let t = Instant::now();
        let results = svc
            .runner
            .run_rollouts(
                plan.clone(),
                vec![(k, sampling)],
                tx,
                CancellationToken::new(),
            )
            .await;
        ours.push(t.elapsed());
        drain.await.unwrap();
        assert_eq!(results[0].diff.files.len(), 1, "{:?}", results[0].detail);

        let t = Instant::now();
        naive_rollout(&env, &prepared.mirror, false).await;
        naive.push(t.elapsed());
        let t = Instant::now();
        naive_rollout(&env, &prepared.mirror, true).await;
        naive_tmpfs.push(t.elapsed());
    }
    svc.runner.release_task(&task_id).await;
    let (ours_med, naive_med) = (median(ours.clone()), median(naive.clone()));

    // --- 2. N=4 against N=1 ------------------------------------------------------------------
    let small = threadsmith_tests::gitrepo::calc_repo(&env.dir.path().join("calc"));
    let mut wall: HashMap<(u64, u32), Duration> = HashMap::new();
    let latencies = [250u64, 1000];
    for latency in latencies {
        env.model.set_latency(Duration::from_millis(latency));
        for n in [1u32, 4] {
            for k in 1..=n {
                env.model.script(
                    u64::from(k),
                    vec![
                        Turn::Call("run_command", json!({"command": "bash test.sh"})),
                        Turn::Call("read_file", json!({"path": "calc.sh"})),
                        Turn::Call("write_file", json!({"path": "calc.sh", "content": threadsmith_tests::gitrepo::FIXED_CALC})),
                        Turn::Call("run_command", json!({"command": "bash test.sh"})),
                        Turn::Call("finish", json!({"summary": "fixed", "confidence": 0.9})),
                    ],
                );
            }
            let t = Instant::now();
            let report = env.run(&small, n, "fix add").await;
            wall.insert((latency, n), t.elapsed());
            assert!(report.task.error.is_none(), "{:?}", report.task.error);
            // Each seed's script starts over for the next run.
            env.model.reset();
        }
    }

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let docker_version = env
        .svc
        .runner
        .docker()
        .server_version()
        .await
        .unwrap_or_default();
    println!("## Rollout overhead (issue 2)\n");
    println!(
        "`cargo bench -p threadsmith-tests --bench rollouts` — {SAMPLES} samples each, medians.\n"
    );
    println!(
        "Machine: {cpu}, {cores} cores; Docker {docker_version}. Repository: {FILES} files, {:.1} MB.\n",
        size as f64 / 1e6
    );
    println!("| per task (once) | time |\n|---|---|");
    println!("| mirror clone (first fetch) | {} |", secs(mirror_time));
    println!("| seed archive + upload | {} |\n", secs(seed_time));
    println!("| per rollout | median | min | max |\n|---|---|---|---|");
    println!(
        "| threadsmith (container up, copy from seed, write, diff, container gone) | {} | {} | {} |",
        secs(ours_med),
        secs(*ours.iter().min().unwrap()),
        secs(*ours.iter().max().unwrap())
    );
    println!(
        "| naive (fresh container, `git clone` inside, write, diff, container gone) | {} | {} | {} |",
        secs(naive_med),
        secs(*naive.iter().min().unwrap()),
        secs(*naive.iter().max().unwrap())
    );
    println!(
        "| naive on a tmpfs (as above, but the clone goes to a tmpfs) | {} | {} | {} |",
        secs(median(naive_tmpfs.clone())),
        secs(*naive_tmpfs.iter().min().unwrap()),
        secs(*naive_tmpfs.iter().max().unwrap())
    );
    println!(
        "\n**ratio threadsmith / naive: {:.2}×** (target ≤ 0.3×); median overhead {} (target ≤ 1.5 s)\n",
        ours_med.as_secs_f64() / naive_med.as_secs_f64(),
        secs(ours_med)
    );
    println!("## Parallel rollouts\n");
    println!(
        "The calc repository; 5 model calls per rollout (4 tools and finish), the tests run after.\n"
    );
    println!("| model latency per call | N=1 | N=4 | N=4 / N=1 |\n|---|---|---|---|");
    for latency in latencies {
        let (one, four) = (wall[&(latency, 1)], wall[&(latency, 4)]);
        println!(
            "| {latency} ms | {} | {} | **{:.2}×** |",
            secs(one),
            secs(four),
            four.as_secs_f64() / one.as_secs_f64()
        );
    }
    println!("\nTarget: N=4 at most 1.25× N=1.\n");
    eprintln!("bench took {}", secs(started.elapsed()));
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// The naive way: a fresh container per rollout that clones the repository itself.
///
/// `on_tmpfs` puts the clone on a tmpfs like threadsmith's workspace; otherwise it goes where a
/// plain `docker run … git clone` puts it, in the container's own file system.
async fn naive_rollout(env: &threadsmith_tests::TestEnv, mirror: &Path, on_tmpfs: bool) {
    let docker = env.svc.runner.docker().client();
    let body = ContainerCreateBody {
        image: Some(DEFAULT_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        user: Some(if on_tmpfs { "1000:1000" } else { "0:0" }.into()),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_TASK.to_string(), "bench-naive".to_string()),
        ])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            binds: Some(vec![format!("{}:/mirror:ro", mirror.display())]),
            tmpfs: on_tmpfs.then(|| {
                HashMap::from([(
                    "/work".to_string(),
                    "rw,size=1g,uid=1000,gid=1000".to_string(),
                )])
            }),
            memory: Some(1 << 30),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = docker.create_container(None, body).await.unwrap();
    docker.start_container(&c.id, None).await.unwrap();
    let exec = docker
        .create_exec(
            &c.id,
            bollard::exec::CreateExecOptions {
                cmd: Some(vec![
                    "bash",
                    "-c",
                    // /work: a tmpfs, or a folder of the container's own file system.
                    "mkdir -p /work 2>/dev/null; cd /tmp && git config --global --add safe.directory '*' && git clone -q /mirror /work/repo && cd /work/repo && echo changed > src/m00/f0000.txt && git add -A && git diff --cached --binary HEAD | wc -c",
                ]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                env: Some(vec!["HOME=/tmp"]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut text = String::new();
    if let bollard::exec::StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.unwrap()
    {
        use futures_util::StreamExt;
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&chunk.to_string());
        }
    }
    let code = docker.inspect_exec(&exec.id).await.unwrap().exit_code;
    assert_eq!(code, Some(0), "the naive clone failed: {text}");
    docker
        .remove_container(
            &c.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .unwrap();
}
