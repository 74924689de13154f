//! `Store::gauges` (what `/metrics` reads at each scrape) on both stores: tasks by state,
//! rollouts running, the inbox's unhandled events and the oldest one's arrival.

#[macro_use]
mod store_common;
use store_common::*;

check!(gauges_count_what_the_database_holds);

fn finished(index: u32) -> RolloutResult {
    let now = chrono::Utc::now();
    RolloutResult {
        index,
        outcome: Outcome::Succeeded,
        detail: String::new(),
        summary: None,
        confidence: None,
        sampling: None,
        test: None,
        diff: Diff::default(),
        commands: Vec::new(),
        network: None,
        started_at: now,
        finished_at: now,
        agent_duration: Duration::from_secs(1),
        timings: Default::default(),
        cost: Default::default(),
        environment: None,
    }
}

fn count(g: &store::Gauges, state: TaskState) -> u64 {
    g.tasks
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, n)| *n)
        .expect("every state is listed")
}

async fn gauges_count_what_the_database_holds(s: Arc<dyn Store>) {
    let empty = s.gauges().await.unwrap();
    assert_eq!(empty.tasks.len(), TaskState::ALL.len());
    assert!(empty.tasks.iter().all(|(_, n)| *n == 0));
    assert_eq!(
        (
            empty.rollouts_running,
            empty.inbox_pending,
            empty.oldest_pending
        ),
        (0, 0, None)
    );

    let sampling = Sampling {
        temperature: 0.5,
        seed: 1,
    };
    // A running task with three rollouts, one of them ended; a queued task; a done task
    // whose rollouts never reported an end (they do not run).
    for id in ["run", "wait", "old"] {
        s.create_task(&new_task(id, "U1", "acme/api", 3, "w"))
            .await
            .unwrap();
    }
    s.set_task_state("run", TaskState::Running, None)
        .await
        .unwrap();
    s.create_rollouts("run", &[(1, sampling), (2, sampling), (3, sampling)])
        .await
        .unwrap();
    s.finish_rollout("run", &finished(2)).await.unwrap();
    s.set_task_state("wait", TaskState::Queued, None)
        .await
        .unwrap();
    s.create_rollouts("old", &[(1, sampling)]).await.unwrap();
    s.set_task_state("old", TaskState::Done, None)
        .await
        .unwrap();

    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let first = s.enqueue("e1", "slack", "{}").await.unwrap().unwrap();
    s.enqueue("e2", "discord", "{}").await.unwrap().unwrap();
    s.enqueue("e3", "slack", "{}").await.unwrap().unwrap();
    s.finish_inbox(first, None).await.unwrap();
    // One taken (leased), one queued: both unhandled.
    let taken = s
        .claim_inbox("slack", "w", Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);

    let g = s.gauges().await.unwrap();
    assert_eq!(count(&g, TaskState::Running), 1);
    assert_eq!(count(&g, TaskState::Queued), 1);
    assert_eq!(count(&g, TaskState::Done), 1);
    assert_eq!(count(&g, TaskState::Received), 0);
    assert_eq!(g.rollouts_running, 2);
    assert_eq!(g.inbox_pending, 2);
    let oldest = g.oldest_pending.expect("events wait");
    assert!(oldest >= before && oldest <= chrono::Utc::now(), "{oldest}");
}
