//! Taking over what a dead process left: its running task is reported stopped, with Retry; its
//! finished task's unsent summary is posted; each once, however often the loop looks.

use super::*;
use crate::chat::{ChatPort, Reaction, StatusView};
use crate::store::{NewTask, TaskState};

const DEAD: &str = "gone-host:4242:1";

/// A task of a dead process, in `state`, linked to a thread whose status message it posted.
async fn left_behind(w: &World, state: TaskState) -> (ThreadRef, String) {
    let thread = w.thread("1", "<@UBOT> fix this");
    let task_id = "0dead0000000000000000000000000001".to_string();
    let store = &w.bot.svc.store;
    store
        .create_task(&NewTask {
            id: task_id.clone(),
            origin: "slack".into(),
            requester: Some(REQUESTER.into()),
            title: "Fix the login".into(),
            spec: "The login page is broken.".into(),
            repo: "acme/api".into(),
            base_ref: None,
            attempts: 2,
            spec_json: None,
            worker: Some(DEAD.into()),
        })
        .await
        .unwrap();
    store.set_task_state(&task_id, state, None).await.unwrap();
    let status = OutMessage::Status(StatusView {
        task_id: task_id.clone(),
        title: "Fix the login".into(),
        headline: "Running 2 rollouts on `main`…".into(),
        rollouts: vec![(1, "agent step 3".into()), (2, "running the tests".into())],
        running: true,
    });
    let status_ts = w.port.post(&thread, &status).await.unwrap();
    w.port
        .react(&thread, &thread.thread, Reaction::Working, true)
        .await
        .unwrap();
    store
        .link_chat_task(&ChatTaskLink {
            task_id: task_id.clone(),
            platform: thread.platform.clone(),
            workspace: thread.workspace.clone(),
            channel: thread.channel.clone(),
            thread: thread.thread.clone(),
            trigger_ts: Some(thread.thread.clone()),
            requester: REQUESTER.into(),
            status_ts: Some(status_ts),
            summary_ts: None,
            retry_of: None,
            feedback: None,
        })
        .await
        .unwrap();
    (thread, task_id)
}

#[tokio::test]
async fn a_dead_processs_running_task_is_reported_stopped_once_with_retry() {
    let w = World::new().await;
    let (thread, task_id) = left_behind(&w, TaskState::Running).await;
    w.bot.reconcile().await;
    w.bot.reconcile().await;

    let task = w.bot.svc.store.task(&task_id).await.unwrap().unwrap();
    assert_eq!(task.state, TaskState::Failed);
    assert_eq!(
        task.worker.as_deref(),
        Some(w.bot.svc.worker_id()),
        "adopted"
    );
    let offers: Vec<_> = w
        .port
        .posts()
        .into_iter()
        .filter(|m| matches!(m, OutMessage::RetryOffer { task_id: t, .. } if *t == task_id))
        .collect();
    assert_eq!(offers.len(), 1, "said once: {offers:?}");
    assert!(
        w.port
            .shown_texts()
            .iter()
            .any(|t| t.starts_with("Stopped: threadsmith stopped")),
        "the status message says it stopped"
    );
    assert_eq!(w.port.reactions_on(&thread.thread), vec![Reaction::Failed]);
    w.settled().await;
}

#[tokio::test]
async fn a_dead_processs_unsent_summary_is_posted() {
    let w = World::new().await;
    let (thread, task_id) = left_behind(&w, TaskState::Done).await;
    w.bot.reconcile().await;
    w.bot.reconcile().await;
    let summaries = w.summaries();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].task_id, task_id);
    assert!(w.link(&task_id).await.summary_ts.is_some());
    assert_eq!(
        w.bot.svc.store.task(&task_id).await.unwrap().unwrap().state,
        TaskState::Done
    );
    assert_eq!(w.port.reactions_on(&thread.thread), vec![Reaction::Failed]);
    w.settled().await;
}
