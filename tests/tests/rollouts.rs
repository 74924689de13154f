//! Best-of-N end to end: real Docker (or pods on the fake Kubernetes API server, each a Docker
//! container), a real git repository, the scripted model. The suite runs on both backends, with
//! the same expectations and snapshot.

use std::fmt::Write as _;

use serde_json::json;
use threadsmith_runner::Outcome;
use threadsmith_tests::gitrepo::{FIXED_CALC, OVERFIXED_CALC, calc_repo};
use threadsmith_tests::{Backend, MODEL_KEY, TestEnv, Turn, env_on};

/// The report as a reviewer reads it: everything but times.
async fn render(env: &TestEnv, task_id: &str) -> String {
    let store = &env.svc.store;
    let mut out = String::new();
    for r in store.rollouts(task_id).await.unwrap() {
        let _ = writeln!(
            out,
            "== rank {} · rollout {} · {} — {}",
            r.rank.unwrap(),
            r.index,
            r.outcome.unwrap().label(),
            r.detail.as_deref().unwrap_or("")
        );
        let _ = writeln!(out, "reason: {}", r.rank_reason.as_deref().unwrap_or(""));
        let _ = writeln!(
            out,
            "tests: {} · +{} -{} in {} file(s) · confidence {:?} · seed {:?}",
            r.test
                .as_ref()
                .map_or("not run", |t| if t.passed { "passed" } else { "failed" }),
            r.lines_added,
            r.lines_removed,
            r.files_changed,
            r.confidence,
            r.sampling.map(|s| s.seed)
        );
        let _ = writeln!(out, "summary: {}", r.summary.as_deref().unwrap_or("-"));
        for c in store.commands(task_id, r.index).await.unwrap() {
            let _ = writeln!(
                out,
                "  {}. [{}] {} → exit {:?}{}",
                c.seq,
                c.kind.as_str(),
                c.command,
                c.exit_code,
                if c.timed_out { " (timed out)" } else { "" }
            );
            for line in c.output.lines() {
                let _ = writeln!(out, "     | {line}");
            }
        }
        let diff = store.diff(task_id, r.index).await.unwrap().unwrap();
        let _ = writeln!(out, "diff:\n{}", diff.patch);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn three_rollouts_are_run_checked_and_ranked_on_evidence() {
    three_rollouts(Backend::Docker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_rollouts_are_run_checked_and_ranked_on_evidence_on_kubernetes() {
    three_rollouts(Backend::Kubernetes).await;
}

/// The same suite on a real cluster (see README, "Rollouts on Kubernetes"): the one test that
/// is ignored unless asked for, since it needs a cluster this machine does not have.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "set THREADSMITH_TEST_KUBECONFIG=... and run cargo test ... -- --ignored"]
async fn three_rollouts_are_run_checked_and_ranked_on_evidence_on_a_real_cluster() {
    three_rollouts(Backend::Cluster).await;
}

async fn three_rollouts(backend: Backend) {
    let env = env_on(backend, |_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));

    // Rollout 1 fixes add(); rollout 2 fixes add() but breaks sub(); rollout 3 gives up.
    env.model.script(
        1,
        vec![
            Turn::Call("run_command", json!({"command": "bash test.sh"})),
            Turn::Call("write_file", json!({"path": "calc.sh", "content": FIXED_CALC})),
            Turn::Call("run_command", json!({"command": "bash test.sh"})),
            Turn::Call(
                "finish",
                json!({"summary": "Fixed `add`: it subtracted instead of adding.", "confidence": 0.8}),
            ),
        ],
    );
    env.model.script(
        2,
        vec![
            Turn::Call(
                "write_file",
                json!({"path": "calc.sh", "content": OVERFIXED_CALC}),
            ),
            Turn::Call(
                "finish",
                json!({"summary": "Made the arithmetic consistent.", "confidence": 0.95}),
            ),
        ],
    );
    env.model.script(
        3,
        vec![
            Turn::Call("read_file", json!({"path": "calc.sh"})),
            Turn::Call(
                "give_up",
                json!({"reason": "I cannot tell what add() should do."}),
            ),
        ],
    );

    let report = env
        .run(&repo, 3, "The add test fails: add(2, 3) gives -1")
        .await;
    assert_eq!(report.task.error, None);
    assert_eq!(report.task.state.as_str(), "done");
    let order: Vec<(u32, Outcome)> = report
        .rollouts
        .iter()
        .map(|r| (r.index, r.outcome.unwrap()))
        .collect();
    assert_eq!(
        order,
        vec![
            (1, Outcome::Succeeded),
            (2, Outcome::TestsFailed),
            (3, Outcome::GaveUp)
        ],
        "{:?}",
        report
            .rollouts
            .iter()
            .map(|r| &r.detail)
            .collect::<Vec<_>>()
    );

    insta::assert_snapshot!(
        "three_rollouts_are_run_checked_and_ranked_on_evidence",
        render(&env, &report.task.id).await
    );

    // The model saw the tools' results and the task, and the key only in the header.
    let first = env.model.received_by(1);
    assert_eq!(first.len(), 4);
    assert_eq!(
        first[0].authorization.as_deref(),
        Some(format!("Bearer {MODEL_KEY}").as_str())
    );
    let prompt = first[0].body["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("add(2, 3) gives -1"), "{prompt}");
    assert!(prompt.contains("`bash test.sh` passes"), "{prompt}");
    let tool_result = first[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(tool_result["role"], "tool");
    assert!(
        tool_result["content"]
            .as_str()
            .unwrap()
            .contains("not ok - add: got -1, want 5"),
        "{tool_result}"
    );
    // The rollouts sampled differently.
    let temps: Vec<f64> = (1..=3)
        .map(|s| {
            env.model.received_by(s)[0].body["temperature"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_ne!(temps[0], temps[1]);
    for r in env.model.received() {
        assert!(!r.body.to_string().contains(MODEL_KEY));
    }
    env.assert_nothing_left(&report.task.id).await;
}

/// Two rollouts fix `add` and pass the tests, so the tests cannot choose: the judge (the same
/// model endpoint, its forced `judge_rollouts` call) does, and its answer is stored.
#[tokio::test(flavor = "multi_thread")]
async fn rollouts_tied_on_tests_are_ranked_by_the_judge() {
    let env = env_on(Backend::Docker, |_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    let commented = format!("# add and sub take two integers.\n{FIXED_CALC}");
    for (seed, content, confidence) in [(1, FIXED_CALC.to_string(), 0.9), (2, commented, 0.5)] {
        env.model.script(
            seed,
            vec![
                Turn::Call("write_file", json!({"path": "calc.sh", "content": content})),
                Turn::Call(
                    "finish",
                    json!({"summary": "Fixed `add`.", "confidence": confidence}),
                ),
            ],
        );
    }
    env.model.script(
        0,
        vec![Turn::Call(
            "judge_rollouts",
            json!({"verdicts": [
                {"rollout": 1, "verdict": "acceptable", "reason": "fixes add, documents nothing"},
                {"rollout": 2, "verdict": "best", "reason": "fixes add and documents the inputs"},
            ]}),
        )],
    );

    let report = env
        .run(&repo, 2, "The add test fails: add(2, 3) gives -1")
        .await;
    assert_eq!(
        report.task.state.as_str(),
        "done",
        "{:?}",
        report.task.error
    );
    let order: Vec<(u32, Option<&str>)> = report
        .rollouts
        .iter()
        .map(|r| (r.index, r.rank_headline.as_deref()))
        .collect();
    assert_eq!(
        order,
        vec![
            (2, Some("judge: fixes add and documents the inputs")),
            (1, Some("judge: fixes add, documents nothing")),
        ]
    );
    let judged: Vec<_> = env
        .model
        .received()
        .into_iter()
        .filter(|r| r.body["tools"][0]["function"]["name"] == "judge_rollouts")
        .collect();
    assert_eq!(judged.len(), 1);
    let shown = judged[0].body["messages"][1]["content"].as_str().unwrap();
    assert!(shown.contains("## Rollout 1") && shown.contains("## Rollout 2"));
    assert!(
        shown.contains("+# add and sub take two integers."),
        "{shown}"
    );
    let stored = env
        .svc
        .store
        .judgement(&report.task.id, &[1, 2])
        .await
        .unwrap()
        .expect("the judge's answer is stored");
    assert!(matches!(
        stored.answer,
        threadsmith_bot::store::JudgeAnswer::Verdicts(v) if v.len() == 2
    ));
    env.assert_nothing_left(&report.task.id).await;
}
