//! `cargo bench -p threadsmith-tests --bench rollouts`
//!
//! 1. Overhead per rollout (container up, working copy in place, a scripted one-file change,
//!    diff collected: the result known; the container's removal follows in the background and
//!    is reported on its own), phase by phase, with a zero-latency scripted model, on a
//!    generated repository of 50 MB in 5,000 files — side by side, in the same run, with the
//!    naive way (a fresh `git clone` inside a fresh container per rollout, in the container's
//!    file system and on a tmpfs) — and on one of 500 MB in 50,000 files, to see how the cost
//!    grows with the repository.
//! 2. Wall time of a task with N=4 rollouts against N=1, with a fixed-latency scripted model.
//!
//! Prints a Markdown report, ready for docs/BENCHMARKS.md. Ratios, not absolute times, are the
//! figures to compare across machines. It prints; it never fails on timing.
//!
//! Settings (environment):
//! - `THREADSMITH_BENCH_ROLLOUTS` — samples per row (default 7);
//! - `THREADSMITH_BENCH_LARGE_FILES` — files of the large repository (default 50000; 0 skips it);
//! - `THREADSMITH_BENCH_PARALLEL` — `0` skips part 2.

#[path = "rollouts/naive.rs"]
mod naive;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use threadsmith_runner::image::DEFAULT_IMAGE;
use threadsmith_runner::{PhaseTimings, RepoSource, TaskPlan, sampling_for};
use threadsmith_tests::gitrepo::git;
use threadsmith_tests::{TestEnv, Turn, env};
use tokio_util::sync::CancellationToken;

const SMALL_FILES: usize = 5_000;
const FILE_BYTES: usize = 10_000;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Deterministic, poorly compressible text: `files` files of 10 kB, 100 to a folder.
fn generate_repo(dir: &Path, files: usize) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    let folders = files.div_ceil(100).max(1);
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..files {
        let sub = dir.join(format!("src/m{:02}", i % folders));
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
        std::fs::write(sub.join(format!("f{i:05}.txt")), text).unwrap();
    }
    // Stored, not compressed: the set-up of the benchmark, not what it measures.
    git(dir, &["config", "core.looseCompression", "0"]);
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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// One row of the per-rollout table: every sample's phases, its total (until the result is
/// known) and its end (until the sandbox is gone: later when it is removed in the background).
#[derive(Default)]
struct Samples {
    phases: Vec<PhaseTimings>,
    totals: Vec<Duration>,
    ends: Vec<Duration>,
}

impl Samples {
    /// A sample whose removal is part of its total.
    fn push(&mut self, phases: PhaseTimings, total: Duration) {
        self.push_removed_after(phases, total, Duration::ZERO);
    }

    /// A sample whose sandbox was removed after its result was known (`phases.removal`), with
    /// `waited` between the two (the sandbox's removal already under way).
    fn push_removed_after(&mut self, phases: PhaseTimings, total: Duration, waited: Duration) {
        self.phases.push(phases);
        self.totals.push(total);
        self.ends.push(total + waited);
    }

    fn total(&self) -> Duration {
        median(self.totals.clone())
    }

    fn end(&self) -> Duration {
        median(self.ends.clone())
    }

    fn row(&self, name: &str) -> String {
        let phase =
            |f: fn(&PhaseTimings) -> Duration| secs(median(self.phases.iter().map(f).collect()));
        format!(
            "| {name} | {} | {} | {} | {} | {} | **{}** | {} | {} | {} |",
            phase(|p| p.sandbox),
            phase(|p| p.copy),
            phase(|p| p.agent),
            phase(|p| p.diff),
            phase(|p| p.removal),
            secs(self.total()),
            secs(*self.totals.iter().min().unwrap()),
            secs(*self.totals.iter().max().unwrap()),
            secs(self.end()),
        )
    }
}

/// What a repository cost once per task.
struct Prepared {
    files: usize,
    bytes: u64,
    generate: Duration,
    mirror: Duration,
    seed: Duration,
    mirror_path: std::path::PathBuf,
    plan: Arc<TaskPlan>,
}

async fn prepare(env: &TestEnv, name: &str, files: usize) -> Prepared {
    let repo = env.dir.path().join(name);
    let t = Instant::now();
    generate_repo(&repo, files);
    let generate = t.elapsed();
    let bytes = walk_size(&repo.join("src"));
    let svc = &env.svc;
    let source = RepoSource::parse(&repo.display().to_string()).unwrap();
    let t = Instant::now();
    let prepared = svc.repos.prepare(&source, None).await.unwrap();
    let mirror = t.elapsed();
    let task_id = format!("bench-{name}");
    let t = Instant::now();
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
    let seed = t.elapsed();
    let mut settings = threadsmith_bot::config::SandboxSection::default()
        .or(&svc.config.sandbox)
        .resolve(DEFAULT_IMAGE)
        .unwrap();
    settings.test = None;
    eprintln!("{name}: {files} files generated in {}", secs(generate));
    Prepared {
        files,
        bytes,
        generate,
        mirror,
        seed,
        mirror_path: prepared.mirror,
        plan: Arc::new(TaskPlan {
            task_id,
            instructions: "bench".into(),
            settings,
            seed_volume,
            budget: None,
            start_patch: None,
            environment: None,
        }),
    }
}

/// One threadsmith rollout whose scripted model changes one file at once, added to `row`: its
/// total is the wait for its result; its sandbox's removal, which follows in the background, is
/// awaited before the next sample and reported as its removal phase.
async fn ours(env: &TestEnv, plan: &Arc<TaskPlan>, k: u32, row: &mut Samples) {
    let sampling = sampling_for(k, &[0.5], 100);
    env.model.script(
        sampling.seed,
        vec![
            Turn::Call(
                "write_file",
                json!({"path": "src/m00/f00000.txt", "content": "changed\n"}),
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
    let waited = t.elapsed() - total;
    drain.await.unwrap();
    assert_eq!(results[0].diff.files.len(), 1, "{:?}", results[0].detail);
    assert_eq!(removals.len(), 1, "one sandbox removed");
    let mut phases = results[0].timings;
    phases.removal = removals[0];
    row.push_removed_after(phases, total, waited);
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let load_before = load_average();
    let samples = setting("THREADSMITH_BENCH_ROLLOUTS", 7).max(1) as u32;
    let large_files = setting("THREADSMITH_BENCH_LARGE_FILES", 50_000);
    let parallel = setting("THREADSMITH_BENCH_PARALLEL", 1) != 0;
    let env = env(|c| {
        // The 500 MB repository's working copy fits; workspace + tmp within ¾ of memory.
        c.sandbox.workspace_size = Some("2g".into());
        c.sandbox.memory = Some("3g".into());
    })
    .await;

    // --- 1. overhead per rollout ------------------------------------------------------------
    let small = prepare(&env, "small", SMALL_FILES).await;
    let (mut ours_small, mut naive, mut naive_tmpfs) = Default::default();
    for k in 1..=samples {
        ours(&env, &small.plan, k, &mut ours_small).await;
        for (on_tmpfs, row) in [(false, &mut naive), (true, &mut naive_tmpfs)] {
            let t = Instant::now();
            let phases = naive::rollout(&env, &small.mirror_path, on_tmpfs).await;
            Samples::push(row, phases, t.elapsed());
        }
    }
    env.runner.release_task(&small.plan.task_id).await;
    eprintln!("{}", ours_small.row("threadsmith, small"));
    eprintln!("{}", naive.row("naive, small"));
    eprintln!("{}", naive_tmpfs.row("naive on a tmpfs, small"));
    let large = if large_files > 0 {
        let large = prepare(&env, "large", large_files).await;
        let mut row = Samples::default();
        // The same seeds again: their scripts start over.
        env.model.reset();
        for k in 1..=samples {
            ours(&env, &large.plan, k, &mut row).await;
        }
        env.runner.release_task(&large.plan.task_id).await;
        eprintln!("{}", row.row("threadsmith, large"));
        Some((large, row))
    } else {
        None
    };

    // --- 2. N=4 against N=1 ------------------------------------------------------------------
    let latencies = [250u64, 1000];
    let mut wall: HashMap<(u64, u32), Duration> = HashMap::new();
    if parallel {
        let calc = threadsmith_tests::gitrepo::calc_repo(&env.dir.path().join("calc"));
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
                let report = env.run(&calc, n, "fix add").await;
                wall.insert((latency, n), t.elapsed());
                assert!(report.task.error.is_none(), "{:?}", report.task.error);
                // Each seed's script starts over for the next run.
                env.model.reset();
            }
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
    let docker_version = env.docker.server_version().await.unwrap_or_default();
    let load_after = load_average();
    println!("## Rollout overhead\n");
    println!(
        "`cargo bench -p threadsmith-tests --bench rollouts` — {samples} samples per row \
         (`THREADSMITH_BENCH_ROLLOUTS`), medians.\n"
    );
    println!(
        "Machine: {cpu}, {cores} cores; Docker {docker_version}. Load average (1, 5, 15 min): \
         {load_before} at the start, {load_after} at the end.\n"
    );
    let mut repos = vec![&small];
    if let Some((large, _)) = &large {
        repos.push(large);
    }
    println!(
        "| per task (once) | generate and commit | mirror clone (first fetch) | seed archive + upload |\n|---|---|---|---|"
    );
    for r in &repos {
        println!(
            "| {} files, {:.0} MB | {} | {} | {} |",
            r.files,
            r.bytes as f64 / 1e6,
            secs(r.generate),
            secs(r.mirror),
            secs(r.seed)
        );
    }
    println!(
        "\nThreadsmith's rollouts announce their result before their sandbox is removed: that \
         removal runs in the background (awaited before the task ends), so it is not in their \
         total; its own time is in the removal column, and \"until removed\" is the median time \
         until the sandbox was gone. The naive rollouts remove theirs before they end.\n"
    );
    println!(
        "| per rollout (phase medians) | sandbox up | working copy | agent | diff | removal | total | min | max | until removed |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    let small_name = format!("{} files, {:.0} MB", small.files, small.bytes as f64 / 1e6);
    println!("{}", ours_small.row(&format!("threadsmith, {small_name}")));
    if let Some((large, row)) = &large {
        println!(
            "{}",
            row.row(&format!(
                "threadsmith, {} files, {:.0} MB",
                large.files,
                large.bytes as f64 / 1e6
            ))
        );
    }
    println!(
        "{}",
        naive.row(&format!(
            "naive: `git clone` in the container, {small_name}"
        ))
    );
    println!(
        "{}",
        naive_tmpfs.row(&format!("naive: `git clone` onto a tmpfs, {small_name}"))
    );
    let ratio = |a: &Samples, b: &Samples| a.total().as_secs_f64() / b.total().as_secs_f64();
    println!(
        "\nMedian overhead per rollout: **{}** (target ≤ 1.5 s); **{:.2}×** the naive clone onto a tmpfs (target ≤ 0.5×), {:.2}× the naive clone.",
        secs(ours_small.total()),
        ratio(&ours_small, &naive_tmpfs),
        ratio(&ours_small, &naive),
    );
    if let Some((large, row)) = &large {
        println!(
            "With {} files: **{}**, **{:.2}×** the {}-file figure (target ≤ 3×); until the \
             sandbox is gone, {} against {}: {:.2}×.",
            large.files,
            secs(row.total()),
            ratio(row, &ours_small),
            small.files,
            secs(row.end()),
            secs(ours_small.end()),
            row.end().as_secs_f64() / ours_small.end().as_secs_f64(),
        );
    }
    println!();
    if parallel {
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
    }
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
