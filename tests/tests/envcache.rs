//! The environment cache on real Docker (runner/src/environment.rs): a rollout whose setup
//! succeeded saves a snapshot; the next rollouts of the same key start from it and skip the
//! setup, with the task's own working copy; a changed lockfile or an expired snapshot means a new
//! build; four tasks needing the same missing snapshot build it once; snapshots are pruned; and
//! none holds a secret.
//!
//! Every test uses a repository name of its own, so that its snapshots are its own (the tests
//! share the engine), and removes them at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use threadsmith_bot::config::{SandboxSection, environment_plan};
use threadsmith_runner::environment::{EnvironmentCache, Snapshot, to_prune};
use threadsmith_runner::image::DEFAULT_IMAGE;
use threadsmith_runner::{CommandKind, RepoSource, RolloutResult, TaskPlan, sampling_for};
use threadsmith_tests::gitrepo::{git, repo_with};
use threadsmith_tests::{MODEL_KEY, TestEnv, env};
use tokio_util::sync::CancellationToken;

/// Builds the dependencies (about a second), dumps its environment into $HOME and into an
/// ignored folder, and touches a tracked file (which must not be kept).
const SETUP: &str = "mkdir -p node_modules/dep \"$HOME/.cache/dep\" && sleep 1 \
    && echo \"built from $(cat package-lock.json)\" > node_modules/dep/built.txt \
    && env > \"$HOME/.cache/dep/env.txt\" && env > node_modules/dep/env.txt \
    && echo changed-by-setup >> src/app.txt";

/// The agent: says what it finds.
const AGENT: &str = "cat node_modules/dep/built.txt; test -s \"$HOME/.cache/dep/env.txt\" && echo home-kept; \
    cat src/app.txt";

fn project(dir: &Path) -> PathBuf {
    repo_with(
        dir,
        &[
            (".gitignore", "node_modules/\n"),
            ("package-lock.json", "lock-v1\n"),
            ("src/app.txt", "app v1\n"),
        ],
    )
}

fn commit(repo: &Path, path: &str, text: &str) {
    std::fs::write(repo.join(path), text).unwrap();
    git(repo, &["commit", "--quiet", "-am", "change"]);
}

struct World {
    env: TestEnv,
    repo: PathBuf,
    /// The repository's name in the key: this test's own.
    name: String,
}

async fn world() -> World {
    let env = env(|c| {
        c.sandbox.command_timeout_secs = Some(60);
        c.sandbox.environment_ttl = Some("12h".into());
    })
    .await;
    let repo = project(&env.dir.path().join("app"));
    let name = format!("envtest-{}", uuid::Uuid::new_v4().simple());
    World { env, repo, name }
}

impl World {
    fn cache(&self) -> &dyn EnvironmentCache {
        self.env.runner.backend().environments().unwrap()
    }

    /// A task's plan on the repository's current commit, its environment living `ttl`.
    async fn plan(&self, ttl: Duration) -> Arc<TaskPlan> {
        let svc = &self.env.svc;
        let source = RepoSource::parse(&self.repo.display().to_string()).unwrap();
        let prepared = svc.repos.prepare(&source, None).await.unwrap();
        let task_id = format!("env{}", uuid::Uuid::new_v4().simple());
        let seed = self
            .env
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
            setup: Some(SETUP.into()),
            agent: Some("external".into()),
            external_command: Some(AGENT.into()),
            ..SandboxSection::default()
        }
        .or(&svc.config.sandbox);
        let settings = section.resolve(DEFAULT_IMAGE).unwrap();
        let listing = svc.repos.tree_listing(&prepared).await.unwrap();
        let mut environment =
            environment_plan(&svc.config, &section, &settings, &self.name, &listing)
                .unwrap()
                .unwrap();
        environment.ttl = ttl;
        // Never prunes another test's snapshots for room.
        environment.budget_bytes = u64::MAX;
        Arc::new(TaskPlan {
            task_id,
            instructions: "look around".into(),
            settings,
            seed_volume: seed,
            environment: Some(environment),
            budget: None,
            start_patch: None,
        })
    }

    async fn run(&self, plan: Arc<TaskPlan>) -> RolloutResult {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let task_id = plan.task_id.clone();
        let mut results = self
            .env
            .runner
            .run_rollouts(
                plan,
                vec![(1, sampling_for(1, &[0.5], 1))],
                tx,
                CancellationToken::new(),
            )
            .await;
        drain.await.unwrap();
        self.env.runner.release_task(&task_id).await;
        results.remove(0)
    }

    /// This test's snapshots.
    async fn snapshots(&self) -> Vec<Snapshot> {
        let all = self.cache().list().await.unwrap();
        all.into_iter().filter(|s| s.repo == self.name).collect()
    }

    async fn remove_all(&self) {
        for s in self.snapshots().await {
            self.cache().remove(&s).await.unwrap();
        }
        assert!(self.snapshots().await.is_empty());
    }
}

fn ran_setup(r: &RolloutResult) -> bool {
    r.commands.iter().any(|c| c.kind == CommandKind::Setup)
}

fn agent_said(r: &RolloutResult) -> String {
    r.commands
        .iter()
        .filter(|c| c.kind == CommandKind::External)
        .map(|c| c.output.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_environment_is_started_from_and_a_changed_lockfile_builds_another() {
    let w = world().await;
    let day = Duration::from_secs(86_400);

    let cold = w.run(w.plan(day).await).await;
    assert!(ran_setup(&cold), "{cold:?}");
    let saved = cold
        .environment
        .clone()
        .expect("the cold rollout saved a snapshot");
    assert!(!saved.from_snapshot, "{saved:?}");
    assert!(saved.snapshot.starts_with("threadsmith-env:"), "{saved:?}");

    // A change of a file that is no input: the same snapshot, the task's own working copy.
    commit(&w.repo, "src/app.txt", "app v2\n");
    let warm = w.run(w.plan(day).await).await;
    let used = warm
        .environment
        .clone()
        .expect("the warm rollout says which snapshot");
    assert!(used.from_snapshot, "{warm:?}");
    assert_eq!(used.snapshot, saved.snapshot);
    assert!(
        !ran_setup(&warm),
        "the setup ran again: {:?}",
        warm.commands
    );
    let said = agent_said(&warm);
    assert!(
        said.contains("built from lock-v1"),
        "{said} {} {:?}",
        warm.detail,
        warm.commands
    );
    assert!(said.contains("home-kept"), "{said}");
    assert!(said.contains("app v2"), "{said}");
    assert!(
        !said.contains("changed-by-setup"),
        "the setup's change to a tracked file was kept: {said}"
    );
    assert!(
        warm.diff.is_empty(),
        "restored files are no change: {}",
        warm.diff.patch
    );

    // The lockfile changes: a new key, a new build.
    commit(&w.repo, "package-lock.json", "lock-v2\n");
    let rebuilt = w.run(w.plan(day).await).await;
    let again = rebuilt.environment.clone().unwrap();
    assert!(!again.from_snapshot && ran_setup(&rebuilt), "{rebuilt:?}");
    assert_ne!(again.snapshot, saved.snapshot);
    let next = w.run(w.plan(day).await).await;
    assert!(
        agent_said(&next).contains("built from lock-v2"),
        "{}",
        agent_said(&next)
    );
    assert_eq!(next.environment.unwrap().snapshot, again.snapshot);
    assert_eq!(w.snapshots().await.len(), 2);
    w.remove_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_snapshot_is_built_again_and_snapshots_are_pruned() {
    let w = world().await;
    let day = Duration::from_secs(86_400);
    let first = w.run(w.plan(day).await).await;
    let kept = w.snapshots().await;
    assert_eq!(kept.len(), 1, "{first:?}");
    // Expired at once for this task: it builds again; the name moves to the new image, and the
    // save's pruning removes the replaced one.
    let second = w.run(w.plan(Duration::from_millis(1)).await).await;
    for r in [&first, &second] {
        let used = r.environment.clone().unwrap();
        assert!(!used.from_snapshot && ran_setup(r), "{r:?}");
    }
    let now = w.snapshots().await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].name, kept[0].name);
    assert_ne!(now[0].id, kept[0].id);
    // A day's time to live keeps it; a millisecond's, or a budget of nothing, removes it.
    let at = chrono::Utc::now();
    assert!(to_prune(&now, day, u64::MAX, at).is_empty());
    assert_eq!(
        to_prune(&now, Duration::from_millis(1), u64::MAX, at).len(),
        1
    );
    let doomed = to_prune(&now, day, 0, at);
    assert_eq!(doomed.len(), 1);
    assert!(w.cache().remove(&doomed[0]).await.unwrap());
    assert!(w.snapshots().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn four_tasks_needing_the_same_missing_snapshot_build_it_once() {
    let w = world().await;
    let day = Duration::from_secs(86_400);
    let mut plans = Vec::new();
    for _ in 0..4 {
        plans.push(w.plan(day).await);
    }
    let results = futures_util::future::join_all(plans.into_iter().map(|p| w.run(p))).await;
    let built: Vec<_> = results.iter().filter(|r| ran_setup(r)).collect();
    assert_eq!(built.len(), 1, "{results:?}");
    let names: Vec<_> = results
        .iter()
        .map(|r| {
            r.environment
                .clone()
                .expect("every rollout says its environment")
        })
        .collect();
    assert_eq!(
        names.iter().filter(|u| u.from_snapshot).count(),
        3,
        "{names:?}"
    );
    assert!(
        names.iter().all(|u| u.snapshot == names[0].snapshot),
        "{names:?}"
    );
    for r in &results {
        assert!(
            agent_said(r).contains("built from lock-v1"),
            "{}",
            agent_said(r)
        );
    }
    assert_eq!(w.snapshots().await.len(), 1);
    w.remove_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_holds_no_secret() {
    let w = world().await;
    let cold = w.run(w.plan(Duration::from_secs(86_400)).await).await;
    assert!(cold.environment.is_some(), "{cold:?}");
    let mine = w.snapshots().await;
    assert_eq!(mine.len(), 1);
    let docker = w.env.docker.client();
    // The image's own settings.
    let image = docker.inspect_image(&mine[0].id).await.unwrap();
    let config = format!("{:?}", image.config);
    assert!(!config.contains(MODEL_KEY), "{config}");
    // Every file it keeps: the setup's environment dumps are there, without the secret.
    let name = format!("envtest-read-{}", uuid::Uuid::new_v4().simple());
    let body = bollard::models::ContainerCreateBody {
        image: Some(mine[0].id.clone()),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            "cat /.threadsmith-env/tmp/.cache/dep/env.txt /.threadsmith-env/workspace/node_modules/dep/env.txt; grep -rl -- \"$0\" /.threadsmith-env || echo no-secret-found".into(),
            MODEL_KEY.into(),
        ]),
        network_disabled: Some(true),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&name)
        .build();
    docker.create_container(Some(options), body).await.unwrap();
    docker.start_container(&name, None).await.unwrap();
    let mut waited = docker.wait_container(&name, None);
    while let Some(item) = futures_util::StreamExt::next(&mut waited).await {
        item.unwrap();
    }
    let logs: Vec<_> = futures_util::StreamExt::collect(
        docker.logs(
            &name,
            Some(
                bollard::query_parameters::LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        ),
    )
    .await;
    let text: String = logs.into_iter().map(|l| l.unwrap().to_string()).collect();
    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .unwrap();
    assert!(
        text.contains("HOME=/tmp"),
        "the dumps are in the snapshot: {text}"
    );
    assert!(text.contains("no-secret-found"), "{text}");
    assert!(!text.contains(MODEL_KEY), "{text}");
    w.remove_all().await;
}
