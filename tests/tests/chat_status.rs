//! `@threadsmith status` and `/fix status` in a channel, whatever happens elsewhere.

use threadsmith_bot::store::{ChatTaskLink, NewTask, TaskState};
use threadsmith_tests::env;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};

const QUIET: &str = "C111";
const BUSY: &str = "C222";
const ALICE: &str = "U222";

async fn chat_task(env: &threadsmith_tests::TestEnv, title: &str, channel: &str) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    env.svc
        .store
        .create_task(&NewTask {
            id: id.clone(),
            origin: "slack".into(),
            requester: Some(ALICE.into()),
            title: title.into(),
            spec: "spec".into(),
            repo: "acme/calc".into(),
            base_ref: None,
            attempts: 1,
            spec_json: None,
            worker: None,
        })
        .await
        .unwrap();
    env.svc
        .store
        .link_chat_task(&ChatTaskLink {
            task_id: id.clone(),
            platform: "slack".into(),
            workspace: "T1".into(),
            channel: channel.into(),
            thread: format!("{id}.0"),
            requester: ALICE.into(),
            ..ChatTaskLink::default()
        })
        .await
        .unwrap();
    // Ended and summarised: nothing for the bot to take over.
    env.svc
        .store
        .set_task_state(&id, TaskState::Failed, Some("it failed"))
        .await
        .unwrap();
    env.svc.store.set_summary_ts(&id, "1.1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_lists_a_channels_tasks_though_others_are_busier() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let env = env(move |c| threadsmith_tests::use_fake_slack(c, &api)).await;
    chat_task(&env, "The quiet channel's task", QUIET).await;
    for n in 0..25 {
        chat_task(&env, &format!("Busy task {n}"), BUSY).await;
    }
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    let (_, e) = slack.mention(QUIET, ALICE, "<@UBOT> status", None).await;
    slack.ack(&e).await;
    let reply = slack
        .wait_for("the status reply", |s| {
            s.messages(QUIET)
                .into_iter()
                .find(|m| m.is_bot() && m.thread_ts.is_some())
        })
        .await;
    assert!(
        reply.text.contains("The quiet channel's task") && !reply.text.contains("Busy task"),
        "{}",
        reply.text
    );

    slack.slash("/fix", "status", QUIET, ALICE).await;
    slack
        .wait_until("the /fix status reply", |s| {
            s.ephemerals()
                .iter()
                .any(|m| m.user == ALICE && m.text.contains("The quiet channel's task"))
        })
        .await;
    running.stop(&shutdown).await;
}
