//! A rollout without a confidence (it gave up) stored before one with a confidence, on the same
//! PostgreSQL connection: sqlx's Any driver declares a missing `f64` as `float4`, and the
//! statement it caches keeps that type, so the next rollout's `f64` was refused ("incorrect
//! binary data format in bind parameter 4") and the task stopped. Found by
//! publish_discord.rs (two processes, one database).

use std::time::Duration;

use threadsmith_bot::store::{self, NewTask};
use threadsmith_runner::{Diff, Outcome, RolloutResult, Sampling};

fn result(index: u32, confidence: Option<f64>, sampling: Option<Sampling>) -> RolloutResult {
    let now = chrono::Utc::now();
    RolloutResult {
        index,
        outcome: Outcome::Succeeded,
        detail: String::new(),
        summary: None,
        confidence,
        sampling,
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

#[tokio::test(flavor = "multi_thread")]
async fn a_confidence_is_stored_after_a_rollout_without_one_on_postgres() {
    let url = threadsmith_tests::postgres::database().await;
    let s = store::open(&url).await.unwrap();
    s.create_task(&NewTask {
        id: "t1".into(),
        origin: "cli".into(),
        requester: None,
        title: "t".into(),
        spec: "spec".into(),
        repo: "acme/calc".into(),
        base_ref: None,
        attempts: 21,
        spec_json: None,
        worker: None,
    })
    .await
    .unwrap();
    let sampling = Sampling {
        temperature: 0.7,
        seed: 3,
    };
    // Sequential calls, more than the pool has connections (16): every connection caches the
    // statement prepared with no confidence before one comes with a confidence.
    for index in 1..=20 {
        s.finish_rollout("t1", &result(index, None, None))
            .await
            .unwrap();
    }
    s.finish_rollout("t1", &result(21, Some(0.9), Some(sampling)))
        .await
        .unwrap();
    let rows = s.rollouts("t1").await.unwrap();
    let got: Vec<(u32, Option<f64>, Option<f64>)> = rows
        .iter()
        .filter(|r| r.index == 1 || r.index == 21)
        .map(|r| {
            (
                r.index,
                r.confidence,
                r.sampling.map(|s| f64::from(s.temperature)),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(1, None, None), (21, Some(0.9), Some(f64::from(0.7f32)))]
    );
}
