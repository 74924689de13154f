//! What the publishing suites share: a bare remote behind the fake GitHub, the test world
//! with publishing configured, and the steps from a thread to its summary and an approval.
#![allow(dead_code, unused_imports)]

pub use std::path::{Path, PathBuf};
pub use threadsmith_bot::config::RepoSection;
pub use threadsmith_bot::publish::Context;
pub use threadsmith_bot::serve;
pub use threadsmith_runner::secret::Secret;
pub use threadsmith_tests::fake_github::{self, FakeGitHub};
pub use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, Message};
pub use threadsmith_tests::gitrepo::{FIXED_CALC, calc_repo, git};
pub use threadsmith_tests::{TestEnv, capture_logs, captured_logs, env, script_calc_fix};
pub use tokio_util::sync::CancellationToken;

mod two_processes;
pub use two_processes::two_process_setup;

pub const CHANNEL: &str = "C111";

pub const ALICE: &str = "U222";

pub const BOB: &str = "U333";

pub const PAT: &str = "ghp_testPersonalToken0123456789abcdef";

pub const PUBLIC_URL: &str = "https://threadsmith.example.com";

/// A remote (bare repository) holding the calc project, and a git that records its arguments.
pub struct Remote {
    pub dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub git_wrapper: PathBuf,
    pub git_args_log: PathBuf,
}

pub fn remote() -> Remote {
    let dir = tempfile::tempdir().unwrap();
    let seed = calc_repo(&dir.path().join("calc"));
    let bare = dir.path().join("remote").join("calc.git");
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            seed.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let git_args_log = dir.path().join("git-args.log");
    let git_wrapper = dir.path().join("git-recording");
    std::fs::write(
        &git_wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec git \"$@\"\n",
            git_args_log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&git_wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    Remote {
        dir,
        bare,
        git_wrapper,
        git_args_log,
    }
}

impl Remote {
    /// Commits a change to `main` on the remote, as a colleague would.
    pub fn push_to_main(&self, path: &str, content: &str) -> String {
        let work = self
            .dir
            .path()
            .join(format!("colleague-{}", uuid::Uuid::new_v4()));
        git(
            self.dir.path(),
            &[
                "clone",
                "--quiet",
                self.bare.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        std::fs::write(work.join(path), content).unwrap();
        git(&work, &["add", "-A"]);
        git(
            &work,
            &[
                "commit",
                "--quiet",
                "-m",
                &format!("colleague edits {path}"),
            ],
        );
        git(&work, &["push", "--quiet", "origin", "main"]);
        git(&self.bare, &["rev-parse", "refs/heads/main"])
    }

    pub fn branches(&self) -> Vec<String> {
        git(
            &self.bare,
            &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
        )
        .lines()
        .map(str::to_string)
        .collect()
    }

    pub fn git_args(&self) -> String {
        std::fs::read_to_string(&self.git_args_log).unwrap_or_default()
    }
}

pub enum Auth {
    App,
    Token,
}

pub async fn publish_env(
    slack: Option<&FakeSlack>,
    gh: &FakeGitHub,
    remote: &Remote,
    auth: Auth,
    mode: Option<&str>,
) -> TestEnv {
    capture_logs();
    gh.add_repo("acme/calc", &remote.bare);
    let api = slack.map(|s| s.api_base());
    let gh_api = gh.api_url();
    let bare = remote.bare.display().to_string();
    let wrapper = remote.git_wrapper.display().to_string();
    let mode = mode.map(str::to_string);
    env(move |c| {
        if let Some(api) = &api {
            threadsmith_tests::use_fake_slack(c, api);
        }
        c.repos = vec![RepoSection {
            name: "acme/calc".into(),
            url: bare,
            ..RepoSection::default()
        }];
        c.default_repo = Some("acme/calc".into());
        c.attempts = Some(2);
        c.public_url = Some(PUBLIC_URL.into());
        c.listen = Some("127.0.0.1:0".into());
        c.slack.maintainers = vec![BOB.into()];
        c.github.api_url = Some(gh_api);
        match auth {
            Auth::App => {
                c.github.app_id = Some(fake_github::APP_ID);
                c.github.private_key = Some(Secret::new(fake_github::APP_PRIVATE_KEY));
            }
            Auth::Token => c.github.token = Some(Secret::new(PAT)),
        }
        c.publish.mode = mode;
        c.publish.git = Some(wrapper);
        c.publish.draft = Some(true);
        c.publish.author_name = Some("threadsmith-bot".into());
        c.publish.author_email = Some("bot@threadsmith.example.com".into());
        c.publish.branch_url = Some("https://git.example.com/{repo}/tree/{branch}".into());
    })
    .await
}

/// No secret in git's arguments, in the logs, or in the database.
pub fn assert_no_secret(env: &TestEnv, remote: &Remote, secrets: &[String]) {
    assert!(!secrets.is_empty());
    let args = remote.git_args();
    assert!(
        args.contains("push"),
        "git was run through the recorder: {args}"
    );
    let logs = captured_logs();
    assert!(logs.contains("published a rollout"), "logs were captured");
    let mut db = Vec::new();
    for suffix in ["", "-wal"] {
        let path = env.dir.path().join(format!("threadsmith.db{suffix}"));
        db.extend(std::fs::read(path).unwrap_or_default());
    }
    let db = String::from_utf8_lossy(&db);
    for s in secrets {
        assert!(!args.contains(s.as_str()), "a token in git's arguments");
        assert!(!logs.contains(s.as_str()), "a token in the logs");
        assert!(!db.contains(s.as_str()), "a token in the database");
    }
    let key_line = fake_github::APP_PRIVATE_KEY.lines().nth(3).unwrap();
    assert!(!logs.contains(key_line) && !db.contains(key_line));
}

/// Waits until every stored chat event is handled.
pub async fn settle(env: &TestEnv) {
    threadsmith_tests::settle(env.svc.store.as_ref(), std::time::Duration::from_secs(60)).await;
}

pub fn bots(slack: &FakeSlack, parent: &str) -> Vec<Message> {
    slack
        .thread(CHANNEL, parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .collect()
}

/// A bug thread, a mention, and the summary it ends in: (task id, parent ts, summary).
pub async fn thread_to_summary(slack: &FakeSlack, env: &TestEnv) -> (String, String, Message) {
    script_calc_fix(env);
    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh", None);
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent));
    let payload = slack.app_mention(CHANNEL, ALICE, "<@UBOT> fix this", &mention, Some(&parent));
    let e = slack.send_envelope("events_api", payload, false).await;
    slack.ack(&e).await;
    let summary = slack
        .wait_for("the summary", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("\"approve\""))
            })
        })
        .await;
    let task = env.svc.store.recent_tasks(1).await.unwrap().remove(0);
    (task.id, parent, summary)
}

pub async fn approve(slack: &FakeSlack, user: &str, summary: &Message, parent: &str, value: &str) {
    let click = slack.block_actions(user, CHANNEL, &summary.ts, Some(parent), "approve", value);
    let e = slack.send_envelope("interactive", click, false).await;
    slack.ack(&e).await;
}
