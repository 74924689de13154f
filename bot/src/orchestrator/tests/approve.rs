//! Approve: who may, once per task. Publishing is off in these tests (it needs git and a
//! forge: the end-to-end suite covers it), so an approval is recorded, said once and shown on
//! the summary.

use super::*;

fn approve(thread: &ThreadRef, user: &str, task_id: &str, rollout: u32) -> ChatEvent {
    World::button(
        thread,
        user,
        ButtonAction::Approve {
            task_id: task_id.into(),
            rollout,
        },
    )
}

#[tokio::test]
async fn approval_by_someone_else_is_refused() {
    let w = World::new().await;
    let (thread, task) = w.run_mention("1", "fix this").await;
    w.deliver("other", approve(&thread, OTHER, &task.id, 1))
        .await;
    assert_eq!(
        w.port.ephemerals_to(OTHER),
        vec!["Only the person who asked for this task or a maintainer can approve it.".to_string()]
    );
    assert_eq!(w.bot.svc.store.approval(&task.id).await.unwrap(), None);
    assert_eq!(w.summaries()[0].approved, None);
    w.settled().await;
}

#[tokio::test]
async fn an_approval_is_recorded_said_once_and_shown_on_the_summary() {
    let w = World::new().await;
    let (thread, task) = w.run_mention("1", "fix this").await;
    w.deliver("approve", approve(&thread, REQUESTER, &task.id, 1))
        .await;
    let approval = w.bot.svc.store.approval(&task.id).await.unwrap().unwrap();
    assert_eq!(
        (approval.rollout, approval.approved_by.as_str()),
        (1, REQUESTER)
    );
    assert_eq!(w.summaries()[0].approved, Some((1, REQUESTER.to_string())));
    let said = |w: &World| {
        w.port
            .shown_texts()
            .into_iter()
            .filter(|t| t.starts_with(&format!("Rollout 1 approved by <@{REQUESTER}>.")))
            .count()
    };
    assert_eq!(said(&w), 1);
    let edits = w.port.count(|c| matches!(c, Call::Update { .. }));

    // The same click again: told privately where it stands; nothing posted or edited.
    w.deliver("again", approve(&thread, REQUESTER, &task.id, 1))
        .await;
    assert!(says(
        &w.port.ephemerals_to(REQUESTER)[0],
        &[
            "You already approved rollout 1",
            "publishing is not configured"
        ]
    ));
    // Another rollout: refused, the first approval stands.
    w.deliver("second", approve(&thread, REQUESTER, &task.id, 2))
        .await;
    assert!(says(
        &w.port.ephemerals_to(REQUESTER)[1],
        &["already approved: rollout 1", "rollout 2 was not approved"]
    ));
    assert_eq!(said(&w), 1);
    assert_eq!(w.port.count(|c| matches!(c, Call::Update { .. })), edits);
    assert_eq!(
        w.bot
            .svc
            .store
            .approval(&task.id)
            .await
            .unwrap()
            .unwrap()
            .rollout,
        1
    );
    w.settled().await;
}

#[tokio::test]
async fn approving_a_rollout_that_does_not_exist_is_refused() {
    let w = World::new().await;
    let (thread, task) = w.run_mention("1", "fix this").await;
    w.deliver("nine", approve(&thread, REQUESTER, &task.id, 9))
        .await;
    assert_eq!(
        w.port.ephemerals_to(REQUESTER),
        vec!["That rollout does not exist.".to_string()]
    );
    assert_eq!(w.bot.svc.store.approval(&task.id).await.unwrap(), None);
    w.settled().await;
}

#[tokio::test]
async fn a_maintainer_may_approve() {
    let w = World::with(crate::testing::config(), |s| {
        s.maintainers = vec![OTHER.into()];
    })
    .await;
    let (thread, task) = w.run_mention("1", "fix this").await;
    w.deliver("approve", approve(&thread, OTHER, &task.id, 2))
        .await;
    let approval = w.bot.svc.store.approval(&task.id).await.unwrap().unwrap();
    assert_eq!(
        (approval.rollout, approval.approved_by.as_str()),
        (2, OTHER)
    );
    w.settled().await;
}
