//! One test suite, two stores: every check runs against SQLite and against a real PostgreSQL
//! server (started by the harness, or `.ci/run`'s), through `store::open` as the bot does.
//! Tasks, rollouts, effects, approvals and publications; the inbox and workers are in
//! `store_workers.rs`, chat links and questions in `store_chat.rs`.

#[macro_use]
mod store_common;
use store_common::*;
use threadsmith_bot::store::{
    InstructionFile, JudgeAnswer, RolloutVerdict, StoredJudgement, TaskTests,
};
use threadsmith_runner::rank::Verdict;

check!(
    tasks_and_rollouts,
    effects_approvals_publications,
    publications_are_leased_by_one_attempt,
    cancel_requests_reach_the_owner,
    task_tests_are_stored,
    instruction_files_are_stored,
    the_first_judgement_kept_wins,
);

async fn tasks_and_rollouts(s: Arc<dyn Store>) {
    s.create_task(&new_task("a_1", "U1", "acme/api", 2, "w"))
        .await
        .unwrap();
    s.create_task(&new_task("ab1", "U1", "acme/api", 2, "w"))
        .await
        .unwrap();
    // `_` is not a wildcard in a prefix.
    let found: Vec<String> = s
        .find_tasks("a_")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(found, vec!["a_1".to_string()]);
    s.set_task_state("a_1", TaskState::Running, Some("why"))
        .await
        .unwrap();
    s.set_task_state("a_1", TaskState::Done, None)
        .await
        .unwrap();
    let t = s.task("a_1").await.unwrap().unwrap();
    assert_eq!(t.state, TaskState::Done);
    assert_eq!(t.error.as_deref(), Some("why"), "an error is kept");
    // An end is final.
    s.set_task_state("a_1", TaskState::Cancelled, Some("late"))
        .await
        .unwrap();
    let t = s.task("a_1").await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.error.as_deref()),
        (TaskState::Done, Some("why"))
    );
    assert_eq!(t.worker.as_deref(), Some("w"));
    s.set_task_base("a_1", "main", "abc123").await.unwrap();
    assert_eq!(
        s.task("a_1").await.unwrap().unwrap().base_commit.as_deref(),
        Some("abc123")
    );

    let sampling = Sampling {
        temperature: 0.5,
        seed: 7,
    };
    s.create_rollouts("a_1", &[(1, sampling), (2, sampling)])
        .await
        .unwrap();
    // Twice is harmless.
    s.create_rollouts("a_1", &[(1, sampling)]).await.unwrap();
    s.set_rollout_phase("a_1", 1, "agent", 3).await.unwrap();
    s.add_command("a_1", 1, &command(1)).await.unwrap();
    s.add_command("a_1", 1, &command(1)).await.unwrap();
    let now = chrono::Utc::now();
    let result = RolloutResult {
        index: 2,
        outcome: Outcome::Succeeded,
        detail: String::new(),
        summary: Some("fixed it".into()),
        confidence: Some(0.9),
        sampling: Some(sampling),
        test: None,
        diff: Diff {
            patch: "diff --git a/x b/x\n+ü\n".into(),
            files: vec![FileChange {
                path: "x".into(),
                old_path: Some("old ü/x".into()),
                added: Some(1),
                removed: Some(0),
            }],
            test_files: vec!["x".into()],
        },
        commands: vec![command(1), command(2)],
        network: None,
        started_at: now,
        finished_at: now,
        agent_duration: Duration::from_secs(3),
        timings: Default::default(),
        cost: Default::default(),
        environment: Some(threadsmith_runner::environment::EnvironmentUse {
            snapshot: "threadsmith-env:0123abcd".into(),
            from_snapshot: true,
        }),
    };
    s.finish_rollout("a_1", &result).await.unwrap();
    s.finish_rollout("a_1", &result).await.unwrap();
    let stored = s.commands("a_1", 1).await.unwrap();
    assert_eq!(stored.len(), 1, "a command stored once");
    assert_eq!(
        (stored[0].output.as_str(), stored[0].duration),
        ("out 1 ✓", Duration::from_millis(12))
    );
    assert_eq!(s.commands("a_1", 2).await.unwrap().len(), 2);
    let diff = s.diff("a_1", 2).await.unwrap().unwrap();
    assert_eq!(diff.patch, result.diff.patch);
    assert_eq!(diff.files, result.diff.files);
    assert_eq!(diff.test_files, vec!["x".to_string()]);
    // The cross-checks are stored with the task and read back as they were.
    assert_eq!(s.crosschecks("a_1").await.unwrap(), None);
    let matrix = threadsmith_runner::crosscheck::Matrix {
        tests: vec![2],
        changes: vec![2],
        runs: vec![threadsmith_runner::crosscheck::Run {
            test_of: 2,
            on: None,
            result: threadsmith_runner::crosscheck::Cell::Failed,
            ms: 12,
        }],
        ..Default::default()
    };
    s.set_crosschecks("a_1", &matrix).await.unwrap();
    assert_eq!(s.crosschecks("a_1").await.unwrap(), Some(matrix));
    // Unranked rollouts come in index order, ranked ones by rank.
    let order: Vec<u32> = s
        .rollouts("a_1")
        .await
        .unwrap()
        .iter()
        .map(|r| r.index)
        .collect();
    assert_eq!(order, vec![1, 2]);
    s.set_ranks(
        "a_1",
        &[
            threadsmith_runner::rank::Ranked {
                index: 2,
                rank: 1,
                reason: "tests pass".into(),
                headline: "passes 2/2 reproduction tests".into(),
                reasons: vec![
                    "its tests pass".into(),
                    "passes 2/2 reproduction tests".into(),
                ],
            },
            threadsmith_runner::rank::Ranked {
                index: 1,
                rank: 2,
                reason: "no diff".into(),
                headline: "it errored".into(),
                reasons: Vec::new(),
            },
        ],
    )
    .await
    .unwrap();
    let rows = s.rollouts("a_1").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(rows[0].outcome, Some(Outcome::Succeeded));
    assert_eq!(
        rows[0].environment.as_deref(),
        Some("started from environment snapshot threadsmith-env:0123abcd (the setup did not run)")
    );
    assert_eq!(rows[0].confidence, Some(0.9));
    assert_eq!(rows[0].lines_added, 1);
    assert_eq!(rows[0].summary.as_deref(), Some("fixed it"));
    assert_eq!(
        rows[0].rank_headline.as_deref(),
        Some("passes 2/2 reproduction tests")
    );
    assert_eq!(
        rows[0].rank_reasons,
        vec!["its tests pass", "passes 2/2 reproduction tests"]
    );
    assert!(rows[1].rank_reasons.is_empty());
    assert_eq!(rows[1].phase, "agent");
    assert_eq!(rows[1].step, 3);
    let recent = s.recent_tasks(1).await.unwrap();
    assert_eq!(recent.len(), 1);
    // Web tokens: made once, found by value.
    let token = s.web_token("a_1").await.unwrap();
    assert_eq!(token, s.web_token("a_1").await.unwrap());
    assert_eq!(
        s.task_by_web_token(&token).await.unwrap().map(|t| t.id),
        Some("a_1".into())
    );
}

async fn effects_approvals_publications(s: Arc<dyn Store>) {
    s.create_task(&new_task("t1", "U1", "r", 1, "w"))
        .await
        .unwrap();
    assert!(s.record_effect("post:1", "ts1").await.unwrap());
    assert!(!s.record_effect("post:1", "ts2").await.unwrap());
    assert_eq!(s.effect("post:1").await.unwrap().as_deref(), Some("ts1"));
    assert_eq!(s.effect("post:2").await.unwrap(), None);

    // Ten approvers at once: one approval in force.
    let mut handles = Vec::new();
    for k in 1..=10u32 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.approve("t1", k, &format!("U{k}")).await.unwrap()
        }));
    }
    let mut seen = HashSet::new();
    for h in handles {
        seen.insert(h.await.unwrap().rollout);
    }
    assert_eq!(seen.len(), 1, "everyone sees the same approval");
    s.withdraw_approval("t1").await.unwrap();
    assert_eq!(s.approval("t1").await.unwrap(), None);
    assert_eq!(s.approve("t1", 3, "U3").await.unwrap().rollout, 3);

    // Requests: one live worker's at a time; taken over from a dead one; free once released.
    s.heartbeat(&worker("A"), Duration::from_secs(60))
        .await
        .unwrap();
    s.heartbeat(&worker("B"), Duration::from_secs(60))
        .await
        .unwrap();
    s.heartbeat(&worker("C"), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(s.claim_request("request:1", "A").await.unwrap());
    assert!(s.claim_request("request:1", "A").await.unwrap(), "its own");
    assert!(
        !s.claim_request("request:1", "B").await.unwrap(),
        "A is alive"
    );
    s.retire_worker("A").await.unwrap();
    assert!(
        s.claim_request("request:1", "B").await.unwrap(),
        "A is gone"
    );
    s.release_request("request:1", "A").await.unwrap();
    assert!(
        !s.claim_request("request:1", "C").await.unwrap(),
        "B holds it"
    );
    s.release_request("request:1", "B").await.unwrap();
    assert!(s.claim_request("request:1", "C").await.unwrap(), "released");

    let p = s
        .claim_publication("t1", 3, "threadsmith/t1-3")
        .await
        .unwrap();
    assert_eq!(p.state.as_str(), "publishing");
    let again = s.claim_publication("t1", 4, "other").await.unwrap();
    assert_eq!(again.branch, "threadsmith/t1-3", "the first claim holds");
    s.finish_publication("t1", "c0ffee", "https://example/pr/1", Some(1))
        .await
        .unwrap();
    s.drop_publication("t1").await.unwrap();
    let p = s.publication("t1").await.unwrap().unwrap();
    assert_eq!(
        (p.state.as_str(), p.pr_number, p.commit.as_deref()),
        ("published", Some(1), Some("c0ffee")),
        "a published one is not dropped"
    );
}

/// One attempt holds a publication; only it ends it; a failure withdraws the approval with it;
/// a lapsed lease is taken over; a finished one is final. And effects that change only on news.
async fn publications_are_leased_by_one_attempt(s: Arc<dyn Store>) {
    s.create_task(&new_task("t1", "U1", "r", 2, "w"))
        .await
        .unwrap();
    let later = chrono::Utc::now().timestamp_millis() + 60_000;
    let lease = |attempt: &'static str, rollout: u32, lease_until: i64, retry_failed: bool| {
        let s = s.clone();
        async move {
            s.lease_publication(&PublicationLease {
                task_id: "t1",
                rollout,
                branch: "b1",
                attempt,
                lease_until,
                retry_failed,
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(lease("a", 1, later, true).await, None, "nothing approved");
    s.approve("t1", 1, "U1").await.unwrap();
    assert_eq!(
        lease("a", 2, later, true).await,
        None,
        "not the approved rollout"
    );
    let held = lease("a", 1, later, true).await.unwrap();
    assert_eq!(
        (held.state.as_str(), held.attempt.as_deref()),
        ("publishing", Some("a"))
    );
    // Ten others at once: all see a's claim.
    let mut handles = Vec::new();
    for _ in 0..10 {
        let lease = lease("b", 1, later, true);
        handles.push(tokio::spawn(lease));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap().attempt.as_deref(), Some("a"));
    }
    assert!(s.renew_publication("t1", "a", later + 1).await.unwrap());
    assert!(!s.renew_publication("t1", "b", later).await.unwrap());
    // b's failure changes nothing: it holds nothing.
    assert!(!s.fail_publication("t1", "b", "boom", true).await.unwrap());
    assert!(s.approval("t1").await.unwrap().is_some());
    // a's failure is recorded and withdraws the approval with it.
    assert!(
        s.fail_publication("t1", "a", "no longer applies", true)
            .await
            .unwrap()
    );
    assert!(s.approval("t1").await.unwrap().is_none());
    let failed = s.publication("t1").await.unwrap().unwrap();
    assert_eq!(
        (failed.state.as_str(), failed.error.as_deref()),
        ("failed", Some("no longer applies"))
    );
    assert!(
        !s.fail_publication("t1", "a", "again", true).await.unwrap(),
        "once"
    );
    // Without an approval nobody takes it up again; with one, a new attempt does.
    assert_eq!(
        lease("c", 2, later, true).await.unwrap().state.as_str(),
        "failed"
    );
    s.approve("t1", 2, "U2").await.unwrap();
    assert_eq!(
        lease("c", 2, later, false).await.unwrap().state.as_str(),
        "failed",
        "a waiter does not retry"
    );
    let retried = lease("c", 2, 0, true).await.unwrap();
    assert_eq!(
        (
            retried.state.as_str(),
            retried.rollout,
            retried.attempt.as_deref()
        ),
        ("publishing", 2, Some("c"))
    );
    // c's lease lapsed (it died): d takes over, as claimed.
    let taken = lease("d", 1, later, true).await.unwrap();
    assert_eq!((taken.rollout, taken.attempt.as_deref()), (2, Some("d")));
    // A failure that keeps the approval (the pull request may exist).
    assert!(!s.fail_publication("t1", "c", "late", false).await.unwrap());
    let done = s
        .complete_publication("t1", "c0ffee", "https://pr/1", Some(1))
        .await
        .unwrap();
    assert_eq!(
        (done.state.as_str(), done.url.as_deref()),
        ("published", Some("https://pr/1"))
    );
    let again = s
        .complete_publication("t1", "other", "https://pr/2", Some(2))
        .await
        .unwrap();
    assert_eq!(
        again.url.as_deref(),
        Some("https://pr/1"),
        "the first result stands"
    );
    assert!(
        !s.fail_publication("t1", "d", "late", true).await.unwrap(),
        "a success is final"
    );
    assert_eq!(s.approval("t1").await.unwrap().unwrap().rollout, 2);
    assert_eq!(
        lease("e", 2, later, true).await.unwrap().state.as_str(),
        "published"
    );

    assert!(s.replace_effect("shown:1", "h1").await.unwrap());
    assert!(!s.replace_effect("shown:1", "h1").await.unwrap());
    assert!(s.replace_effect("shown:1", "h2").await.unwrap());
    assert_eq!(s.effect("shown:1").await.unwrap().as_deref(), Some("h2"));
}

async fn cancel_requests_reach_the_owner(s: Arc<dyn Store>) {
    s.create_task(&new_task("t1", "U1", "r", 1, "owner"))
        .await
        .unwrap();
    s.create_task(&new_task("t2", "U1", "r", 1, "other"))
        .await
        .unwrap();
    assert!(s.cancel_requests("owner").await.unwrap().is_empty());
    assert!(s.request_cancel("t1").await.unwrap());
    assert!(s.request_cancel("t2").await.unwrap());
    assert_eq!(
        s.cancel_requests("owner").await.unwrap(),
        vec!["t1".to_string()]
    );
    s.set_task_state("t1", TaskState::Cancelled, None)
        .await
        .unwrap();
    assert!(s.cancel_requests("owner").await.unwrap().is_empty());
    assert!(!s.request_cancel("t1").await.unwrap(), "it has ended");
}

async fn task_tests_are_stored(s: Arc<dyn Store>) {
    s.create_task(&new_task("tt", "U1", "r", 1, "w"))
        .await
        .unwrap();
    assert_eq!(s.task("tt").await.unwrap().unwrap().tests, None);
    let tests = TaskTests {
        command: "make test".into(),
        detected_from: Some("the Makefile's `test` target".into()),
    };
    s.set_task_tests("tt", &tests).await.unwrap();
    assert_eq!(s.task("tt").await.unwrap().unwrap().tests, Some(tests));
}

async fn instruction_files_are_stored(s: Arc<dyn Store>) {
    s.create_task(&new_task("ti", "U1", "r", 1, "w"))
        .await
        .unwrap();
    assert!(
        s.task("ti")
            .await
            .unwrap()
            .unwrap()
            .instruction_files
            .is_empty()
    );
    let files = vec![
        InstructionFile {
            path: "AGENTS.md".into(),
            bytes: 40_000,
            shown: 32_768,
        },
        InstructionFile {
            path: ".threadsmith.toml".into(),
            bytes: 20,
            shown: 0,
        },
    ];
    s.set_task_instructions("ti", &files).await.unwrap();
    assert_eq!(
        s.task("ti").await.unwrap().unwrap().instruction_files,
        files
    );
}

/// The judge's answer is kept per task and set of candidates; a second answer for the same
/// candidates (another process, a re-rank) gets the first back.
async fn the_first_judgement_kept_wins(s: Arc<dyn Store>) {
    s.create_task(&new_task("j_1", "U1", "acme/api", 3, "w"))
        .await
        .unwrap();
    assert_eq!(s.judgement("j_1", &[1, 2]).await.unwrap(), None);
    let verdicts = StoredJudgement {
        candidates: vec![1, 2],
        model: "judge-model".into(),
        answer: JudgeAnswer::Verdicts(vec![
            RolloutVerdict {
                rollout: 1,
                verdict: Verdict::Poor,
                reason: "breaks the “quoted” case".into(),
            },
            RolloutVerdict {
                rollout: 2,
                verdict: Verdict::Best,
                reason: "keeps the output format".into(),
            },
        ]),
    };
    assert_eq!(s.keep_judgement("j_1", &verdicts).await.unwrap(), verdicts);
    let later = StoredJudgement {
        answer: JudgeAnswer::Failed("the judge could not be asked".into()),
        ..verdicts.clone()
    };
    assert_eq!(s.keep_judgement("j_1", &later).await.unwrap(), verdicts);
    assert_eq!(s.judgement("j_1", &[1, 2]).await.unwrap(), Some(verdicts));
    // Other candidates are another question.
    assert_eq!(s.judgement("j_1", &[1, 2, 3]).await.unwrap(), None);
    let three = StoredJudgement {
        candidates: vec![1, 2, 3],
        ..later
    };
    assert_eq!(s.keep_judgement("j_1", &three).await.unwrap(), three);
}
