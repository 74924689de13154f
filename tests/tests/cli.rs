//! The `threadsmith` binary as a user runs it: `run`, `show`, `approve`, `doctor`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::json;
use threadsmith_tests::gitrepo::{FIXED_CALC, calc_repo};
use threadsmith_tests::{MODEL_KEY, TestEnv, Turn, env, threadsmith};

/// What the binary is pointed at: this test's database, cache and fake model.
#[derive(Clone)]
struct Setup {
    dir: PathBuf,
    database_url: String,
    data_dir: PathBuf,
    model_url: String,
}

impl Setup {
    fn of(env: &TestEnv) -> Self {
        Self {
            dir: env.dir.path().to_path_buf(),
            database_url: env.svc.config.database_url(),
            data_dir: env.svc.config.data_dir(),
            model_url: env.model.base_url(),
        }
    }
}

/// Runs the binary off the async runtime, so that the fake model keeps answering.
async fn cli(setup: &Setup, args: &[&str]) -> Output {
    let setup = setup.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(threadsmith())
            .args(&args)
            .current_dir(&setup.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &setup.dir)
            .env("THREADSMITH_DATABASE_URL", &setup.database_url)
            .env("THREADSMITH_DATA_DIR", &setup.data_dir)
            .env("THREADSMITH_MODEL_BASE_URL", &setup.model_url)
            .env("THREADSMITH_MODEL", "fake-model")
            .env("THREADSMITH_MODEL_API_KEY", MODEL_KEY)
            .output()
            .expect("run threadsmith")
    })
    .await
    .expect("join")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn run_then_show_then_doctor() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    env.model.script(
        1,
        vec![
            Turn::Call(
                "write_file",
                json!({"path": "calc.sh", "content": FIXED_CALC}),
            ),
            Turn::Call(
                "finish",
                json!({"summary": "Fixed add.", "confidence": 0.9}),
            ),
        ],
    );
    env.model
        .script(2, vec![Turn::Call("give_up", json!({"reason": "no idea"}))]);
    let repo_arg = repo.display().to_string();
    let setup = Setup::of(&env);
    let out = cli(
        &setup,
        &[
            "run", "--repo", &repo_arg, "-n", "2", "fix", "the", "add", "test",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("rank  rollout"), "{stdout}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(
        stderr.contains("rollout 1: "),
        "plain progress lines when not a terminal: {stderr}"
    );
    assert!(!stdout.contains(MODEL_KEY) && !stderr.contains(MODEL_KEY));
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    let patch = env
        .dir
        .path()
        .join("threadsmith-out")
        .join(&task.id[..8])
        .join("rollout-1.patch");
    let written = std::fs::read_to_string(&patch).expect("patch written");
    assert!(
        written.contains("+add() { echo $(( $1 + $2 )); }"),
        "{written}"
    );
    assert!(
        !env.dir
            .path()
            .join("threadsmith-out")
            .join(&task.id[..8])
            .join("rollout-2.patch")
            .exists()
    );

    let show = cli(&setup, &["show", &task.id[..8]]).await;
    let (stdout, _) = text(&show);
    assert_eq!(show.status.code(), Some(0));
    assert!(stdout.contains("title: fix the add test"), "{stdout}");
    assert!(
        stdout.contains("[write_file] write_file calc.sh"),
        "{stdout}"
    );
    let diff = cli(&setup, &["show", &task.id[..8], "--diff", "1"]).await;
    assert_eq!(text(&diff).0, written);
    let missing = cli(&setup, &["show", "zzzz"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).1.contains("no task starts with `zzzz`"));

    let doctor = cli(&setup, &["doctor"]).await;
    let (stdout, _) = text(&doctor);
    assert_eq!(doctor.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("✓ model endpoint"), "{stdout}");
    assert!(!stdout.contains(MODEL_KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_and_run_explain_an_unreachable_docker() {
    let env = env(|_| {}).await;
    let mut doctor = Command::new(threadsmith());
    doctor
        .arg("doctor")
        .current_dir(env.dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("THREADSMITH_DATABASE_URL", env.svc.config.database_url())
        .env_remove("THREADSMITH_MODEL_BASE_URL");
    let out = doctor.output().unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ docker"), "{stdout}");
    assert!(
        stdout.contains("cannot reach the Docker engine"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ model endpoint") && stdout.contains("not configured"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ database"), "{stdout}");

    let out = Command::new(threadsmith())
        .args(["run", "--repo", ".", "fix"])
        .current_dir(env.dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("THREADSMITH_DATABASE_URL", env.svc.config.database_url())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("cannot reach the Docker engine"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_without_tokens_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(threadsmith())
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("THREADSMITH_SLACK_BOT_TOKEN"), "{stderr}");
    assert!(stderr.contains("THREADSMITH_SLACK_APP_TOKEN"), "{stderr}");
    assert!(stderr.contains("manifest.yml"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_pushes_the_rollouts_branch() {
    let env = env(|_| {}).await;
    let seed = calc_repo(&env.dir.path().join("calc"));
    let bare = env.dir.path().join("calc.git");
    threadsmith_tests::gitrepo::git(
        env.dir.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            seed.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    env.model.script(
        1,
        vec![
            Turn::Call(
                "write_file",
                json!({"path": "calc.sh", "content": FIXED_CALC}),
            ),
            Turn::Call(
                "finish",
                json!({"summary": "Fixed add.", "confidence": 0.9}),
            ),
        ],
    );
    let report = env.run(&bare, 1, "add() subtracts").await;
    let task8 = report.task.id[..8].to_string();
    // Push-only mode, from the config file in the working directory.
    std::fs::write(
        env.dir.path().join("threadsmith.toml"),
        "[publish]\nmode = \"push\"\nauthor_name = \"ci\"\nauthor_email = \"ci@example.com\"\n",
    )
    .unwrap();
    let setup = Setup::of(&env);
    let branch = format!("threadsmith/{task8}-1");
    for _ in 0..2 {
        let out = cli(&setup, &["approve", &task8, "1"]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(stdout.contains(&format!("branch {branch}")), "{stdout}");
    }
    let git = |args: &[&str]| threadsmith_tests::gitrepo::git(&bare, args);
    assert_eq!(
        git(&["show", &format!("{branch}:calc.sh")]),
        FIXED_CALC.trim_end()
    );
    assert_eq!(git(&["log", "-1", "--format=%an", &branch]), "ci");
    assert_eq!(
        git(&["rev-list", "--count", &format!("main..{branch}")]),
        "1"
    );

    let out = cli(&setup, &["approve", &task8, "7"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("has no rollout 7"), "{stderr}");
    env.assert_nothing_left(&report.task.id).await;
}

/// The change every scripted rollout of these tests makes: add() fixed.
fn script_fix(env: &TestEnv, seed: u64) {
    env.model.script(
        seed,
        vec![
            Turn::Call(
                "write_file",
                json!({"path": "calc.sh", "content": FIXED_CALC}),
            ),
            Turn::Call(
                "finish",
                json!({"summary": "Fixed add.", "confidence": 0.9}),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_without_tests_gives_untested_rollouts_and_exit_3() {
    let env = env(|_| {}).await;
    let repo = threadsmith_tests::gitrepo::repo_with(
        &env.dir.path().join("notests"),
        &[("calc.sh", threadsmith_tests::gitrepo::BUGGY_CALC)],
    );
    script_fix(&env, 1);
    let setup = Setup::of(&env);
    let repo_arg = repo.display().to_string();
    let out = cli(&setup, &["run", "--repo", &repo_arg, "-n", "1", "fix add"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("untested"), "{stdout}");
    assert!(!stdout.contains("succeeded"), "{stdout}");
    assert!(stdout.contains("tests: none"), "{stdout}");
    assert!(stderr.contains("No rollout was tested"), "{stderr}");
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    let rollout = &env.svc.store.rollouts(&task.id).await.unwrap()[0];
    assert_eq!(rollout.outcome, Some(threadsmith_runner::Outcome::Untested));
    assert!(
        rollout
            .detail
            .as_deref()
            .unwrap()
            .contains("no test command"),
        "{rollout:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_makefile_test_target_is_detected_and_named() {
    let env = env(|_| {}).await;
    let repo = threadsmith_tests::gitrepo::repo_with(
        &env.dir.path().join("withmake"),
        &[
            ("calc.sh", threadsmith_tests::gitrepo::BUGGY_CALC),
            ("test.sh", threadsmith_tests::gitrepo::CALC_TESTS),
            (
                "Makefile",
                "build:\n\ttrue\n\ntest: build\n\tbash test.sh\n",
            ),
        ],
    );
    script_fix(&env, 1);
    let setup = Setup::of(&env);
    let repo_arg = repo.display().to_string();
    let out = cli(&setup, &["run", "--repo", &repo_arg, "-n", "1", "fix add"]).await;
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("tests: `make test`, detected from the Makefile's `test` target"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    // The detected command is what ran (the rollout image has no make: the run says so).
    let commands = env.svc.store.commands(&task.id, 1).await.unwrap();
    assert!(
        commands.iter().any(|c| c.command == "make test"),
        "{commands:?}"
    );
    let rollout = &env.svc.store.rollouts(&task.id).await.unwrap()[0];
    assert!(
        rollout
            .detail
            .as_deref()
            .unwrap()
            .contains("detected from the Makefile's `test` target"),
        "{rollout:?}"
    );
    assert_ne!(rollout.outcome, Some(threadsmith_runner::Outcome::Untested));
}

#[tokio::test(flavor = "multi_thread")]
async fn show_into_a_closed_pipe_ends_quietly() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    script_fix(&env, 1);
    let report = env.run(&repo, 1, "fix add").await;
    let setup = Setup::of(&env);
    let task8 = report.task.id[..8].to_string();
    for args in [vec!["show", &task8], vec!["show", &task8, "--diff", "1"]] {
        // A reader that has gone already: every write meets a closed pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(threadsmith())
            .args(&args)
            .current_dir(&setup.dir)
            .env("THREADSMITH_DATABASE_URL", &setup.database_url)
            .env("THREADSMITH_DATA_DIR", &setup.data_dir)
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cli_input_is_refused_before_a_task_is_stored() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let setup = Setup::of(&env);
    let repo_arg = repo.display().to_string();
    let missing = env.dir.path().join("no-such-repo").display().to_string();
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec!["run", "--repo", &repo_arg, "-n", "0", "fix"],
            "Asked for 0 attempts",
        ),
        (
            vec!["run", "--repo", &repo_arg, "  "],
            "The task text is empty",
        ),
        (vec!["run", "--repo", &missing, "fix"], "no-such-repo"),
    ];
    for (args, expected) in cases {
        let out = cli(&setup, &args).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.matches(expected).count(), 1, "{args:?}: {stderr}");
    }
    assert!(
        env.svc.store.recent_tasks(10).await.unwrap().is_empty(),
        "no task row for refused input"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_task_is_explained_once() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let setup = Setup::of(&env);
    let repo_arg = repo.display().to_string();
    let out = cli(
        &setup,
        &[
            "run",
            "--repo",
            &repo_arg,
            "--base",
            "no-such-branch",
            "fix",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.matches("no-such-branch").count(),
        1,
        "the error is printed once: {stderr}"
    );
}

/// `doctor` on the Kubernetes backend (against the fake API server): the API server, the
/// namespace, the NetworkPolicy created when missing, and which process limit applies.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_the_cluster_and_says_which_process_limit_applies() {
    let env = env(|_| {}).await;
    let fake = threadsmith_tests::fake_kubernetes::FakeKubernetes::start_api_only()
        .await
        .unwrap();
    let kubeconfig = env.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig("threadsmith")).unwrap();
    std::fs::write(
        env.dir.path().join("threadsmith.toml"),
        format!(
            "[sandbox]\nbackend = \"kubernetes\"\npids = 300\n\n[sandbox.kubernetes]\nnamespace = \"threadsmith\"\nkubeconfig = \"{}\"\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let doctor = cli(&Setup::of(&env), &["doctor"]).await;
    let (stdout, stderr) = text(&doctor);
    assert_eq!(doctor.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("✓ kubernetes"), "{stdout}");
    assert!(stdout.contains("✓ rollout namespace"), "{stdout}");
    assert!(
        stdout.contains("was missing and is now created"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("process limit"))
        .unwrap_or_else(|| panic!("no process limit check: {stdout}"));
    assert!(line.starts_with('✓'), "{line}");
    assert!(
        line.contains("sandbox.pids (300)") && line.contains("podPidsLimit"),
        "{line}"
    );
    assert!(!stdout.contains("✓ docker"), "{stdout}");
}
