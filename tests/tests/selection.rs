//! The selection-accuracy suite checks itself (issue 14): every scenario is what it claims to
//! be, worked out on the host, and a few run through the real pipeline (real git, real
//! sandboxes, the scripted model) put first what the old order is expected to. The full suite
//! under the three orderings is a benchmark: `cargo bench -p threadsmith-tests --bench selection`.

use threadsmith_runner::rank::OwnTest;
use threadsmith_tests::selection::{self, Ordering, predict::predict};

#[test]
fn every_scenario_is_what_it_claims() {
    let all = selection::all();
    assert!(all.len() >= 12, "the issue asks for at least 12 scenarios");
    let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len(), "scenario names are unique");
    // Some 200 short bash runs: one thread per scenario.
    let predictions: Vec<_> = std::thread::scope(|scope| {
        let running: Vec<_> = all.iter().map(|s| scope.spawn(|| predict(s))).collect();
        running
            .into_iter()
            .map(|t| t.join().expect("a prediction"))
            .collect()
    });
    for (s, p) in all.iter().zip(predictions) {
        assert!(
            (3..=4).contains(&s.rollouts()),
            "{}: 3 or 4 rollouts",
            s.name
        );
        assert!((1..=s.rollouts()).contains(&s.right), "{}", s.name);
        assert!(s.judge_pick().is_some(), "{}: the judge picks one", s.name);
        for a in s.attempts {
            if let Some((path, _)) = a.test {
                assert!(
                    path.starts_with("tests/test_") && path.ends_with(".sh"),
                    "{}: {path} is a test by the path conventions and the runner runs it",
                    s.name
                );
            }
        }
        // Shown when the test fails (with --nocapture always): the evidence per rollout.
        let passed: Vec<_> = p.reproduction.iter().map(|r| &r.passed_from).collect();
        println!(
            "{}: tests pass {:?}, reproduction tests passed {passed:?}, first {:?}",
            s.name, p.passes, p.top
        );
        assert!(
            p.base_passes,
            "{}: the repository's tests pass on the base",
            s.name
        );
        assert!(
            p.passes[s.right as usize - 1],
            "{}: the right rollout passes the repository's tests",
            s.name
        );
        let right = &p.reproduction[s.right as usize - 1];
        assert_eq!(
            right.own,
            OwnTest::Reproduces,
            "{}: the right rollout's test reproduces the problem",
            s.name
        );
        for (i, o) in Ordering::ALL.iter().enumerate() {
            assert_eq!(
                p.top[i],
                s.expect.of(*o),
                "{}: {} puts rollout {} first (evidence: {:?})",
                s.name,
                o.label(),
                p.top[i],
                p.reproduction
            );
        }
    }
    // Written to fool a careless ranker: the old order is wrong in most scenarios, and the
    // judge is right most of the time, not always.
    let old_right = all.iter().filter(|s| s.expect.old == s.right).count();
    assert!(old_right * 2 < all.len(), "{old_right} of {}", all.len());
    let judge_wrong = all
        .iter()
        .filter(|s| s.judge_pick() != Some(s.right))
        .count();
    assert!((1..=all.len() / 4).contains(&judge_wrong), "{judge_wrong}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_old_order_picks_as_expected_in_real_sandboxes() {
    let all = selection::all();
    let pick = |name: &str| {
        *all.iter()
            .find(|s| s.name == name)
            .expect("the scenario exists")
    };
    // One the old order gets wrong on confidence, one with a reproduction test that passes on
    // the base, and the control where the wrong attempts fail the repository's tests.
    let chosen = [
        pick("slug_space_runs"),
        pick("join_long_separator"),
        pick("max_returns_min"),
    ];
    let (a, b, c) = tokio::join!(
        selection::run(chosen[0], Ordering::Old),
        selection::run(chosen[1], Ordering::Old),
        selection::run(chosen[2], Ordering::Old),
    );
    for (s, run) in chosen.iter().zip([a, b, c]) {
        let run = run.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.top(), Some(s.expect.old), "{}: {run:?}", s.name);
        assert_eq!(
            run.order.len(),
            s.attempts.len(),
            "{}: every rollout ranked",
            s.name
        );
        assert!(!run.judged, "{}: the old order asks no judge", s.name);
        // The sandboxes' test runs agree with the host's.
        let p = predict(s);
        let failing: Vec<u32> = (1..=s.rollouts())
            .filter(|k| !p.passes[*k as usize - 1])
            .collect();
        let failed: Vec<u32> = run.outcomes.iter().map(|(k, _)| *k).collect();
        let mut failed_sorted = failed.clone();
        failed_sorted.sort();
        assert_eq!(
            failed_sorted, failing,
            "{}: outcomes {:?}",
            s.name, run.outcomes
        );
        assert!(
            run.outcomes.iter().all(|(_, o)| o == "tests failed"),
            "{}: {:?}",
            s.name,
            run.outcomes
        );
    }
}

/// The fake model answers the judge's request (recognised by its tool) with the scripted
/// verdicts of the candidates it names, through the forced call, leaving the agents' scripts
/// where they were.
#[tokio::test]
async fn the_fake_model_answers_the_judge_with_the_scenario_verdicts() {
    let model = threadsmith_tests::FakeModel::start().await;
    let s = selection::all()[0];
    s.script(&model);
    let tool = serde_json::json!({"type": "function", "function": {"name": "judge_rollouts", "parameters": {"type": "object"}}});
    let body = serde_json::json!({
        "model": threadsmith_tests::fake_model::MODEL,
        "seed": 1,
        "messages": [
            {"role": "system", "content": "You are judging candidate changes."},
            {"role": "user", "content": "Rollout 1: …\n\nRollout 3: …"}
        ],
        "tools": [tool],
        "tool_choice": {"type": "function", "function": {"name": "judge_rollouts"}}
    });
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", model.base_url());
    let answer: serde_json::Value = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("the fake answers")
        .json()
        .await
        .expect("a chat completion");
    let call = &answer["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "judge_rollouts");
    let args: serde_json::Value =
        serde_json::from_str(call["arguments"].as_str().expect("arguments")).expect("JSON");
    let rollouts: Vec<u64> = args["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|v| v["rollout"].as_u64().expect("an index"))
        .collect();
    assert_eq!(rollouts, [1, 3], "the candidates named, not rollout 2");
    assert_eq!(args["verdicts"][0]["verdict"], "best");
    assert_eq!(model.judge_requests().len(), 1);
    // Rollout 1's script did not move: its first turn is still its first write.
    let agent = serde_json::json!({
        "model": threadsmith_tests::fake_model::MODEL,
        "seed": 1,
        "messages": [{"role": "user", "content": "fix it"}]
    });
    let first: serde_json::Value = client
        .post(&url)
        .json(&agent)
        .send()
        .await
        .expect("the fake answers")
        .json()
        .await
        .expect("a chat completion");
    let call = &first["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "write_file");
    assert!(
        call["arguments"]
            .as_str()
            .is_some_and(|a| a.contains("tests/test_space_runs.sh")),
        "{call}"
    );
}
