//! What attempts cost, stored on both stores: a rollout's tokens, calls and times round-trip;
//! a task's spec and plan calls add up; the day's tokens count by requester and in all.

#[macro_use]
mod store_common;
use store_common::*;
use threadsmith_runner::{ModelUsage, RolloutCost};

check!(costs_round_trip_and_the_day_counts_them);

fn finished(index: u32, cost: RolloutCost) -> RolloutResult {
    let now = chrono::Utc::now();
    RolloutResult {
        index,
        outcome: Outcome::LimitReached,
        detail: "the task's token limit was reached".into(),
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
        cost,
        environment: None,
    }
}

fn used(calls: u32, unmeasured: u32, prompt: u64, completion: u64) -> ModelUsage {
    ModelUsage {
        calls,
        unmeasured,
        prompt_tokens: prompt,
        completion_tokens: completion,
    }
}

async fn costs_round_trip_and_the_day_counts_them(s: Arc<dyn Store>) {
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    for (id, who) in [("a", "U1"), ("b", "U2")] {
        s.create_task(&new_task(id, who, "acme/api", 2, "w"))
            .await
            .unwrap();
    }
    // Unknown before anything was recorded: zero calls, no model.
    let bare = s.task("a").await.unwrap().unwrap();
    assert_eq!((bare.spec_usage, bare.model), (ModelUsage::default(), None));
    s.add_task_usage("a", Some("gpt-x"), &used(1, 0, 900, 100))
        .await
        .unwrap();
    s.add_task_usage("a", None, &used(1, 1, 0, 0))
        .await
        .unwrap();
    let a = s.task("a").await.unwrap().unwrap();
    assert_eq!(a.spec_usage, used(2, 1, 900, 100));
    assert_eq!(
        a.model.as_deref(),
        Some("gpt-x"),
        "kept when not given again"
    );

    let cost = RolloutCost {
        model: used(7, 2, 12_000, 3_000),
        model_time: Duration::from_millis(4_250),
        sandbox_time: Duration::from_millis(9_500),
    };
    s.finish_rollout("a", &finished(1, cost)).await.unwrap();
    s.finish_rollout("b", &finished(1, RolloutCost::default()))
        .await
        .unwrap();
    s.add_task_usage("b", None, &used(1, 0, 400, 0))
        .await
        .unwrap();
    let rows = s.rollouts("a").await.unwrap();
    assert_eq!(rows[0].cost, cost);
    assert_eq!(rows[0].outcome, Some(Outcome::LimitReached));

    assert_eq!(s.tokens_since(since, None).await.unwrap(), 16_400);
    assert_eq!(s.tokens_since(since, Some("U1")).await.unwrap(), 16_000);
    assert_eq!(s.tokens_since(since, Some("U2")).await.unwrap(), 400);
    assert_eq!(s.tokens_since(since, Some("U9")).await.unwrap(), 0);
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(s.tokens_since(later, None).await.unwrap(), 0);
}
