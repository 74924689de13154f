//! Approve → branch and pull request: the real serve loop, Slack adapter and publisher against a
//! fake Slack, a fake GitHub REST API and a real bare git repository as the remote.
//! Concurrent approvals (CLI runs, two serve processes) are in `publish_concurrent.rs`.

mod publish_common;
use publish_common::*;

#[tokio::test(flavor = "multi_thread")]
async fn approve_pushes_a_branch_and_opens_one_pull_request() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let gh = FakeGitHub::start().await;
    // Installation tokens that expire within octocrab's 30 s margin: each use needs a fresh one.
    gh.set_token_lifetime(20);
    let remote = remote();
    let env = publish_env(Some(&slack), &gh, &remote, Auth::App, None).await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
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
