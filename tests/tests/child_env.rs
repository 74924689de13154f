//! Processes the bot spawns get an allow-listed environment: a git that records its environment
//! sees neither the model key nor a chat or GitHub token, for a mirror fetch (`threadsmith run`)
//! and for a publish push (`threadsmith approve`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use threadsmith_tests::gitrepo::{FIXED_CALC, calc_repo};
use threadsmith_tests::{MODEL_KEY, Turn, env, threadsmith};

const SLACK_TOKEN: &str = "xoxb-child-env-slack-token-1234";
const DISCORD_TOKEN: &str = "discord-child-env-token-5678";
const GITHUB_TOKEN: &str = "ghp_childEnvGithubToken0123456789";

/// The real git, found on this process's PATH.
fn real_git() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .expect("git on the PATH")
}

/// A directory holding a `git` that appends its arguments and environment to `log`, then runs
/// the real git.
fn recording_git(dir: &Path, log: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ printf -- '--- git %s\\n' \"$*\"; env; }} >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real_git().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[tokio::test(flavor = "multi_thread")]
async fn git_sees_no_secret_of_the_bot() {
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
    let log = env.dir.path().join("git-env.log");
    let bin = recording_git(env.dir.path(), &log);
    let config = env.dir.path().join("threadsmith.toml");
    std::fs::write(&config, "[publish]\nmode = \"push\"\n").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = env.dir.path().to_path_buf();
    let database_url = env.svc.config.database_url();
    let data_dir = env.svc.config.data_dir();
    let model_url = env.model.base_url();
    // The binary with the secrets a bot process holds in its environment.
    let cli = move |args: Vec<String>| -> Output {
        Command::new(threadsmith())
            .args(&args)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", &dir)
            .env("THREADSMITH_CONFIG", &config)
            .env("THREADSMITH_DATABASE_URL", &database_url)
            .env("THREADSMITH_DATA_DIR", &data_dir)
            .env("THREADSMITH_MODEL_BASE_URL", &model_url)
            .env("THREADSMITH_MODEL", "fake-model")
            .env("THREADSMITH_MODEL_API_KEY", MODEL_KEY)
            .env("THREADSMITH_SLACK_BOT_TOKEN", SLACK_TOKEN)
            .env("THREADSMITH_DISCORD_TOKEN", DISCORD_TOKEN)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .output()
            .expect("run threadsmith")
    };
    let run_args = vec![
        "run".to_string(),
        "--repo".into(),
        repo.display().to_string(),
        "-n".into(),
        "1".into(),
        "fix the add test".into(),
    ];
    let run = {
        let cli = cli.clone();
        tokio::task::spawn_blocking(move || cli(run_args))
            .await
            .unwrap()
    };
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let fetches = std::fs::read_to_string(&log).expect("git was run through the recorder");
    assert!(
        fetches.contains("--- git ") && fetches.contains("PATH="),
        "{fetches}"
    );

    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    let approve_args = vec!["approve".to_string(), task.id.clone(), "1".into()];
    let approve = tokio::task::spawn_blocking(move || cli(approve_args))
        .await
        .unwrap();
    assert_eq!(
        approve.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&approve.stdout),
        String::from_utf8_lossy(&approve.stderr)
    );
    let all = std::fs::read_to_string(&log).unwrap();
    let pushes = &all[fetches.len()..];
    assert!(
        pushes.contains("--- git ") && pushes.contains(" push "),
        "{pushes}"
    );
    for (what, logged) in [("a mirror fetch", fetches.as_str()), ("a publish", pushes)] {
        for secret in [MODEL_KEY, SLACK_TOKEN, DISCORD_TOKEN, GITHUB_TOKEN] {
            assert!(
                !logged.contains(secret),
                "{what}: a secret in git's environment: {logged}"
            );
        }
        assert!(
            !logged.contains("THREADSMITH_DATABASE_URL"),
            "{what}: {logged}"
        );
    }
}
