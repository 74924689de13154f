//! The store as a work queue, on SQLite and PostgreSQL (see `store.rs`): the inbox's leases,
//! orphaned tasks adopted once, admission under the limits.

#[macro_use]
mod store_common;
use store_common::*;

check!(
    inbox_deduplicates_and_leases,
    inbox_claims_never_overlap,
    orphans_are_adopted_once,
    admission_respects_limits,
);

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
    // A's heartbeat keeps its lease: B still finds nothing once the lease given at the claim
    // has ended.
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
    // A lease whose worker's heartbeat lapsed is taken again too.
    s.heartbeat(&b, lease).await.unwrap();
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
