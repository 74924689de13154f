//! Follow-up rounds in the store (`task_rounds`), on SQLite and PostgreSQL: a round's row, the
//! chain of a task, a replay keeping the first row, and a thread's tasks newest first.

#[macro_use]
mod store_common;
use store_common::*;
use threadsmith_bot::store::RoundLink;

fn round(task: &str, root: &str, n: u32, from: &str, k: u32) -> RoundLink {
    RoundLink {
        task_id: task.into(),
        root: root.into(),
        round: n,
        from_task: from.into(),
        from_rollout: k,
        request: Some(format!("round {n}")),
    }
}

fn link(task: &str) -> ChatTaskLink {
    ChatTaskLink {
        task_id: task.into(),
        platform: "slack".into(),
        workspace: "T1".into(),
        channel: "C1".into(),
        thread: "1.000100".into(),
        requester: "U1".into(),
        ..ChatTaskLink::default()
    }
}

async fn rounds_chain_and_replay(s: Arc<dyn Store>) {
    for id in ["r1", "r2", "r3"] {
        s.create_task(&new_task(id, "U1", "acme/calc", 2, "w1"))
            .await
            .unwrap();
        s.link_chat_task(&link(id)).await.unwrap();
    }
    s.set_task_state("r1", TaskState::Done, None).await.unwrap();
    s.set_round(&round("r2", "r1", 2, "r1", 2)).await.unwrap();
    s.set_round(&round("r3", "r1", 3, "r2", 1)).await.unwrap();
    // A replay keeps the first row.
    s.set_round(&round("r3", "r1", 9, "r1", 9)).await.unwrap();

    let place = s.place("r3").await.unwrap();
    assert_eq!((place.root.as_str(), place.round), ("r1", 3));
    assert_eq!(place.link.unwrap().from_rollout, 1);
    let first = s.place("r1").await.unwrap();
    assert_eq!((first.round, first.link), (1, None));
    let chain = s.chain("r2").await.unwrap();
    assert_eq!(
        chain,
        vec![(1, "r1".to_string()), (2, "r2".into()), (3, "r3".into())]
    );
    let tasks = s.thread_tasks("slack", "C1", "1.000100").await.unwrap();
    assert_eq!(tasks.len(), 3);
    assert!(tasks.contains(&("r1".to_string(), TaskState::Done)));
    assert!(
        s.thread_tasks("slack", "C1", "other")
            .await
            .unwrap()
            .is_empty()
    );
}

check!(rounds_chain_and_replay);
