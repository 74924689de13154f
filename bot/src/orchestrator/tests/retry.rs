//! Retry: a form for the requester; its feedback starts a second task, once.

use super::*;

fn submitted(task_id: &str, user: &str, feedback: &str) -> ChatEvent {
    ChatEvent::RetrySubmitted {
        task_id: task_id.into(),
        user: user.into(),
        feedback: feedback.into(),
        from: String::new(),
    }
}

#[tokio::test]
async fn retry_opens_the_form_for_the_requester_only() {
    let w = World::new().await;
    let (thread, task) = w.run_mention("1", "fix this").await;
    let retry = ButtonAction::Retry {
        task_id: task.id.clone(),
    };
    w.deliver("other", World::button(&thread, OTHER, retry.clone()))
        .await;
    assert!(says(
        &w.port.ephemerals_to(OTHER)[0],
        &["Only the person who asked for this task or a maintainer can retry it."]
    ));
    w.deliver("mine", World::button(&thread, REQUESTER, retry))
        .await;
    let forms: Vec<_> = w
        .port
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::OpenForm { form, .. } => Some(form),
            _ => None,
        })
        .collect();
    assert_eq!(forms, vec![crate::chat::Form::Retry { task_id: task.id }]);
    w.settled().await;
}

#[tokio::test]
async fn feedback_starts_a_second_task_once_and_the_first_summary_names_it() {
    let w = World::new().await;
    let (_, first) = w.run_mention("1", "fix this").await;
    w.deliver(
        "retry",
        submitted(&first.id, REQUESTER, "  use the v2 API  "),
    )
    .await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 2);
    let spec = requests[1].spec.as_ref().unwrap();
    assert_eq!(spec.feedback.as_deref(), Some("use the v2 API"));
    assert_eq!(requests[1].repo, requests[0].repo);
    let second = requests[1].task_id.clone().unwrap().into_string();
    let link = w.link(&second).await;
    assert_eq!(link.retry_of.as_deref(), Some(first.id.as_str()));
    assert_eq!(link.feedback.as_deref(), Some("use the v2 API"));

    let summaries = w.summaries();
    assert_eq!(summaries.len(), 2);
    let earlier = summaries.iter().find(|s| s.task_id == first.id).unwrap();
    assert_eq!(
        earlier.retried.as_deref(),
        Some(second.as_str()),
        "its Retry is used"
    );
    let later = summaries.iter().find(|s| s.task_id == second).unwrap();
    assert!(
        later.previous.is_some(),
        "links back to the earlier summary"
    );

    // A second submission starts nothing and says why.
    w.deliver("retry-again", submitted(&first.id, REQUESTER, "again"))
        .await;
    assert_eq!(w.tasks.requests().len(), 2);
    assert!(says(
        &w.port.ephemerals_to(REQUESTER)[0],
        &["retried already", &second[..8]]
    ));
    w.settled().await;
}

#[tokio::test]
async fn a_retry_submitted_by_someone_else_starts_nothing() {
    let w = World::new().await;
    let (_, first) = w.run_mention("1", "fix this").await;
    w.deliver("retry", submitted(&first.id, OTHER, "mine now"))
        .await;
    assert_eq!(w.tasks.requests().len(), 1);
    assert!(says(
        &w.port.ephemerals_to(OTHER)[0],
        &["Only the person who asked"]
    ));
    w.settled().await;
}
