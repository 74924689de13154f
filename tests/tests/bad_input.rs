//! Bad input ends in a clear message and a stored outcome, never a panic; the other rollouts of
//! the task carry on.

use serde_json::json;
use threadsmith_bot::store::TaskState;
use threadsmith_runner::Outcome;
use threadsmith_tests::gitrepo::{FIXED_CALC, calc_repo, git};
use threadsmith_tests::{Turn, env, request};

#[tokio::test(flavor = "multi_thread")]
async fn task_level_problems_fail_the_task_with_a_message() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));

    let cases: Vec<(threadsmith_bot::pipeline::TaskRequest, &str)> = vec![
        (request(&repo, 2, "   \n "), "The task text is empty"),
        (
            request(&env.dir.path().join("no-such-repo"), 2, "fix it"),
            "cannot find the repository",
        ),
        (
            {
                let mut r = request(&repo, 2, "fix it");
                r.repo = "file:///nonexistent/repo.git".into();
                r
            },
            "cannot find the repository `file:///nonexistent/repo.git`",
        ),
        (
            {
                let mut r = request(&repo, 2, "fix it");
                r.base = Some("no-such-branch".into());
                r
            },
            "has no branch, tag or commit named `no-such-branch`",
        ),
        (request(&repo, 0, "fix it"), "Asked for 0 attempts"),
    ];
    for (req, expected) in cases {
        let report = env.run_request(req).await;
        assert_eq!(report.task.state, TaskState::Failed, "{report:?}");
        let error = report.task.error.clone().unwrap_or_default();
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
        assert!(report.rollouts.is_empty());
        // Stored, and readable back.
        let stored = env.svc.store.task(&report.task.id).await.unwrap().unwrap();
        assert_eq!(stored.error.as_deref(), Some(error.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_is_named_with_the_fix() {
    let env = env(|c| c.sandbox.image = Some("threadsmith-no-such-image:7".into())).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let report = env.run(&repo, 1, "fix it").await;
    assert_eq!(report.task.state, TaskState::Failed);
    let error = report.task.error.unwrap();
    assert!(error.contains("threadsmith-no-such-image:7"), "{error}");
    assert!(error.contains("threadsmith image build"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_model_endpoint_is_explained() {
    let env = env(|c| c.model.base_url = None).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let report = env.run(&repo, 1, "fix it").await;
    assert_eq!(report.task.state, TaskState::Failed);
    assert!(
        report
            .task
            .error
            .unwrap()
            .contains("THREADSMITH_MODEL_BASE_URL")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_garbage_and_malformed_calls_are_handled_per_rollout() {
    let env = env(|c| c.sandbox.max_steps = Some(4)).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    // 1: garbage every time → errored after the retries.
    env.model.script(
        1,
        vec![Turn::Garbage("<html>502 Bad Gateway</html>".into()); 3],
    );
    // 2: a transient 503, a malformed call, an unknown tool, then a real fix.
    env.model.script(
        2,
        vec![
            Turn::Status(503),
            Turn::RawCall("run_command", "{\"command\": ".into()),
            Turn::Call("rm_rf_everything", json!({})),
            Turn::Calls(vec![
                (
                    "write_file",
                    json!({"path": "calc.sh", "content": FIXED_CALC}),
                ),
                (
                    "finish",
                    json!({"summary": "Fixed add.", "confidence": 0.7}),
                ),
            ]),
        ],
    );
    // 3: never finishes: talks instead of calling tools, then loops on a command.
    env.model.script(
        3,
        vec![
            Turn::Text("I think I should look around.".into()),
            Turn::Call("run_command", json!({"command": "ls"})),
            Turn::Call("run_command", json!({"command": "ls"})),
            Turn::Call("run_command", json!({"command": "ls"})),
        ],
    );
    // 4: refuses with a 401: not retried.
    env.model.script(4, vec![Turn::Status(401)]);

    let report = env.run(&repo, 4, "The add test fails").await;
    assert_eq!(report.task.state, TaskState::Done);
    let get = |k: u32| report.rollouts.iter().find(|r| r.index == k).unwrap();

    assert_eq!(get(1).outcome, Some(Outcome::Errored));
    assert!(
        get(1)
            .detail
            .as_deref()
            .unwrap()
            .contains("not a chat completion")
    );
    assert_eq!(
        env.model.received_by(1).len(),
        3,
        "first try and two retries"
    );

    assert_eq!(get(2).outcome, Some(Outcome::Succeeded), "{:?}", get(2));
    assert_eq!(get(2).rank, Some(1));
    let seen = env.model.received_by(2);
    assert_eq!(seen.len(), 4, "the 503 was retried");
    let last_tool = |i: usize| {
        seen[i].body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        last_tool(2).contains("the arguments of `run_command` are not valid"),
        "{}",
        last_tool(2)
    );
    assert!(
        last_tool(3).contains("there is no tool named `rm_rf_everything`"),
        "{}",
        last_tool(3)
    );

    assert_eq!(get(3).outcome, Some(Outcome::TimedOut));
    assert!(
        get(3).detail.as_deref().unwrap().contains("4 steps"),
        "{:?}",
        get(3).detail
    );

    assert_eq!(get(4).outcome, Some(Outcome::Errored));
    assert!(
        get(4)
            .detail
            .as_deref()
            .unwrap()
            .contains("refused the request (HTTP 401)")
    );
    assert_eq!(env.model.received_by(4).len(), 1, "a 401 is not retried");
    env.assert_nothing_left(&report.task.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_ref_other_than_the_default_branch_is_used() {
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    git(&repo, &["checkout", "--quiet", "-b", "release"]);
    std::fs::write(repo.join("RELEASE"), "1.0\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "--quiet", "-m", "release"]);
    let release = git(&repo, &["rev-parse", "HEAD"]);
    env.model.script(
        1,
        vec![
            Turn::Call("run_command", json!({"command": "cat RELEASE"})),
            Turn::Call("give_up", json!({"reason": "looked"})),
        ],
    );
    let mut req = request(&repo, 1, "check the release");
    req.base = Some("release".into());
    let report = env.run_request(req).await;
    assert_eq!(report.task.base_commit.as_deref(), Some(release.as_str()));
    let commands = env.svc.store.commands(&report.task.id, 1).await.unwrap();
    assert_eq!(commands[0].output.trim(), "1.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_model_fails_the_task_before_any_container() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let env = env(|c| c.model.base_url = Some(url)).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let started = std::time::Instant::now();
    let report = env.run(&repo, 2, "fix it").await;
    assert_eq!(report.task.state, TaskState::Failed, "{report:?}");
    let error = report.task.error.clone().unwrap_or_default();
    assert!(
        error.contains("model endpoint cannot be reached"),
        "{error}"
    );
    // No rollout (and so no sandbox) was started, and it took no retries.
    assert!(report.rollouts.is_empty(), "{report:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    env.assert_nothing_left(&report.task.id).await;
}
