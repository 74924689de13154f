//! `cargo bench -p threadsmith-tests --bench envcache`
//!
//! The environment cache (runner/src/environment.rs) on real Docker: a repository whose setup
//! takes about 20 s (it builds a small dependency tree from the repository's sample data into
//! `node_modules/` and `$HOME/.cache`, offline; the build's time is a fixed wait, so that the
//! figure does not depend on how busy the shared machine is), a rollout's start-to-agent time
//! (from the call to the agent's first step) side by side:
//! - plain: the same repository without a setup (the overhead every rollout pays);
//! - cold: an empty cache (the setup runs, the snapshot is saved);
//! - warm: the snapshot exists (the setup is skipped, its files are put back).
//!
//! Then N=4 tasks started at the same moment with a cold cache: how many ran the setup (1 is
//! the target) and their start-to-agent times. Prints Markdown for docs/BENCHMARKS.md; never
//! fails on timing.
//!
//! Settings (environment): `THREADSMITH_BENCH_SAMPLES` (warm and plain samples, default 5),
//! `THREADSMITH_BENCH_SETUP_SECS` (the build's wait, default 20).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use threadsmith_bot::config::{SandboxSection, environment_plan};
use threadsmith_runner::image::DEFAULT_IMAGE;
use threadsmith_runner::{
    CommandKind, Phase, RepoSource, RolloutEvent, RolloutResult, TaskPlan, sampling_for,
};
use threadsmith_tests::gitrepo::repo_with;
use threadsmith_tests::{TestEnv, env};
use tokio_util::sync::CancellationToken;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Sample data: 20 packages of 200 lines each.
fn project(dir: &Path) {
    let mut files = vec![
        (".gitignore".to_string(), "node_modules/\n".to_string()),
        ("package-lock.json".to_string(), "lock-v1\n".to_string()),
    ];
    for p in 0..20 {
        let text: String = (0..200).map(|l| format!("pkg{p} line {l}\n")).collect();
        files.push((format!("deps/pkg{p}/src.txt"), text));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    repo_with(dir, &refs);
}

fn setup(secs: u64) -> String {
    format!(
        "set -e; mkdir -p \"$HOME/.cache/deps\"; for d in deps/*/; do n=$(basename \"$d\"); \
         mkdir -p node_modules/$n; sort -r \"$d/src.txt\" | gzip -9 > node_modules/$n/build.gz; \
         cp node_modules/$n/build.gz \"$HOME/.cache/deps/$n.gz\"; done; sleep {secs}"
    )
}

async fn plan(env: &TestEnv, repo: &Path, name: &str, with_setup: Option<&str>) -> Arc<TaskPlan> {
    let svc = &env.svc;
    let source = RepoSource::parse(&repo.display().to_string()).unwrap();
    let prepared = svc.repos.prepare(&source, None).await.unwrap();
    let task_id = format!("bench{}", uuid::Uuid::new_v4().simple());
    let seed = env
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
    let section = SandboxSection {
        setup: with_setup.map(String::from),
        agent: Some("external".into()),
        external_command: Some("ls node_modules | wc -l".into()),
        ..SandboxSection::default()
    }
    .or(&svc.config.sandbox);
    let mut settings = section.resolve(DEFAULT_IMAGE).unwrap();
    settings.test = None;
    let listing = svc.repos.tree_listing(&prepared).await.unwrap();
    let environment = environment_plan(&svc.config, &section, &settings, name, &listing)
        .unwrap()
        .map(|mut p| {
            p.budget_bytes = u64::MAX;
            p
        });
    Arc::new(TaskPlan {
        task_id,
        instructions: "bench".into(),
        settings,
        seed_volume: seed,
        environment,
        budget: None,
        start_patch: None,
    })
}

/// One rollout: its result and its start-to-agent time.
async fn start_to_agent(env: &TestEnv, plan: Arc<TaskPlan>) -> (RolloutResult, Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t = Instant::now();
    let watch = tokio::spawn(async move {
        let mut at = None;
        while let Some(event) = rx.recv().await {
            if at.is_none()
                && matches!(
                    event,
                    RolloutEvent::Phase {
                        phase: Phase::Agent { .. },
                        ..
                    }
                )
            {
                at = Some(t.elapsed());
            }
        }
        at
    });
    let task_id = plan.task_id.clone();
    let mut results = env
        .runner
        .run_rollouts(
            plan,
            vec![(1, sampling_for(1, &[0.5], 1))],
            tx,
            CancellationToken::new(),
        )
        .await;
    let at = watch.await.unwrap().expect("the agent started");
    env.runner.release_task(&task_id).await;
    (results.remove(0), at)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let samples = setting("THREADSMITH_BENCH_SAMPLES", 5).max(1);
    let setup_secs = setting("THREADSMITH_BENCH_SETUP_SECS", 20);
    let env = env(|c| {
        c.sandbox.command_timeout_secs = Some(setup_secs + 120);
        c.sandbox.environment_ttl = Some("12h".into());
    })
    .await;
    let repo = env.dir.path().join("deps-project");
    project(&repo);
    let script = setup(setup_secs);
    let name = format!("bench-{}", uuid::Uuid::new_v4().simple());

    let mut plain = Vec::new();
    for _ in 0..samples {
        plain.push(
            start_to_agent(&env, plan(&env, &repo, &name, None).await)
                .await
                .1,
        );
    }
    let (cold_result, cold) =
        start_to_agent(&env, plan(&env, &repo, &name, Some(&script)).await).await;
    assert!(cold_result.environment.is_some(), "{}", cold_result.detail);
    let mut warm = Vec::new();
    for _ in 0..samples {
        let (r, t) = start_to_agent(&env, plan(&env, &repo, &name, Some(&script)).await).await;
        assert!(
            r.environment.is_some_and(|e| e.from_snapshot),
            "{}",
            r.detail
        );
        warm.push(t);
    }
    let (plain_m, warm_m) = (median(plain.clone()), median(warm.clone()));
    println!("### Environment cache: start-to-agent time (setup of {setup_secs} s)\n");
    println!("| | plain (no setup) | cold cache | warm cache | warm over plain |");
    println!("|---|---|---|---|---|");
    println!(
        "| median of {samples} (cold: 1) | {} | {} | {} | {} |",
        secs(plain_m),
        secs(cold),
        secs(warm_m),
        secs(warm_m.saturating_sub(plain_m))
    );
    println!(
        "| all samples | {} | {} | {} | |\n",
        plain
            .iter()
            .map(|d| secs(*d))
            .collect::<Vec<_>>()
            .join(", "),
        secs(cold),
        warm.iter().map(|d| secs(*d)).collect::<Vec<_>>().join(", ")
    );

    // N=4 tasks at the same moment, a key no snapshot has yet.
    let fresh = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let mut plans = Vec::new();
    for _ in 0..4 {
        plans.push(plan(&env, &repo, &fresh, Some(&script)).await);
    }
    let t = Instant::now();
    let runs =
        futures_util::future::join_all(plans.into_iter().map(|p| start_to_agent(&env, p))).await;
    let wall = t.elapsed();
    let setups = runs
        .iter()
        .filter(|(r, _)| r.commands.iter().any(|c| c.kind == CommandKind::Setup))
        .count();
    let from_snapshot = runs
        .iter()
        .filter(|(r, _)| r.environment.as_ref().is_some_and(|e| e.from_snapshot))
        .count();
    println!("### N=4 tasks at once, cold cache\n");
    println!("| setups run | started from the snapshot | start-to-agent | wall |");
    println!("|---|---|---|---|");
    println!(
        "| {setups} | {from_snapshot} | {} | {} |",
        runs.iter()
            .map(|(_, d)| secs(*d))
            .collect::<Vec<_>>()
            .join(", "),
        secs(wall)
    );

    // The bench's own snapshots go.
    let cache = env.runner.backend().environments().unwrap();
    for s in cache.list().await.unwrap() {
        if s.repo == name || s.repo == fresh {
            cache.remove(&s).await.unwrap();
        }
    }
}
