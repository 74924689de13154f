//! Plans: refused without a model; made by the model (a scripted endpoint on loopback) and
//! shown; Run it starts the plan's task once, for the requester or a maintainer only; Revise
//! makes a new plan from the feedback.

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

async fn with_model() -> (World, crate::testing::ScriptedModel) {
    let model = crate::testing::ScriptedModel::start().await;
    let mut config = crate::testing::config();
    config.model.base_url = Some(model.base_url());
    config.model.max_retries = Some(0);
    (World::with(config, |_| {}).await, model)
}

/// The plan shown now (the status message, edited into it).
fn shown_plan(w: &World) -> Option<crate::chat::PlanView> {
    w.port.shown().into_iter().find_map(|(_, m)| match m {
        OutMessage::Plan(p) => Some(p),
        _ => None,
    })
}

#[tokio::test]
async fn a_plan_is_shown_and_its_run_it_runs_it() {
    let (w, model) = with_model().await;
    let thread = w.thread("1", "<@UBOT> plan — the login page rejects my password");
    w.deliver("plan", World::mention(&thread, "plan")).await;
    assert_eq!(model.tools_asked(), vec!["write_spec", "write_plan"]);
    let view = shown_plan(&w).expect("the plan is shown");
    assert_eq!(view.title, crate::testing::SPEC_TITLE);
    assert_eq!(view.plan, crate::testing::PLAN);
    assert_eq!(view.repo, "acme/api");
    assert!(w.tasks.requests().is_empty(), "nothing runs before Run it");
    assert!(w.port.reactions_on(&thread.thread).is_empty(), "no 👀 left");

    let run = World::button(
        &thread,
        REQUESTER,
        ButtonAction::RunPlan {
            plan_id: view.plan_id.clone(),
        },
    );
    w.deliver("run", run).await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 1);
    let spec = requests[0].spec.as_ref().unwrap();
    assert_eq!(spec.plan.as_deref(), Some(crate::testing::PLAN));
    assert_eq!(spec.title, crate::testing::SPEC_TITLE);
    assert_eq!(w.summaries()[0].title, crate::testing::SPEC_TITLE);
    w.settled().await;
}

#[tokio::test]
async fn revise_opens_its_form_and_the_feedback_makes_a_new_plan() {
    let (w, model) = with_model().await;
    let thread = w.thread("1", "<@UBOT> plan");
    w.deliver("plan", World::mention(&thread, "plan")).await;
    let first = shown_plan(&w).unwrap();
    let revise = ButtonAction::RevisePlan {
        plan_id: first.plan_id.clone(),
    };
    w.deliver("revise", World::button(&thread, REQUESTER, revise))
        .await;
    assert!(w.port.calls().iter().any(|c| matches!(
        c,
        Call::OpenForm { form: crate::chat::Form::RevisePlan { plan_id }, .. } if *plan_id == first.plan_id
    )));
    let revision = ChatEvent::PlanRevision {
        plan_id: first.plan_id.clone(),
        user: REQUESTER.into(),
        feedback: "keep the old error message".into(),
    };
    w.deliver("revision", revision).await;
    let asked = model.requests();
    assert_eq!(asked.len(), 3, "the spec is not asked for again");
    assert!(asked[2].to_string().contains("keep the old error message"));
    let plans: Vec<_> = w
        .port
        .shown()
        .into_iter()
        .filter_map(|(_, m)| match m {
            OutMessage::Plan(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(plans.len(), 2);
    let stored = w
        .bot
        .svc
        .store
        .plan(&plans[1].plan_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.revises.as_deref(), Some(first.plan_id.as_str()));
    w.settled().await;
}
