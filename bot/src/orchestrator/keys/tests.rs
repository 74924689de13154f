//! The keys as earlier versions wrote them: each literal below is copied by hand from the
//! `format!` call that produced it, so that a change of rendering fails here.

use super::EffectKey;
use crate::chat::Reaction;
use crate::store::EffectStore;
use crate::store::sql::SqlStore;

/// Every variant next to the literal the earlier `format!` call produced for the same values.
fn pinned() -> Vec<(EffectKey<'static>, &'static str)> {
    const STATUS: EffectKey<'static> = EffectKey::Status {
        channel: "C1",
        anchor: "171.5",
    };
    vec![
        // reply:{channel}:{message_ts} (trigger, direct message), reply:{channel}:{anchor} (plan)
        (
            EffectKey::Reply {
                channel: "C1",
                anchor: "171.5",
            },
            "reply:C1:171.5",
        ),
        // react:{channel}:{ts}:{reaction:?}:{on}
        (
            EffectKey::React {
                channel: "C1",
                ts: "171.5",
                reaction: Reaction::Working,
                on: true,
            },
            "react:C1:171.5:Working:true",
        ),
        (
            EffectKey::React {
                channel: "C1",
                ts: "171.5",
                reaction: Reaction::Failed,
                on: false,
            },
            "react:C1:171.5:Failed:false",
        ),
        // status:{channel}:{anchor}
        (STATUS, "status:C1:171.5"),
        // plan-status:{channel}:{anchor}
        (
            EffectKey::PlanStatus {
                channel: "C1",
                anchor: "revise-p1",
            },
            "plan-status:C1:revise-p1",
        ),
        // withheld:{channel}:{anchor}
        (
            EffectKey::Withheld {
                channel: "C1",
                anchor: "171.5",
            },
            "withheld:C1:171.5",
        ),
        // specfallback:{channel}:{anchor}
        (
            EffectKey::SpecFallback {
                channel: "C1",
                anchor: "171.5",
            },
            "specfallback:C1:171.5",
        ),
        // queued:{channel}:{message_ts}
        (
            EffectKey::Queued {
                channel: "C1",
                ts: "171.5",
            },
            "queued:C1:171.5",
        ),
        // dequeued:{platform}:{channel}:{ts}:{queued_at}
        (
            EffectKey::Dequeued {
                platform: "slack",
                channel: "C1",
                ts: "171.5",
                queued_at: 1_767_322_800_123,
            },
            "dequeued:slack:C1:171.5:1767322800123",
        ),
        // request:{platform}:{channel}:{ts}
        (
            EffectKey::Request {
                platform: "discord",
                channel: "42",
                ts: "43",
            },
            "request:discord:42:43",
        ),
        // posting:{key}
        (EffectKey::Posting(&STATUS), "posting:status:C1:171.5"),
        // expire:{question_id}
        (EffectKey::Expire { question_id: "q1" }, "expire:q1"),
        // panicked:{inbox_id}
        (EffectKey::Panicked { inbox_id: 17 }, "panicked:17"),
        // summary:{task_id}
        (EffectKey::Summary { task_id: "t1" }, "summary:t1"),
        // summary-shown:{task_id}:{ts}
        (
            EffectKey::SummaryShown {
                task_id: "t1",
                ts: "171.9",
            },
            "summary-shown:t1:171.9",
        ),
        // upload:{task_id}:{r.index}
        (
            EffectKey::Upload {
                task_id: "t1",
                rollout: 2,
            },
            "upload:t1:2",
        ),
        // permalink:{task_id}
        (EffectKey::Permalink { task_id: "t1" }, "permalink:t1"),
        // retry:{task_id}
        (EffectKey::Retry { task_id: "t1" }, "retry:t1"),
        // runplan:{plan_id}
        (EffectKey::RunPlan { plan_id: "p1" }, "runplan:p1"),
        // approved:{task_id}
        (EffectKey::Approved { task_id: "t1" }, "approved:t1"),
        // published:{task_id}
        (EffectKey::Published { task_id: "t1" }, "published:t1"),
        // publish-failed:{task_id}:{a}
        (
            EffectKey::PublishFailed {
                task_id: "t1",
                attempt: "a1",
            },
            "publish-failed:t1:a1",
        ),
        // conflict:{task_id}
        (EffectKey::Conflict { task_id: "t1" }, "conflict:t1"),
        // cancelled:{task_id}
        (EffectKey::Cancelled { task_id: "t1" }, "cancelled:t1"),
        // interrupted:{task_id}
        (EffectKey::Interrupted { task_id: "t1" }, "interrupted:t1"),
    ]
}

#[test]
fn every_key_renders_as_earlier_versions_wrote_it() {
    for (key, old) in pinned() {
        assert_eq!(key.as_key(), old, "{key:?}");
        assert_eq!(key.to_string(), old, "{key:?}");
    }
}

/// Rows an earlier version recorded under the literal keys are found, and count as done, when
/// this version asks with its keys.
#[tokio::test]
async fn rows_recorded_under_the_old_keys_are_seen_as_done() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let store = SqlStore::open(&url).await.unwrap();
    for (i, (_, old)) in pinned().iter().enumerate() {
        let result = format!("result-{i}");
        assert!(store.record_effect(old, &result).await.unwrap(), "{old}");
    }
    for (i, (key, _)) in pinned().iter().enumerate() {
        let key = key.as_key();
        assert_eq!(
            store.effect(&key).await.unwrap(),
            Some(format!("result-{i}")),
            "{key}"
        );
        // Done already: recording it again is refused, as a replay must be.
        assert!(!store.record_effect(&key, "again").await.unwrap(), "{key}");
    }
}
