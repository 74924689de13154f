//! Slack end to end: the real serve loop and Slack adapter against a stateful fake Slack (Web API
//! and Socket Mode), the real runner, real Docker and the scripted model.

use serde_json::{Value, json};
use threadsmith_runner::secret::Secret;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, Message};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{TestEnv, env};

const CHANNEL: &str = "C111";
const ALICE: &str = "U222";
const BOB: &str = "U333";

async fn slack_env(slack: &FakeSlack, repo: &std::path::Path, mode: &str) -> TestEnv {
    let api = slack.api_base();
    let repo = repo.display().to_string();
    let mode = mode.to_string();
    env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.signing_secret = Some(Secret::new("signing-secret"));
        c.slack.mode = Some(mode);
        c.slack.listen = Some("127.0.0.1:0".into());
        c.default_repo = Some(repo);
        c.attempts = Some(2);
    })
    .await
}

fn bot_messages(slack: &FakeSlack, parent: &str) -> Vec<Message> {
    slack
        .thread(CHANNEL, parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .collect()
}

fn summary_of(messages: &[Message]) -> Option<Message> {
    messages
        .iter()
        .find(|m| {
            m.blocks
                .as_ref()
                .is_some_and(|b| b.to_string().contains("\"approve\""))
        })
        .cloned()
}

/// The blocks with the run-specific task id taken out, for a snapshot.
fn redacted(blocks: &Value, task_id: &str) -> String {
    threadsmith_tests::redact_costs(&serde_json::to_string_pretty(blocks).unwrap())
        .replace(task_id, "<task>")
        .replace(&task_id[..8], "<task8>")
}

#[tokio::test(flavor = "multi_thread")]
async fn fix_this_in_a_thread_to_summary_approve_and_retry() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = slack_env(&slack, &repo, "socket").await;
    threadsmith_tests::script_calc_fix(&env);
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    slack.wait_connected().await;

    // A bug thread, then the mention.
    let parent = slack.post_as_user(
        CHANNEL,
        ALICE,
        "add(2, 3) gives -1 in calc.sh — see <https://example.com/ci/42|the CI log>",
        None,
    );
    slack.post_as_user(
        CHANNEL,
        BOB,
        "Confirmed, `bash test.sh` prints `not ok - add`",
        Some(&parent),
    );
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent));
    let payload = slack.app_mention(CHANNEL, ALICE, "<@UBOT> fix this", &mention, Some(&parent));
    let first = slack
        .send_envelope("events_api", payload.clone(), false)
        .await;
    assert_eq!(slack.ack(&first).await, json!({"envelope_id": first}));
    // Slack delivers again: acknowledged, and nothing more happens.
    let again = slack.send_envelope("events_api", payload, false).await;
    assert_eq!(slack.ack(&again).await, json!({"envelope_id": again}));

    let summary = slack
        .wait_for("the summary", |s| {
            summary_of(
                &s.thread(CHANNEL, &parent)
                    .into_iter()
                    .filter(|m| m.is_bot())
                    .collect::<Vec<_>>(),
            )
        })
        .await;
    slack
        .wait_until("the done reaction", |s| {
            s.reactions(CHANNEL, &mention)
                .contains(&"white_check_mark".to_string())
        })
        .await;
    let tasks = env.svc.store.recent_tasks(10).await.unwrap();
    assert_eq!(tasks.len(), 1, "one task for two deliveries");
    let task = &tasks[0];
    assert_eq!(task.title, "add() subtracts instead of adding");

    // The model read the whole thread, names resolved, links kept.
    let spec_request = &env.model.received_by(0)[0];
    let thread_text = spec_request.body["messages"][1]["content"]
        .as_str()
        .unwrap();
    assert!(
        thread_text.contains("**alice**: add(2, 3) gives -1"),
        "{thread_text}"
    );
    assert!(thread_text.contains("**bob**: Confirmed"), "{thread_text}");
    assert!(
        thread_text.contains("[the CI log](https://example.com/ci/42)"),
        "{thread_text}"
    );

    // Status: one message, edited as rollouts advanced, ending done; reactions.
    let bots = bot_messages(&slack, &parent);
    let status = &bots[0];
    assert!(status.edits >= 2, "{status:?}");
    assert!(status.text.contains("Done."), "{}", status.text);
    assert_eq!(
        slack.reactions(CHANNEL, &mention),
        vec!["white_check_mark".to_string()]
    );
    // Patches attached (no public URL configured).
    let files: Vec<String> = slack.files().iter().map(|f| f.filename.clone()).collect();
    assert_eq!(files, vec!["rollout-1.patch", "rollout-2.patch"]);
    // The summary: what users see.
    let blocks = summary.blocks.clone().unwrap();
    let rendered = blocks.to_string();
    assert!(
        !rendered.contains("<!channel>") && !rendered.contains("<@U333>"),
        "model output never pings"
    );
    insta::assert_snapshot!("summary_blocks", redacted(&blocks, &task.id));

    // Approve: refused for bob, accepted for alice, once however many clicks.
    let approve_bob = slack.block_actions(
        BOB,
        CHANNEL,
        &summary.ts,
        Some(&parent),
        "approve",
        &format!("{}:1", task.id),
    );
    let e = slack.send_envelope("interactive", approve_bob, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("bob's refusal", |s| {
            s.ephemerals()
                .iter()
                .any(|m| m.user == BOB && m.text.contains("Only the person"))
        })
        .await;
    assert!(env.svc.store.approval(&task.id).await.unwrap().is_none());
    let edits_before = slack.message(CHANNEL, &summary.ts).unwrap().edits;
    for _ in 0..10 {
        let approve = slack.block_actions(
            ALICE,
            CHANNEL,
            &summary.ts,
            Some(&parent),
            "approve",
            &format!("{}:1", task.id),
        );
        let e = slack.send_envelope("interactive", approve, false).await;
        slack.ack(&e).await;
    }
    slack
        .wait_until("the approval message", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.text.contains("Rollout 1 approved by <@U222>"))
        })
        .await;
    let approval = env.svc.store.approval(&task.id).await.unwrap().unwrap();
    assert_eq!(
        (approval.rollout, approval.approved_by.as_str()),
        (1, ALICE)
    );
    // Once more, later: a private answer saying where it stands.
    let again = slack.block_actions(
        ALICE,
        CHANNEL,
        &summary.ts,
        Some(&parent),
        "approve",
        &format!("{}:1", task.id),
    );
    let e = slack.send_envelope("interactive", again, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("alice's note", |s| {
            s.ephemerals().iter().any(|m| {
                m.user == ALICE
                    && m.text.contains("You already approved rollout 1")
                    && m.text.contains("recorded only")
            })
        })
        .await;
    threadsmith_tests::settle(env.svc.store.as_ref(), std::time::Duration::from_secs(60)).await;
    // Eleven clicks, one change to show: one edit of the summary.
    let approved_summary = slack.message(CHANNEL, &summary.ts).unwrap();
    assert!(
        approved_summary
            .blocks
            .as_ref()
            .is_some_and(|b| b.to_string().contains("Approved by <@U222>")),
        "{approved_summary:?}"
    );
    assert_eq!(approved_summary.edits, edits_before + 1);

    // Retry with feedback: a form, then a new run whose agents read the feedback.
    env.model.reset();
    threadsmith_tests::script_calc_fix(&env);
    // The first task is approved; retry a fresh one is not possible, so retry this one's summary
    // through the form directly (the button opens it).
    let retry_click = slack.block_actions(
        ALICE,
        CHANNEL,
        &summary.ts,
        Some(&parent),
        "retry",
        &task.id,
    );
    let e = slack.send_envelope("interactive", retry_click, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("the retry form", |s| !s.views_opened().is_empty())
        .await;
    let view = slack.views_opened()[0].clone();
    assert_eq!(view["callback_id"], "retry");
    assert_eq!(view["private_metadata"], task.id.as_str());
    let submit = slack.view_submission(
        ALICE,
        "retry",
        &task.id,
        json!({"feedback": {"feedback": {"type": "plain_text_input", "value": "Keep sub() as it is."}}}),
    );
    let e1 = slack
        .send_envelope("interactive", submit.clone(), true)
        .await;
    slack.ack(&e1).await;
    let e2 = slack.send_envelope("interactive", submit, true).await;
    slack.ack(&e2).await;
    let retry_summary = slack
        .wait_for("the retry's summary", |s| {
            let bots: Vec<Message> = s
                .thread(CHANNEL, &parent)
                .into_iter()
                .filter(|m| m.is_bot())
                .collect();
            let summaries: Vec<&Message> = bots
                .iter()
                .filter(|m| {
                    m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("retry of"))
                })
                .collect();
            summaries.first().map(|m| (*m).clone())
        })
        .await;
    let prompt = env.model.received_by(1)[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(prompt.contains("Keep sub() as it is."), "{prompt}");
    assert!(
        retry_summary
            .blocks
            .unwrap()
            .to_string()
            .contains("https://fake.slack.com/archives/")
    );
    assert_eq!(
        env.svc.store.recent_tasks(10).await.unwrap().len(),
        2,
        "one retry for two submissions"
    );
    // The earlier summary no longer offers its used Retry, and names the retry.
    let retry_task = env
        .svc
        .store
        .retry_of(&task.id)
        .await
        .unwrap()
        .unwrap()
        .task_id;
    slack
        .wait_until("the earlier summary without Retry", |s| {
            s.message(CHANNEL, &summary.ts).is_some_and(|m| {
                m.blocks.as_ref().is_some_and(|b| {
                    let b = b.to_string();
                    !b.contains("\"retry\"")
                        && b.contains(&format!("retried as task `{}`", &retry_task[..8]))
                })
            })
        })
        .await;
    // A second Retry form, opened before the first was submitted and submitted now: told why
    // nothing starts.
    let mut late = slack.view_submission(
        ALICE,
        "retry",
        &task.id,
        json!({"feedback": {"feedback": {"type": "plain_text_input", "value": "again"}}}),
    );
    late["view"]["id"] = json!("V0SECONDFORM");
    let e = slack.send_envelope("interactive", late, false).await;
    slack.ack(&e).await;
    slack
        .wait_until("the note on the used retry", |s| {
            s.ephemerals().iter().any(|m| {
                m.user == ALICE
                    && m.text.contains("retried already")
                    && m.text.contains(&retry_task[..8])
            })
        })
        .await;
    assert_eq!(env.svc.store.recent_tasks(10).await.unwrap().len(), 2);

    running.stop(&shutdown).await;
    for t in env.svc.store.recent_tasks(10).await.unwrap() {
        env.assert_nothing_left(&t.id).await;
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post_signed(
    url: &str,
    body: &str,
    secret: &str,
    ts: i64,
    content_type: &str,
) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            threadsmith_tests::fake_slack::sign(secret, ts, body),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_mode_verifies_every_request_and_queues_only_good_ones() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let env = slack_env(&slack, &repo, "http").await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    let base = format!("http://{}", running.http_addr.unwrap());
    let events = format!("{base}/slack/events");
    let json_type = "application/json";

    let parent = slack.post_as_user(CHANNEL, ALICE, "something is off", None);
    let mention = slack.post_as_user(CHANNEL, ALICE, "<@UBOT> help", Some(&parent));
    let body = slack
        .app_mention(CHANNEL, ALICE, "<@UBOT> help", &mention, Some(&parent))
        .to_string();

    // Forged, stale, unsigned, malformed: rejected, nothing queued.
    assert_eq!(
        post_signed(&events, &body, "not-the-secret", now(), json_type).await,
        401
    );
    assert_eq!(
        post_signed(&events, &body, "signing-secret", now() - 600, json_type).await,
        401
    );
    let unsigned = reqwest::Client::new()
        .post(&events)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(
        post_signed(&events, "{\"type\": 7", "signing-secret", now(), json_type).await,
        400
    );
    let interactions = format!("{base}/slack/interactions");
    assert_eq!(
        post_signed(
            &interactions,
            "payload=%7Bnope",
            "signing-secret",
            now(),
            "application/x-www-form-urlencoded"
        )
        .await,
        400
    );
    assert_eq!(env.svc.store.inbox_len().await.unwrap(), 0);

    // url_verification is answered.
    let challenge = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let ts = now();
    let resp = reqwest::Client::new()
        .post(&events)
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            threadsmith_tests::fake_slack::sign("signing-secret", ts, &challenge),
        )
        .body(challenge)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.text().await.unwrap(),
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );

    // A good request is queued once, however often it is delivered, and handled.
    for _ in 0..3 {
        assert_eq!(
            post_signed(&events, &body, "signing-secret", now(), json_type).await,
            200
        );
    }
    slack
        .wait_until("the help reply", |s| {
            s.thread(CHANNEL, &parent)
                .iter()
                .any(|m| m.is_bot() && m.text.contains("fix"))
        })
        .await;
    assert_eq!(env.svc.store.inbox_len().await.unwrap(), 1);
    running.stop(&shutdown).await;
}
