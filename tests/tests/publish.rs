//! Approve → branch and pull request: the real serve loop, Slack adapter and publisher against a
//! fake Slack, a fake GitHub REST API and a real bare git repository as the remote.

use std::path::{Path, PathBuf};

use threadsmith_bot::config::RepoSection;
use threadsmith_bot::publish::Context;
use threadsmith_bot::serve;
use threadsmith_runner::secret::Secret;
use threadsmith_tests::fake_github::{self, FakeGitHub};
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, Message};
use threadsmith_tests::gitrepo::{FIXED_CALC, calc_repo, git};
use threadsmith_tests::{TestEnv, capture_logs, captured_logs, env, script_calc_fix};
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "C111";
const ALICE: &str = "U222";
const BOB: &str = "U333";
const PAT: &str = "ghp_testPersonalToken0123456789abcdef";
const PUBLIC_URL: &str = "https://threadsmith.example.com";

/// A remote (bare repository) holding the calc project, and a git that records its arguments.
struct Remote {
    dir: tempfile::TempDir,
    bare: PathBuf,
    git_wrapper: PathBuf,
    git_args_log: PathBuf,
}

fn remote() -> Remote {
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
    fn push_to_main(&self, path: &str, content: &str) -> String {
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

    fn branches(&self) -> Vec<String> {
        git(
            &self.bare,
            &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
        )
        .lines()
        .map(str::to_string)
        .collect()
    }

    fn git_args(&self) -> String {
        std::fs::read_to_string(&self.git_args_log).unwrap_or_default()
    }
}

enum Auth {
    App,
    Token,
}

async fn publish_env(
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
fn assert_no_secret(env: &TestEnv, remote: &Remote, secrets: &[String]) {
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
async fn settle(env: &TestEnv) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while env.svc.store.inbox_pending().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "events left unhandled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn bots(slack: &FakeSlack, parent: &str) -> Vec<Message> {
    slack
        .thread(CHANNEL, parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .collect()
}

/// A bug thread, a mention, and the summary it ends in: (task id, parent ts, summary).
async fn thread_to_summary(slack: &FakeSlack, env: &TestEnv) -> (String, String, Message) {
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

async fn approve(slack: &FakeSlack, user: &str, summary: &Message, parent: &str, value: &str) {
    let click = slack.block_actions(user, CHANNEL, &summary.ts, Some(parent), "approve", value);
    let e = slack.send_envelope("interactive", click, false).await;
    slack.ack(&e).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_pushes_a_branch_and_opens_one_pull_request() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let gh = FakeGitHub::start().await;
    // Installation tokens that expire within octocrab's 30 s margin: each use needs a fresh one.
    gh.set_token_lifetime(20);
    let remote = remote();
    let env = publish_env(Some(&slack), &gh, &remote, Auth::App, None).await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;
    let (task_id, parent, summary) = thread_to_summary(&slack, &env).await;
    let main_before = git(&remote.bare, &["rev-parse", "refs/heads/main"]);

    // Diff links go to the task's unguessable pages.
    let token = env.svc.store.web_token(&task_id).await.unwrap();
    let blocks = summary.blocks.clone().unwrap().to_string();
    assert!(
        blocks.contains(&format!("{PUBLIC_URL}/t/{token}/rollouts/1|diff")),
        "{blocks}"
    );

    // Alice and Bob (a maintainer) approve at once, and Alice twice.
    let value = format!("{task_id}:1");
    tokio::join!(
        approve(&slack, ALICE, &summary, &parent, &value),
        approve(&slack, BOB, &summary, &parent, &value),
        approve(&slack, ALICE, &summary, &parent, &value),
    );
    slack
        .wait_until("the pull request's link", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.text
                    .contains("Pull request #1 is open: https://github.com/acme/calc/pull/1")
            })
        })
        .await;
    settle(&env).await;
    // Approve again later: the same pull request, no new message.
    approve(&slack, ALICE, &summary, &parent, &value).await;
    settle(&env).await;

    let pulls = gh.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pr = &pulls[0];
    let branch = format!("threadsmith/{}-1", &task_id[..8]);
    assert_eq!(pr.title, "add() subtracts instead of adding");
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str()),
        (branch.as_str(), "main")
    );
    assert!(pr.draft);
    let body = pr
        .body
        .replace(&task_id, "<task>")
        .replace(&token, "<token>");
    let body = regex_lite_durations(&body);
    insta::assert_snapshot!("pull_request_body", body);
    let bot_texts: Vec<String> = bots(&slack, &parent)
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(
        bot_texts
            .iter()
            .filter(|t| t.contains("Pull request #1"))
            .count(),
        1,
        "{bot_texts:?}"
    );
    assert_eq!(
        bot_texts
            .iter()
            .filter(|t| t.contains("approved by"))
            .count(),
        1,
        "{bot_texts:?}"
    );

    // The branch: one commit on main's tip with the rollout's change, as configured.
    assert_eq!(remote.branches(), vec!["main".to_string(), branch.clone()]);
    assert_eq!(
        git(&remote.bare, &["rev-parse", &format!("{branch}^")]),
        main_before
    );
    assert_eq!(
        git(&remote.bare, &["show", &format!("{branch}:calc.sh")]),
        FIXED_CALC.trim_end()
    );
    let head = git(
        &remote.bare,
        &["log", "-1", "--format=%an <%ae>%n%B", &branch],
    );
    assert!(
        head.starts_with(
            "threadsmith-bot <bot@threadsmith.example.com>\nadd() subtracts instead of adding"
        ),
        "{head}"
    );
    assert!(
        head.contains(&format!("Threadsmith-Task: {task_id}")),
        "{head}"
    );
    assert_eq!(pr.head_sha, git(&remote.bare, &["rev-parse", &branch]));

    // The summary shows the approval and the pull request.
    slack
        .wait_until("the summary updated", |s| {
            s.message(CHANNEL, &summary.ts).is_some_and(|m| {
                m.blocks.as_ref().is_some_and(|b| {
                    let b = b.to_string();
                    b.contains("Approved by") && b.contains("pull/1|pull request #1")
                })
            })
        })
        .await;
    // Someone else's approval of another rollout is refused politely, with the link.
    approve(&slack, BOB, &summary, &parent, &format!("{task_id}:2")).await;
    slack
        .wait_until("bob's note", |s| {
            s.ephemerals().iter().any(|m| {
                m.user == BOB && m.text.contains("already approved") && m.text.contains("pull/1")
            })
        })
        .await;

    // The App's calls: installation lookup and token minting with the App's JWT, pull requests
    // with the installation token.
    let calls = gh.calls();
    assert!(
        calls.iter().all(|c| c.auth != "bad" && c.auth != "none"),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.path == "/repos/acme/calc/installation" && c.auth == "app-jwt")
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.path.ends_with("/pulls"))
            .all(|c| c.auth.starts_with("installation:"))
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/pulls"))
            .count(),
        1
    );
    running.stop(&shutdown).await;
    assert_no_secret(&env, &remote, &gh.installation_tokens());
    env.assert_nothing_left(&task_id).await;
}

/// Durations vary run to run: `1.2 s` → `<t> s`.
fn regex_lite_durations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(" s") {
        let (before, after) = rest.split_at(i);
        let start = before
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |j| j + 1);
        if start < before.len() && before[start..].contains('.') {
            out.push_str(&before[..start]);
            out.push_str("<t>");
        } else {
            out.push_str(before);
        }
        out.push_str(" s");
        rest = &after[2..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_that_moved_into_a_conflict_is_refused_with_nothing_pushed() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    let remote = remote();
    let env = publish_env(Some(&slack), &gh, &remote, Auth::Token, None).await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;
    let (task_id, parent, summary) = thread_to_summary(&slack, &env).await;

    // Meanwhile a colleague rewrote the same line on main.
    remote.push_to_main(
        "calc.sh",
        "add() { expr \"$1\" + \"$2\"; }\nsub() { echo $(( $1 - $2 )); }\n",
    );
    approve(&slack, ALICE, &summary, &parent, &format!("{task_id}:1")).await;
    let notice = slack
        .wait_for("the conflict notice", |s| {
            s.thread(CHANNEL, &parent)
                .into_iter()
                .find(|m| m.text.contains("no longer applies"))
        })
        .await;
    assert!(notice.text.contains("`calc.sh`"), "{}", notice.text);
    assert!(
        notice.text.contains("Nothing was pushed"),
        "{}",
        notice.text
    );
    let blocks = notice.blocks.clone().unwrap().to_string();
    assert!(blocks.contains("\"retry\""), "a Retry button: {blocks}");
    settle(&env).await;

    assert_eq!(
        remote.branches(),
        vec!["main".to_string()],
        "no branch left"
    );
    assert!(gh.pulls().is_empty());
    assert!(
        env.svc.store.approval(&task_id).await.unwrap().is_none(),
        "the approval is withdrawn"
    );
    let publication = env.svc.store.publication(&task_id).await.unwrap();
    assert!(
        publication
            .as_ref()
            .is_some_and(|p| p.state.as_str() == "failed" && p.url.is_none()),
        "{publication:?}"
    );
    // The summary offers Approve again.
    slack
        .wait_until("the summary's buttons back", |s| {
            s.message(CHANNEL, &summary.ts).is_some_and(|m| {
                m.blocks
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains("\"approve\""))
            })
        })
        .await;
    running.stop(&shutdown).await;
    let args = remote.git_args();
    assert!(!args.contains(PAT), "the token never on a command line");
    assert!(!captured_logs().contains(PAT));
    env.assert_nothing_left(&task_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn push_only_mode_pushes_onto_the_moved_base_and_reuses_the_branch() {
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    let remote = remote();
    let env = publish_env(None, &gh, &remote, Auth::Token, Some("push")).await;
    script_calc_fix(&env);
    let mut req = threadsmith_tests::request(Path::new("acme/calc"), 2, "add(2, 3) gives -1");
    req.repo = "acme/calc".into();
    let report = env.run_request(req).await;
    let task_id = report.task.id.clone();
    // main moves on without touching calc.sh: the change still applies, on the new tip.
    let new_main = remote.push_to_main("README.md", "calc\n");

    let ctx = Context {
        thread_link: None,
        approved_by: None,
    };
    env.svc.store.approve(&task_id, 1, "tester").await.unwrap();
    let first = env.svc.publisher.publish(&task_id, 1, &ctx).await.unwrap();
    let branch = format!("threadsmith/{}-1", &task_id[..8]);
    assert_eq!(first.branch, branch);
    assert_eq!(
        first.url,
        format!("https://git.example.com/acme/calc/tree/{branch}")
    );
    assert_eq!(first.pr_number, None);
    assert!(!first.reused);
    assert_eq!(
        git(&remote.bare, &["rev-parse", &format!("{branch}^")]),
        new_main
    );
    assert_eq!(
        git(&remote.bare, &["show", &format!("{branch}:calc.sh")]),
        FIXED_CALC.trim_end()
    );
    assert_eq!(
        git(&remote.bare, &["show", &format!("{branch}:README.md")]),
        "calc"
    );

    // Again (a replay, a restart after the push): the same branch, nothing new.
    let again = env.svc.publisher.publish(&task_id, 1, &ctx).await.unwrap();
    assert!(again.reused);
    assert_eq!(again.commit, first.commit);
    // Even when the database forgot it was published, the branch on the remote is recognised.
    env.svc.store.drop_publication(&task_id).await.unwrap();
    sqlx_forget(&env, &task_id).await;
    let third = env.svc.publisher.publish(&task_id, 1, &ctx).await.unwrap();
    assert_eq!(third.commit, first.commit);
    assert_eq!(remote.branches(), vec!["main".to_string(), branch]);
    assert!(
        gh.pulls().is_empty(),
        "push-only mode opens no pull request"
    );
    env.assert_nothing_left(&task_id).await;
}

/// Marks the task's publication unfinished, as after a crash between push and record.
async fn sqlx_forget(env: &TestEnv, task_id: &str) {
    let url = env.svc.config.database_url();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM publications WHERE task_id = ?")
        .bind(task_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// `threadsmith approve <task> <rollout>` as an operator runs it: this test's database, cache,
/// config file (the repository, the recording git) and fake GitHub.
fn cli_approve(env: &TestEnv, gh: &FakeGitHub, task: &str, rollout: u32) -> std::process::Output {
    std::process::Command::new(threadsmith_tests::threadsmith())
        .args(["approve", task, &rollout.to_string()])
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("THREADSMITH_DATABASE_URL", env.svc.config.database_url())
        .env("THREADSMITH_DATA_DIR", env.svc.config.data_dir())
        .env("THREADSMITH_GITHUB_TOKEN", PAT)
        .env("THREADSMITH_GITHUB_API_URL", gh.api_url())
        .output()
        .expect("run threadsmith approve")
}

/// A finished task of two rollouts (both change calc.sh) on `acme/calc`, and the CLI's config.
async fn task_for_the_cli(env: &TestEnv, remote: &Remote) -> String {
    script_calc_fix(env);
    let mut req = threadsmith_tests::request(Path::new("acme/calc"), 2, "add(2, 3) gives -1");
    req.repo = "acme/calc".into();
    let report = env.run_request(req).await;
    std::fs::write(
        env.dir.path().join("threadsmith.toml"),
        format!(
            "[[repos]]\nname = \"acme/calc\"\nurl = \"{}\"\n\n[publish]\ngit = \"{}\"\nauthor_name = \"ci\"\nauthor_email = \"ci@example.com\"\n",
            remote.bare.display(),
            remote.git_wrapper.display()
        ),
    )
    .unwrap();
    report.task.id
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_concurrent_cli_approvals_all_print_the_one_pull_request() {
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    let remote = remote();
    let env = publish_env(None, &gh, &remote, Auth::Token, None).await;
    let task_id = task_for_the_cli(&env, &remote).await;
    let task8 = task_id[..8].to_string();
    threadsmith_tests::threadsmith();

    // Ten operators at once, each its own process.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(10));
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let barrier = barrier.clone();
                let (env, gh, task8) = (&env, &gh, &task8);
                s.spawn(move || {
                    barrier.wait();
                    cli_approve(env, gh, task8, 1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let want = "pull request #1: https://github.com/acme/calc/pull/1\n";
    for out in &outs {
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(
            (out.status.code(), stdout.as_ref()),
            (Some(0), want),
            "stderr:\n{stderr}"
        );
    }
    assert_eq!(gh.pulls().len(), 1, "{:?}", gh.pulls());
    let branch = format!("threadsmith/{task8}-1");
    assert_eq!(remote.branches(), vec!["main".to_string(), branch.clone()]);
    assert_eq!(
        git(
            &remote.bare,
            &["rev-list", "--count", &format!("main..{branch}")]
        ),
        "1"
    );
    let approval = env.svc.store.approval(&task_id).await.unwrap().unwrap();
    let publication = env.svc.store.publication(&task_id).await.unwrap().unwrap();
    assert_eq!(approval.rollout, 1);
    assert_eq!(
        (
            publication.state.as_str(),
            publication.rollout,
            publication.pr_number,
            publication.url.as_deref()
        ),
        (
            "published",
            1,
            Some(1),
            Some("https://github.com/acme/calc/pull/1")
        )
    );
    assert_eq!(
        gh.pulls()[0].head_sha,
        git(&remote.bare, &["rev-parse", &branch])
    );

    // Another rollout afterwards: refused, naming the rollout that is published, not pretending.
    let out = cli_approve(&env, &gh, &task8, 2);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("already approved: rollout 1")
            && stderr.contains("rollout 2 was not approved")
            && stderr.contains("pull request #1: https://github.com/acme/calc/pull/1"),
        "{stderr}"
    );
    assert_eq!(
        env.svc
            .store
            .approval(&task_id)
            .await
            .unwrap()
            .unwrap()
            .rollout,
        1
    );
    assert_eq!(gh.pulls().len(), 1);
    env.assert_nothing_left(&task_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_answer_from_github_is_told_truthfully_and_approving_again_converges() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    // GitHub opens the pull request but its answer is cut short, and the lookup after it fails
    // (octocrab tries a 5xx three more times: four failures).
    gh.garble_next_pull_creation(4);
    let remote = remote();
    let env = publish_env(Some(&slack), &gh, &remote, Auth::Token, None).await;
    let shutdown = CancellationToken::new();
    let running = serve::start(env.svc.clone(), shutdown.clone())
        .await
        .unwrap();
    slack.wait_connected().await;
    let (task_id, parent, summary) = thread_to_summary(&slack, &env).await;
    let value = format!("{task_id}:1");

    approve(&slack, ALICE, &summary, &parent, &value).await;
    let notice = slack
        .wait_for("the unreadable answer's notice", |s| {
            s.thread(CHANNEL, &parent)
                .into_iter()
                .find(|m| m.is_bot() && m.text.contains("could not be read"))
        })
        .await;
    assert!(
        notice.text.contains("may have been opened")
            && notice.text.contains("approve rollout 1 again")
            && !notice.text.contains("refused")
            && notice.text.len() < 1000,
        "{}",
        notice.text
    );
    eprintln!("the notice: {}", notice.text);
    settle(&env).await;
    assert_eq!(gh.pulls().len(), 1, "GitHub did open it");
    let approval = env.svc.store.approval(&task_id).await.unwrap();
    assert_eq!(
        approval.map(|a| a.rollout),
        Some(1),
        "the approval stands: the pull request may exist"
    );

    // Approve again: the pull request is found by its branch, not opened twice.
    approve(&slack, ALICE, &summary, &parent, &value).await;
    slack
        .wait_until("the pull request's link", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.text
                    .contains("Pull request #1 is open: https://github.com/acme/calc/pull/1")
            })
        })
        .await;
    settle(&env).await;
    assert_eq!(gh.pulls().len(), 1, "{:?}", gh.pulls());
    assert_eq!(
        gh.calls()
            .iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/pulls"))
            .count(),
        1
    );
    let publication = env.svc.store.publication(&task_id).await.unwrap().unwrap();
    assert_eq!(
        (
            publication.state.as_str(),
            publication.rollout,
            publication.pr_number
        ),
        ("published", 1, Some(1))
    );
    running.stop(&shutdown).await;
    env.assert_nothing_left(&task_id).await;
}

/// Two `threadsmith serve` processes on one PostgreSQL database: ten Approve clicks at once,
/// taken by either process, open one pull request, say so once, and leave the approval and the
/// publication in agreement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_approve_clicks_handled_by_two_processes_open_one_pull_request() {
    use threadsmith_tests::{FakeModel, Turn, serve_process};
    threadsmith_tests::ensure_image().await;
    let db = threadsmith_tests::postgres::database().await;
    let store = threadsmith_bot::store::open(&db).await.unwrap();
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let model = FakeModel::start().await;
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    let remote = remote();
    gh.add_repo("acme/calc", &remote.bare);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("threadsmith.toml"),
        format!(
            "attempts = 2\ndefault_repo = \"acme/calc\"\n\
             [[repos]]\nname = \"acme/calc\"\nurl = \"{}\"\n\
             [github]\ntoken = \"{PAT}\"\napi_url = \"{}\"\n\
             [publish]\ngit = \"{}\"\n\
             [sandbox]\nmemory = \"256m\"\nworkspace_size = \"64m\"\ntmp_size = \"64m\"\n\
             [workers]\npoll_ms = 100\nconcurrent_events = 8\n",
            remote.bare.display(),
            gh.api_url(),
            remote.git_wrapper.display()
        ),
    )
    .unwrap();
    model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            serde_json::json!({"title": "add() subtracts instead of adding", "problem": "add 2 3 prints -1"}),
        )],
    );
    model.script(
        1,
        vec![
            Turn::Call(
                "write_file",
                serde_json::json!({"path": "calc.sh", "content": FIXED_CALC}),
            ),
            Turn::Call(
                "finish",
                serde_json::json!({"summary": "Fixed add.", "confidence": 0.9}),
            ),
        ],
    );
    model.script(
        2,
        vec![Turn::Call(
            "give_up",
            serde_json::json!({"reason": "no idea"}),
        )],
    );
    let _a = serve_process(
        dir.path(),
        &db,
        &dir.path().join("data-a"),
        &model,
        &slack.api_base(),
    );
    let _b = serve_process(
        dir.path(),
        &db,
        &dir.path().join("data-b"),
        &model,
        &slack.api_base(),
    );
    slack
        .wait_until("both processes connected", |s| s.connections() >= 2)
        .await;
    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh", None);
    let (_, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
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
    let task_id = store.recent_tasks(1).await.unwrap().remove(0).id;
    let value = format!("{task_id}:1");
    let edits_before = slack.message(CHANNEL, &summary.ts).unwrap().edits;

    for _ in 0..10 {
        approve(&slack, ALICE, &summary, &parent, &value).await;
    }
    slack
        .wait_until("the pull request's link", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.text
                    .contains("Pull request #1 is open: https://github.com/acme/calc/pull/1")
            })
        })
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while store.inbox_pending().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "events left unhandled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    assert_eq!(gh.pulls().len(), 1, "{:?}", gh.pulls());
    let texts: Vec<String> = bots(&slack, &parent).into_iter().map(|m| m.text).collect();
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("Pull request #1"))
            .count(),
        1,
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("could not")),
        "no click failed: {texts:?}"
    );
    let approval = store.approval(&task_id).await.unwrap().unwrap();
    let publication = store.publication(&task_id).await.unwrap().unwrap();
    assert_eq!(
        (approval.rollout, approval.approved_by.as_str()),
        (1, ALICE)
    );
    assert_eq!(
        (
            publication.state.as_str(),
            publication.rollout,
            publication.pr_number
        ),
        ("published", 1, Some(1))
    );
    // One change to show, one edit, whichever process made it.
    let shown = slack.message(CHANNEL, &summary.ts).unwrap();
    assert!(
        shown
            .blocks
            .as_ref()
            .is_some_and(|b| b.to_string().contains("pull/1|pull request #1")),
        "{shown:?}"
    );
    assert_eq!(shown.edits, edits_before + 1);
}
