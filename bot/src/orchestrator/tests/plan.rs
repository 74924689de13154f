//! Plans: refused without a model; a stored plan's Run it starts its task once, for the
//! requester or a maintainer only. (Making a plan needs the model: the end-to-end suite covers
//! it against its scripted model server.)

use super::*;
use crate::store::Plan;

async fn stored_plan(w: &World, thread: &ThreadRef) -> Plan {
    let spec = crate::spec::TaskSpec::from_text("The login page is broken.");
    let plan = Plan {
        id: "0abc".into(),
        platform: thread.platform.clone(),
        workspace: thread.workspace.clone(),
        channel: thread.channel.clone(),
        thread: thread.thread.clone(),
        trigger_ts: Some(thread.thread.clone()),
        requester: REQUESTER.into(),
        repo: "acme/web".into(),
        base_ref: None,
        attempts: Some(3),
        spec_json: serde_json::to_string(&spec).unwrap(),
        plan: "1. Read the form.\n2. Fix the check.".into(),
        revises: None,
    };
    w.bot.svc.store.create_plan(&plan).await.unwrap();
    plan
}

fn run_it(thread: &ThreadRef, user: &str) -> ChatEvent {
    World::button(
        thread,
        user,
        ButtonAction::RunPlan {
            plan_id: "0abc".into(),
        },
    )
}

#[tokio::test]
async fn planning_without_a_model_says_so() {
    let w = World::new().await;
    let thread = w.thread("1", "<@UBOT> plan");
    w.deliver("plan", World::mention(&thread, "plan")).await;
    assert_eq!(
        w.port.shown_texts(),
        vec!["Planning needs the model endpoint, and none is configured.".to_string()]
    );
    assert!(w.tasks.requests().is_empty());
    w.settled().await;
}

#[tokio::test]
async fn run_it_starts_the_plans_task_once() {
    let w = World::new().await;
    let thread = w.thread("1", "<@UBOT> plan");
    let plan = stored_plan(&w, &thread).await;
    w.deliver("run", run_it(&thread, REQUESTER)).await;
    w.deliver("run-again", run_it(&thread, REQUESTER)).await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].repo, "acme/web");
    assert_eq!(requests[0].attempts, 3);
    let spec = requests[0].spec.as_ref().unwrap();
    assert_eq!(spec.plan.as_deref(), Some(plan.plan.as_str()));
    assert_eq!(
        w.port.ephemerals_to(REQUESTER),
        vec!["This plan is already running.".to_string()]
    );
    assert_eq!(w.summaries().len(), 1);
    w.settled().await;
}

#[tokio::test]
async fn run_it_by_someone_else_is_refused_unless_a_maintainer() {
    let w = World::with(crate::testing::config(), |s| {
        s.maintainer_groups = vec!["S-admins".into()];
    })
    .await;
    let thread = w.thread("1", "<@UBOT> plan");
    stored_plan(&w, &thread).await;
    w.deliver("other", run_it(&thread, OTHER)).await;
    assert!(says(
        &w.port.ephemerals_to(OTHER)[0],
        &["Only the person who asked for this plan or a maintainer"]
    ));
    assert!(w.tasks.requests().is_empty());
    w.port.add_to_group(OTHER, "S-admins");
    w.deliver("maintainer", run_it(&thread, OTHER)).await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].requester.as_deref(),
        Some(REQUESTER),
        "the task stays the requester's"
    );
    w.settled().await;
}
