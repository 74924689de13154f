//! One test suite, two stores: every check runs against SQLite and against a real PostgreSQL
//! server (started by the harness, or `.ci/run`'s), through `store::open` as the bot does.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use threadsmith_bot::store::{
    self, ChatTaskLink, NewTask, PublicationLease, Question, RolloutLimits, Stage, Store,
    TaskState, TaskTests, Worker,
};
use threadsmith_runner::{
    CommandKind, CommandRecord, Diff, FileChange, Outcome, RolloutResult, Sampling,
};

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (store::open(&url).await.expect("open SQLite"), dir)
}

async fn postgres() -> Arc<dyn Store> {
    let url = threadsmith_tests::postgres::database().await;
    store::open(&url).await.expect("open PostgreSQL")
}

/// `check!(name)` runs `name(store)` on both stores.
macro_rules! check {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = super::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::postgres().await).await;
                }
            )*
        }
    };
}

check!(
    tasks_and_rollouts,
    inbox_deduplicates_and_leases,
    inbox_claims_never_overlap,
    effects_approvals_publications,
    publications_are_leased_by_one_attempt,
    orphans_are_adopted_once,
    admission_respects_limits,
    chat_links_questions_plans,
    cancel_requests_reach_the_owner,
    channel_tasks_are_read_by_channel,
    requests_queue_behind_a_threads_task,
    threads_are_claimed_by_one_request,
    task_tests_are_stored,
);

fn new_task(id: &str, requester: &str, repo: &str, attempts: u32, worker: &str) -> NewTask {
    NewTask {
        id: id.into(),
        origin: "slack".into(),
        requester: Some(requester.into()),
        title: format!("title of {id}"),
        spec: "spec".into(),
        repo: repo.into(),
        base_ref: None,
        attempts,
        spec_json: Some("{}".into()),
        worker: Some(worker.into()),
    }
}

fn worker(id: &str) -> Worker {
    Worker {
        id: id.into(),
        host: "test-host".into(),
        pid: 1,
        alive_until: 0,
    }
}

fn command(seq: u32) -> CommandRecord {
    CommandRecord {
        seq,
        kind: CommandKind::Shell,
        command: format!("echo {seq}"),
        exit_code: Some(0),
        timed_out: false,
        duration: Duration::from_millis(12),
        output: format!("out {seq} ✓"),
        output_bytes: 9,
        dropped_bytes: 0,
        started_at: chrono::Utc::now(),
    }
}

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
        },
        commands: vec![command(1), command(2)],
        network: None,
        started_at: now,
        finished_at: now,
        agent_duration: Duration::from_secs(3),
        timings: Default::default(),
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
            },
            threadsmith_runner::rank::Ranked {
                index: 1,
                rank: 2,
                reason: "no diff".into(),
            },
        ],
    )
    .await
    .unwrap();
    let rows = s.rollouts("a_1").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(rows[0].outcome, Some(Outcome::Succeeded));
    assert_eq!(rows[0].confidence, Some(0.9));
    assert_eq!(rows[0].lines_added, 1);
    assert_eq!(rows[0].summary.as_deref(), Some("fixed it"));
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

async fn inbox_deduplicates_and_leases(s: Arc<dyn Store>) {
    // The same delivery 4 times: stored once.
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(s.enqueue("slack:ev1", "slack", "{}").await.unwrap());
    }
    assert!(ids[0].is_some());
    assert_eq!(&ids[1..], &[None, None, None]);
    s.enqueue("discord:ev1", "discord", "{}").await.unwrap();
    assert_eq!(s.inbox_len().await.unwrap(), 2);

    let a = worker("A");
    let b = worker("B");
    s.heartbeat(&a, Duration::from_secs(60)).await.unwrap();
    let lease = Duration::from_millis(300);
    let taken = s.claim_inbox("slack", "A", lease, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "only this platform's events");
    assert_eq!(taken[0].attempts, 1);
    assert!(
        s.claim_inbox("slack", "B", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A heartbeat renews A's lease: B still finds nothing once the first lease would have
    // ended.
    s.heartbeat(&a, Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(lease * 2).await;
    assert!(
        s.claim_inbox("slack", "B", lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a renewed lease holds"
    );
    // A is retired (dead): B takes the event over, as a second attempt.
    s.retire_worker("A").await.unwrap();
    let again = s.claim_inbox("slack", "B", lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, taken[0].id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(s.inbox_pending().await.unwrap(), 2);
    s.finish_inbox(again[0].id, None).await.unwrap();
    assert_eq!(s.inbox_pending().await.unwrap(), 1);
    // A lease that simply runs out without a heartbeat is taken again too.
    s.heartbeat(&b, Duration::from_secs(60)).await.unwrap();
    let d = s.claim_inbox("discord", "B", lease, 10).await.unwrap();
    assert_eq!(d.len(), 1);
    let later = tokio::time::Instant::now() + lease + Duration::from_millis(50);
    tokio::time::sleep_until(later).await;
    let stolen = s.claim_inbox("discord", "C", lease, 10).await.unwrap();
    assert_eq!(stolen.len(), 1, "an expired lease is free");
    // Done events are never taken again.
    s.finish_inbox(stolen[0].id, Some("failed")).await.unwrap();
    assert!(
        s.claim_inbox("discord", "D", Duration::ZERO, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn inbox_claims_never_overlap(s: Arc<dyn Store>) {
    for i in 0..200 {
        s.enqueue(&format!("k{i}"), "slack", &format!("{{\"n\":{i}}}"))
            .await
            .unwrap();
    }
    // Four workers race for the queue, a few events at a time.
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s
                    .claim_inbox("slack", &format!("w{w}"), Duration::from_secs(60), 7)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                for item in got {
                    s.finish_inbox(item.id, None).await.unwrap();
                    mine.push(item.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "every event taken exactly once");
    assert_eq!(unique.len(), 200);
    assert_eq!(s.inbox_pending().await.unwrap(), 0);
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
    assert_eq!(p.state, "publishing");
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

async fn orphans_are_adopted_once(s: Arc<dyn Store>) {
    let long = Duration::from_secs(60);
    s.heartbeat(&worker("alive"), long).await.unwrap();
    s.heartbeat(&worker("dead"), long).await.unwrap();
    s.create_task(&new_task("t-alive", "U", "r", 1, "alive"))
        .await
        .unwrap();
    s.create_task(&new_task("t-dead", "U", "r", 1, "dead"))
        .await
        .unwrap();
    s.create_task(&new_task("t-done", "U", "r", 1, "dead"))
        .await
        .unwrap();
    s.set_task_state("t-done", TaskState::Done, None)
        .await
        .unwrap();
    // A chat task that ended but whose summary never went out is half done.
    s.create_task(&new_task("t-unsent", "U", "r", 1, "dead"))
        .await
        .unwrap();
    s.set_task_state("t-unsent", TaskState::Done, None)
        .await
        .unwrap();
    let link = ChatTaskLink {
        task_id: "t-unsent".into(),
        platform: "slack".into(),
        channel: "C1".into(),
        thread: "1.0".into(),
        requester: "U".into(),
        ..ChatTaskLink::default()
    };
    s.link_chat_task(&link).await.unwrap();
    assert!(s.orphaned_tasks().await.unwrap().is_empty());
    s.retire_worker("dead").await.unwrap();
    let orphans: Vec<String> = s
        .orphaned_tasks()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        orphans,
        vec!["t-dead".to_string(), "t-unsent".to_string()],
        "finished tasks are not orphans, unless their summary is unsent"
    );
    s.set_summary_ts("t-unsent", "1.5").await.unwrap();
    assert_eq!(s.orphaned_tasks().await.unwrap().len(), 1);
    // Three workers try to adopt it at once: one wins.
    let mut handles = Vec::new();
    for w in ["x", "y", "z"] {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.adopt_task("t-dead", Some("dead"), w).await.unwrap()
        }));
    }
    let mut wins = 0;
    for h in handles {
        wins += h.await.unwrap() as usize;
    }
    assert_eq!(wins, 1);
    assert!(
        !s.adopt_task("t-dead", None, "x").await.unwrap(),
        "None matches only a task without a worker"
    );
    // Lapsed heartbeats count as dead too.
    s.heartbeat(&worker("lapsing"), Duration::from_millis(1))
        .await
        .unwrap();
    s.create_task(&new_task("t-lapsed", "U", "r", 1, "lapsing"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let orphans: Vec<String> = s
        .orphaned_tasks()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert!(orphans.contains(&"t-lapsed".to_string()), "{orphans:?}");
    let workers: Vec<String> = s
        .workers()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert!(workers.contains(&"alive".to_string()) && !workers.contains(&"dead".to_string()));
}

async fn admission_respects_limits(s: Arc<dyn Store>) {
    s.heartbeat(&worker("w"), Duration::from_secs(60))
        .await
        .unwrap();
    let limits = RolloutLimits {
        global: Some(6),
        per_user: Some(4),
        per_repo: Some(5),
    };
    let queue = |id: &'static str, user: &'static str, repo: &'static str, n: u32| {
        let s = s.clone();
        async move {
            s.create_task(&new_task(id, user, repo, n, "w"))
                .await
                .unwrap();
            s.set_task_state(id, TaskState::Queued, None).await.unwrap();
        }
    };
    queue("big", "alice", "r1", 9).await;
    assert!(
        s.admit_task("big", &limits).await.unwrap(),
        "alone, a task over the limit runs rather than wait forever"
    );
    assert!(
        !s.admit_task("big", &limits).await.unwrap(),
        "admitted once"
    );
    queue("a1", "alice", "r1", 1).await;
    assert!(!s.admit_task("a1", &limits).await.unwrap(), "global limit");
    s.set_task_state("big", TaskState::Done, None)
        .await
        .unwrap();
    assert!(s.admit_task("a1", &limits).await.unwrap());
    queue("a2", "alice", "r2", 3).await;
    assert!(s.admit_task("a2", &limits).await.unwrap(), "alice: 4 of 4");
    queue("a3", "alice", "r3", 1).await;
    assert!(
        !s.admit_task("a3", &limits).await.unwrap(),
        "per-user limit"
    );
    queue("b1", "bob", "r1", 2).await;
    assert!(s.admit_task("b1", &limits).await.unwrap(), "global: 6 of 6");
    queue("b2", "bob", "r4", 1).await;
    assert!(!s.admit_task("b2", &limits).await.unwrap(), "global limit");
    let load = s.load("b2").await.unwrap();
    assert_eq!(load.running_rollouts, 6);
    assert_eq!(load.user_running_rollouts, 2);
    assert_eq!(load.queued_tasks, 2);
    assert_eq!(load.user_queued_tasks, 1);
    assert_eq!(load.ahead, 1, "a3 was queued first");
    s.set_task_state("a2", TaskState::Done, None).await.unwrap();
    queue("b3", "bob", "r1", 3).await;
    // r1 runs a1 (1) + b1 (2): 3 more would make 6 > 5.
    assert!(
        !s.admit_task("b3", &limits).await.unwrap(),
        "per-repo limit"
    );
    assert!(s.admit_task("b2", &limits).await.unwrap());
    // A dead worker's tasks free their slots.
    s.heartbeat(&worker("gone"), Duration::from_secs(60))
        .await
        .unwrap();
    queue("g1", "carol", "r9", 1).await;
    s.adopt_task("g1", Some("w"), "gone").await.unwrap();
    s.set_task_state("g1", TaskState::Running, None)
        .await
        .unwrap();
    queue("c1", "carol", "r8", 2).await;
    assert!(
        !s.admit_task("c1", &limits).await.unwrap(),
        "6 of 6 with g1"
    );
    s.retire_worker("gone").await.unwrap();
    assert!(
        s.admit_task("c1", &limits).await.unwrap(),
        "g1's slot is free"
    );
}

async fn chat_links_questions_plans(s: Arc<dyn Store>) {
    s.create_task(&new_task("t1", "U1", "r", 1, "w"))
        .await
        .unwrap();
    let stage = |s: Arc<dyn Store>| async move {
        let t = s.task("t1").await.unwrap().unwrap();
        store::stage(s.as_ref(), &t).await.unwrap()
    };
    assert_eq!(stage(s.clone()).await, Stage::Spec);
    s.set_task_state("t1", TaskState::Queued, None)
        .await
        .unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Queued);
    s.set_task_state("t1", TaskState::Running, None)
        .await
        .unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Running);
    s.set_task_state("t1", TaskState::Done, None).await.unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Checked);
    s.create_task(&new_task("t2", "U1", "r", 1, "w"))
        .await
        .unwrap();
    let link = ChatTaskLink {
        task_id: "t1".into(),
        platform: "slack".into(),
        workspace: "T1".into(),
        channel: "C1".into(),
        thread: "1.0".into(),
        trigger_ts: Some("1.1".into()),
        requester: "U1".into(),
        ..ChatTaskLink::default()
    };
    s.link_chat_task(&link).await.unwrap();
    s.link_chat_task(&ChatTaskLink {
        task_id: "t2".into(),
        trigger_ts: None,
        retry_of: Some("t1".into()),
        feedback: Some("try harder".into()),
        ..link.clone()
    })
    .await
    .unwrap();
    s.set_status_ts("t1", "1.2").await.unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Checked);
    s.set_summary_ts("t1", "1.3").await.unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Summarised);
    s.approve("t1", 1, "U1").await.unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Approved);
    s.claim_publication("t1", 1, "b").await.unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Approved);
    s.finish_publication("t1", "c", "https://pr", Some(1))
        .await
        .unwrap();
    assert_eq!(stage(s.clone()).await, Stage::Published);
    let got = s
        .chat_task_by_trigger("slack", "C1", "1.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.status_ts.as_deref(), got.summary_ts.as_deref()),
        (Some("1.2"), Some("1.3"))
    );
    assert_eq!(
        s.retry_of("t1").await.unwrap().map(|l| l.task_id),
        Some("t2".into())
    );
    assert_eq!(s.channel_repo("slack", "C1").await.unwrap(), None);
    s.set_channel_repo("slack", "C1", "acme/a").await.unwrap();
    s.set_channel_repo("slack", "C1", "acme/b").await.unwrap();
    assert_eq!(
        s.channel_repo("slack", "C1").await.unwrap().as_deref(),
        Some("acme/b")
    );
    let q = Question {
        id: "q1".into(),
        platform: "slack".into(),
        workspace: "T1".into(),
        channel: "C1".into(),
        thread: "1.0".into(),
        trigger_ts: None,
        requester: "U1".into(),
        kind: "fix".into(),
        instructions: Some("fix it".into()),
        base_ref: None,
        attempts: Some(2),
        message_ts: None,
        expires_at: chrono::Utc::now(),
    };
    s.ask(&q).await.unwrap();
    assert_eq!(s.open_questions().await.unwrap().len(), 1);
    assert_eq!(
        s.question("q1").await.unwrap().and_then(|q| q.attempts),
        Some(2)
    );
    assert!(s.close_question("q1", "answered").await.unwrap());
    assert!(!s.close_question("q1", "expired").await.unwrap(), "once");
    assert!(s.open_questions().await.unwrap().is_empty());
    let plan = threadsmith_bot::store::Plan {
        id: "p1".into(),
        platform: "slack".into(),
        repo: "acme/a".into(),
        spec_json: "{}".into(),
        plan: "1. do it".into(),
        attempts: Some(3),
        ..Default::default()
    };
    s.create_plan(&plan).await.unwrap();
    assert_eq!(s.plan("p1").await.unwrap(), Some(plan));
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
    assert_eq!(lease("c", 2, later, true).await.unwrap().state, "failed");
    s.approve("t1", 2, "U2").await.unwrap();
    assert_eq!(
        lease("c", 2, later, false).await.unwrap().state,
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
    assert_eq!(lease("e", 2, later, true).await.unwrap().state, "published");

    assert!(s.replace_effect("shown:1", "h1").await.unwrap());
    assert!(!s.replace_effect("shown:1", "h1").await.unwrap());
    assert!(s.replace_effect("shown:1", "h2").await.unwrap());
    assert_eq!(s.effect("shown:1").await.unwrap().as_deref(), Some("h2"));
}

/// A channel's tasks come from the store by channel: many newer tasks elsewhere (other
/// channels, the same channel id on another platform) never hide them.
async fn channel_tasks_are_read_by_channel(s: Arc<dyn Store>) {
    let link = |id: &str, platform: &str, channel: &str| ChatTaskLink {
        task_id: id.into(),
        platform: platform.into(),
        workspace: "T1".into(),
        channel: channel.into(),
        thread: format!("{id}.0"),
        requester: "U1".into(),
        ..ChatTaskLink::default()
    };
    s.create_task(&new_task("quiet", "U1", "r", 1, "w"))
        .await
        .unwrap();
    s.link_chat_task(&link("quiet", "slack", "C1"))
        .await
        .unwrap();
    for n in 0..25 {
        let id = format!("busy{n:02}");
        s.create_task(&new_task(&id, "U1", "r", 1, "w"))
            .await
            .unwrap();
        s.link_chat_task(&link(&id, "slack", "C2")).await.unwrap();
    }
    s.create_task(&new_task("other", "U1", "r", 1, "w"))
        .await
        .unwrap();
    s.link_chat_task(&link("other", "discord", "C1"))
        .await
        .unwrap();
    s.create_task(&new_task("cli", "U1", "r", 1, "w"))
        .await
        .unwrap();

    let quiet = s.recent_channel_tasks("slack", "C1", 20).await.unwrap();
    assert_eq!(
        quiet.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["quiet"]
    );
    let busy = s.recent_channel_tasks("slack", "C2", 20).await.unwrap();
    assert_eq!(busy.len(), 20);
    assert!(
        busy.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "newest first"
    );
    assert!(busy.iter().all(|t| t.id.starts_with("busy")));
    assert!(
        s.recent_channel_tasks("slack", "C3", 20)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A thread's running task and the requests queued behind it, oldest first, each once.
async fn requests_queue_behind_a_threads_task(s: Arc<dyn Store>) {
    s.create_task(&new_task("run", "U1", "r", 1, "w"))
        .await
        .unwrap();
    s.link_chat_task(&ChatTaskLink {
        task_id: "run".into(),
        platform: "slack".into(),
        workspace: "T1".into(),
        channel: "C1".into(),
        thread: "1.0".into(),
        trigger_ts: Some("1.1".into()),
        requester: "U1".into(),
        ..ChatTaskLink::default()
    })
    .await
    .unwrap();
    let active = s.active_thread_task("slack", "C1", "1.0").await.unwrap();
    assert_eq!(active.map(|l| l.task_id).as_deref(), Some("run"));
    assert!(
        s.active_thread_task("slack", "C1", "2.0")
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        s.queue_request("slack", "C1", "1.0", "1.2", "{\"a\":1}")
            .await
            .unwrap()
    );
    assert!(
        !s.queue_request("slack", "C1", "1.0", "1.2", "{\"a\":1}")
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        s.queue_request("slack", "C1", "1.0", "1.3", "{\"b\":2}")
            .await
            .unwrap()
    );
    assert!(
        s.queue_request("slack", "C1", "9.0", "9.1", "{}")
            .await
            .unwrap()
    );
    let (ts, event, _) = s
        .next_queued_request("slack", "C1", "1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ts.as_str(), event.as_str()), ("1.2", "{\"a\":1}"));
    s.unqueue_request("slack", "C1", "1.2").await.unwrap();
    let (ts, _, _) = s
        .next_queued_request("slack", "C1", "1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ts, "1.3");
    s.unqueue_request("slack", "C1", "1.3").await.unwrap();
    assert!(
        s.next_queued_request("slack", "C1", "1.0")
            .await
            .unwrap()
            .is_none()
    );

    s.set_task_state("run", TaskState::Done, None)
        .await
        .unwrap();
    assert!(
        s.active_thread_task("slack", "C1", "1.0")
            .await
            .unwrap()
            .is_none()
    );
}

async fn threads_are_claimed_by_one_request(s: Arc<dyn Store>) {
    s.heartbeat(&worker("w1"), Duration::from_secs(60))
        .await
        .unwrap();
    s.heartbeat(&worker("w2"), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        s.claim_thread("slack", "C1", "1.0", "1.1", "w1")
            .await
            .unwrap()
    );
    // Another request, from any live process, waits; the same request may claim it again.
    assert!(
        !s.claim_thread("slack", "C1", "1.0", "1.2", "w2")
            .await
            .unwrap()
    );
    assert!(
        !s.claim_thread("slack", "C1", "1.0", "1.2", "w1")
            .await
            .unwrap()
    );
    assert!(
        s.claim_thread("slack", "C1", "1.0", "1.1", "w2")
            .await
            .unwrap()
    );
    assert!(
        s.claim_thread("slack", "C1", "2.0", "2.1", "w2")
            .await
            .unwrap()
    );
    assert_eq!(
        s.thread_holder("slack", "C1", "1.0")
            .await
            .unwrap()
            .as_deref(),
        Some("1.1")
    );
    // Only its holder releases it.
    s.release_thread("slack", "C1", "1.0", "1.1", "w2")
        .await
        .unwrap();
    assert!(
        !s.claim_thread("slack", "C1", "1.0", "1.2", "w2")
            .await
            .unwrap()
    );
    s.release_thread("slack", "C1", "1.0", "1.1", "w1")
        .await
        .unwrap();
    assert!(
        s.thread_holder("slack", "C1", "1.0")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.claim_thread("slack", "C1", "1.0", "1.2", "w2")
            .await
            .unwrap()
    );
    // A claim whose worker is not alive is free.
    assert!(
        s.claim_thread("slack", "C1", "3.0", "3.1", "dead")
            .await
            .unwrap()
    );
    assert!(
        s.thread_holder("slack", "C1", "3.0")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.claim_thread("slack", "C1", "3.0", "3.2", "w1")
            .await
            .unwrap()
    );
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
