//! The store's chat side, on SQLite and PostgreSQL (see `store.rs`): links of tasks to threads,
//! questions and plans, a channel's tasks, requests queued behind a thread's task.

#[macro_use]
mod store_common;
use store_common::*;

check!(
    chat_links_questions_plans,
    channel_tasks_are_read_by_channel,
    requests_queue_behind_a_threads_task,
    threads_are_claimed_by_one_request,
);

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
