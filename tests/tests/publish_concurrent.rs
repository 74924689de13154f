//! Approvals at once: ten `threadsmith approve` runs, and ten clicks taken by two serve
//! processes on one database, open one pull request (see `publish.rs` for the set-up).

mod publish_common;
use publish_common::*;
use threadsmith_bot::slack::socket::DEFAULT_CONNECTIONS;

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

/// Two `threadsmith serve` processes on one PostgreSQL database: ten Approve clicks at once,
/// taken by either process, open one pull request, say so once, and leave the approval and the
/// publication in agreement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_approve_clicks_handled_by_two_processes_open_one_pull_request() {
    use threadsmith_tests::{FakeModel, serve_two};
    threadsmith_tests::ensure_image().await;
    let db = threadsmith_tests::postgres::database().await;
    let store = threadsmith_bot::store::open(&db).await.unwrap();
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let model = FakeModel::start().await;
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    let remote = remote();
    let dir = tempfile::tempdir().unwrap();
    two_process_setup(dir.path(), &remote, &gh, &model, "");
    let (_a, _b) = serve_two(dir.path(), &db, &model, Some(&slack.api_base()));
    slack
        .wait_until("both processes connected", |s| {
            s.open_connections() >= 2 * DEFAULT_CONNECTIONS as usize
        })
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
    threadsmith_tests::settle(store.as_ref(), std::time::Duration::from_secs(120)).await;

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
