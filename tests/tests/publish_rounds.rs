//! Follow-up rounds through Slack, end to end (real Docker, git, SQLite; fake Slack, model and
//! GitHub): a round from rollout #2 whose agents find #2's change in their working copy and the
//! new request in their spec, and whose approval updates the pull request of round 1 (a commit
//! on its branch and a comment) instead of opening another.

mod publish_common;
use publish_common::*;
use threadsmith_tests::Turn;
use threadsmith_tests::gitrepo::OVERFIXED_CALC;

const ROUND_2_CALC: &str = "add() { echo $(( $1 + $2 )); }\nsub() { echo $(( $1 - $2 )); }\nmul() { echo $(( $1 * $2 )); }\n";

/// Round 2's model: the spec again, then each rollout reads calc.sh and writes the round's.
fn script_round_2(env: &TestEnv) {
    env.model.reset();
    env.model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            serde_json::json!({
                "title": "add() subtracts instead of adding",
                "problem": "Keep the fix; keep the output format.",
                "acceptance_checks": ["bash test.sh passes"],
                "hints": []
            }),
        )],
    );
    for seed in [1, 2] {
        env.model.script(
            seed,
            vec![
                Turn::Call("read_file", serde_json::json!({"path": "calc.sh"})),
                Turn::Call(
                    "write_file",
                    serde_json::json!({"path": "calc.sh", "content": ROUND_2_CALC}),
                ),
                Turn::Call(
                    "finish",
                    serde_json::json!({"summary": "Kept the format, fixed sub.", "confidence": 0.8}),
                ),
            ],
        );
    }
}

async fn summary_of(slack: &FakeSlack, parent: &str, task_id: &str) -> Message {
    slack
        .wait_for("a round's summary", |s| {
            s.thread(CHANNEL, parent).into_iter().find(|m| {
                m.is_bot()
                    && m.blocks.as_ref().is_some_and(|b| {
                        let b = b.to_string();
                        b.contains("\"approve\"") && b.contains(&format!("{task_id}:1"))
                    })
            })
        })
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_from_2_builds_on_its_change_and_updates_the_pull_request() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    let remote = remote();
    let env = publish_env(Some(&slack), &gh, &remote, Auth::Token, None).await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;
    let (first, parent, summary) = thread_to_summary(&slack, &env).await;
    let main = git(&remote.bare, &["rev-parse", "refs/heads/main"]);
    approve(&slack, ALICE, &summary, &parent, &format!("{first}:1")).await;
    slack
        .wait_until("the pull request", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.text.contains("Pull request #1 is open"))
        })
        .await;
    settle(&env).await;

    // Round 2, from rollout #2 (the one that also broke sub()).
    script_round_2(&env);
    let text = "<@UBOT> from #2: keep the output format";
    let mention = slack.post_as_user(CHANNEL, ALICE, text, Some(&parent));
    let payload = slack.app_mention(CHANNEL, ALICE, text, &mention, Some(&parent));
    let e = slack.send_envelope("events_api", payload, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("round 2's summary", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.is_bot()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("Round 2 of this task"))
            })
        })
        .await;
    let second = env.svc.store.recent_tasks(1).await.unwrap().remove(0).id;
    assert_ne!(second, first);
    let summary2 = summary_of(&slack, &parent, &second).await;

    // Its agents found #2's change in their working copy, and the request in their spec.
    let asked = env.model.received_by(1);
    assert!(asked.len() >= 2, "{asked:?}");
    let spec = asked[0].body.to_string();
    assert!(spec.contains("## This is round 2"), "{spec}");
    assert!(spec.contains("keep the output format"), "{spec}");
    assert!(spec.contains("rollout #2 of round 1"), "{spec}");
    let read = asked[1].body["messages"].to_string();
    let overfixed_sub = OVERFIXED_CALC.lines().nth(1).unwrap();
    assert!(read.contains(overfixed_sub), "the read_file answer: {read}");
    // Its diff is the whole change against the base.
    let diff = env.svc.store.diff(&second, 1).await.unwrap().unwrap();
    assert!(diff.patch.contains("+mul()"), "{}", diff.patch);
    assert!(
        diff.patch.contains("-add() { echo $(( $1 - $2 )); }"),
        "{}",
        diff.patch
    );

    // Approving round 2's rollout 1 updates pull request #1: no second one.
    approve(&slack, ALICE, &summary2, &parent, &format!("{second}:1")).await;
    slack
        .wait_until("the update", |s| {
            s.thread(CHANNEL, &parent).iter().any(|m| {
                m.text
                    .contains("Pull request #1 now holds rollout 1 of round 2")
            })
        })
        .await;
    settle(&env).await;
    assert_eq!(gh.pulls().len(), 1, "{:?}", gh.pulls());
    let branch = format!("threadsmith/{}-1", &first[..8]);
    assert_eq!(remote.branches(), vec!["main".to_string(), branch.clone()]);
    assert_eq!(
        git(
            &remote.bare,
            &["rev-list", "--count", &format!("{main}..{branch}")]
        ),
        "2",
        "round 2's commit on top of round 1's"
    );
    assert_eq!(
        git(&remote.bare, &["show", &format!("{branch}:calc.sh")]),
        ROUND_2_CALC.trim_end()
    );
    let comments = gh.comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].number, 1);
    assert!(
        comments[0]
            .body
            .starts_with("Updated to rollout #1 of round 2"),
        "{}",
        comments[0].body
    );
    // A second click answers with the same pull request: no new comment, no new commit.
    approve(&slack, ALICE, &summary2, &parent, &format!("{second}:1")).await;
    settle(&env).await;
    assert_eq!(gh.comments().len(), 1);
    assert_eq!(gh.pulls().len(), 1);
    running.stop(&shutdown).await;
}
