//! Approve through Discord with two `threadsmith serve` processes on one PostgreSQL database:
//! each process holds its own gateway session, clicks arrive over both, and any process takes
//! any click from the shared inbox (issue 11 item 6).

mod publish_common;
use publish_common::*;

use serde_json::Value;
use threadsmith_tests::discord_fake::{self as fake_discord, FakeDiscord, Msg};
use threadsmith_tests::{FakeModel, serve_discord_process};

const CHANNEL: &str = "1300000000000000001";
const ALICE: &str = "1400000000000000001";
const BOB: &str = "1400000000000000002";

fn bot_messages(fake: &FakeDiscord, channel: &str) -> Vec<Msg> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m.is_bot)
        .collect()
}

/// Ten Approve deliveries (seven clicks by the requester and a maintainer, three of them
/// delivered twice), alternately over each process's gateway session: one pull request, said
/// once, every click acknowledged once, and the approval and the publication agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_approve_clicks_through_discord_handled_by_two_processes_open_one_pull_request() {
    threadsmith_tests::ensure_image().await;
    let db = threadsmith_tests::postgres::database().await;
    let store = threadsmith_bot::store::open(&db).await.unwrap();
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    fake.add_user(BOB, "bob", &[]);
    let model = FakeModel::start().await;
    let gh = FakeGitHub::start().await;
    gh.allow_personal_token(PAT);
    let remote = remote();
    let dir = tempfile::tempdir().unwrap();
    let discord = format!(
        "[discord]\ntoken = \"{}\"\napi_url = \"{}\"\nmaintainers = [\"{BOB}\"]\n",
        fake_discord::TOKEN,
        fake.api_base(),
    );
    two_process_setup(dir.path(), &remote, &gh, &model, &discord);

    // Process A connects first; process B's session does not end A's (Discord keeps both).
    let _a = serve_discord_process(dir.path(), &db, &dir.path().join("data-a"), &model);
    fake.wait_until("process A's session", |f| {
        f.identifies() == 1 && f.connected()
    })
    .await;
    let _b = serve_discord_process(dir.path(), &db, &dir.path().join("data-b"), &model);
    fake.wait_until("process B's session", |f| {
        f.identifies() == 2 && f.connected()
    })
    .await;

    let starter = fake.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh");
    let thread = fake.start_thread(CHANNEL, &starter, "add is broken");
    fake.post_as_user(
        &thread,
        ALICE,
        &format!("<@{}> fix this", fake_discord::BOT_ID),
    );
    let summary = fake
        .wait_for("the summary", |f| {
            bot_messages(f, &thread)
                .into_iter()
                .find(|m| m.components.to_string().contains("approve:"))
        })
        .await;
    let task_id = store.recent_tasks(1).await.unwrap().remove(0).id;
    let custom_id = format!("approve:{task_id}:1");
    let edits_before = fake.message(&thread, &summary.id).unwrap().edits;

    // Seven clicks; the first three are delivered twice (at-least-once): ten deliveries,
    // alternating between B's session (the newest) and A's.
    let clicks: Vec<Value> = [ALICE, BOB, ALICE, BOB, ALICE, ALICE, BOB]
        .iter()
        .map(|user| fake.button_click(user, &thread, &summary.id, &custom_id))
        .collect();
    let deliveries: Vec<&Value> = clicks.iter().chain(clicks.iter().take(3)).collect();
    let mut ids = std::collections::BTreeSet::new();
    for (i, click) in deliveries.into_iter().enumerate() {
        let id = if i % 2 == 0 {
            fake.send_interaction((*click).clone()).await
        } else {
            fake.send_interaction_to_earlier_session((*click).clone())
                .await
        };
        ids.insert(id);
    }
    assert_eq!(ids.len(), 7);

    fake.wait_until("the pull request's link", |f| {
        bot_messages(f, &thread).iter().any(|m| {
            m.content
                .contains("Pull request #1 is open: https://github.com/acme/calc/pull/1")
        })
    })
    .await;
    fake.wait_until("every click acknowledged", |f| {
        ids.iter().all(|id| !f.interaction_responses(id).is_empty())
    })
    .await;
    threadsmith_tests::settle(store.as_ref(), std::time::Duration::from_secs(120)).await;

    assert_eq!(gh.pulls().len(), 1, "{:?}", gh.pulls());
    let texts: Vec<String> = bot_messages(&fake, &thread)
        .into_iter()
        .map(|m| m.content)
        .collect();
    let count = |needle: &str| texts.iter().filter(|t| t.contains(needle)).count();
    assert_eq!(count("Pull request #1"), 1, "{texts:?}");
    assert_eq!(
        count("Rollout 1 approved by <@"),
        2,
        "the summary and one message: {texts:?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.starts_with("Rollout 1 approved by"))
            .count(),
        1,
        "{texts:?}"
    );
    assert_eq!(count("could not"), 0, "no click failed: {texts:?}");
    // Every click answered exactly once, the duplicates included.
    for id in &ids {
        assert_eq!(fake.interaction_responses(id).len(), 1, "click {id}");
    }
    let approval = store.approval(&task_id).await.unwrap().unwrap();
    let publication = store.publication(&task_id).await.unwrap().unwrap();
    assert_eq!(approval.rollout, 1);
    assert!(
        [ALICE, BOB].contains(&approval.approved_by.as_str()),
        "{approval:?}"
    );
    assert_eq!(
        (
            publication.state.as_str(),
            publication.rollout,
            publication.pr_number
        ),
        ("published", 1, Some(1))
    );
    let webhooks = fake.webhook_messages();
    assert!(
        !webhooks.iter().any(|w| w.body["content"]
            .as_str()
            .is_some_and(|c| c.contains("could not"))),
        "{webhooks:?}"
    );
    // Seven clicks stored once each, all handled. (Which process takes each is the shared
    // queue's choice: both do in most runs, not in every one, so that is not asserted.)
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT state FROM inbox WHERE event LIKE $1 AND event ILIKE '%approve%'")
            .bind(format!("%{task_id}%"))
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert!(rows.iter().all(|(state,)| state == "done"), "{rows:?}");
    // The summary shows the pull request, edited once, whichever process made it.
    let shown = fake.message(&thread, &summary.id).unwrap();
    assert!(
        shown.components.to_string().contains("pull/1")
            || shown.content.contains("pull/1")
            || shown.embeds.to_string().contains("pull/1"),
        "{shown:?}"
    );
    assert_eq!(shown.edits, edits_before + 1, "{shown:?}");
}
