//! The fake driven as the bot would drive it: reqwest for the Web API, tokio-tungstenite for
//! Socket Mode.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::*;

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) async fn fake() -> FakeSlack {
    FakeSlack::start(FakeSlackConfig::default()).await
}

async fn send(slack: &FakeSlack, token: &str, method: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/{method}", slack.api_base()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the fake answers")
}

pub(super) async fn post(slack: &FakeSlack, method: &str, body: Value) -> Value {
    let response = send(slack, "xoxb-test", method, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("JSON")
}

async fn get(slack: &FakeSlack, method: &str, query: &[(&str, &str)]) -> Value {
    reqwest::Client::new()
        .get(format!("{}/{method}", slack.api_base()))
        .bearer_auth("xoxb-test")
        .query(query)
        .send()
        .await
        .expect("the fake answers")
        .json()
        .await
        .expect("JSON")
}

/// What the Socket Mode client does: apps.connections.open, then connect to its URL.
pub(super) async fn connect(slack: &FakeSlack) -> Ws {
    let open: Value = send(slack, "xapp-test", "apps.connections.open", json!({}))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(open["ok"], true, "{open}");
    let url = open["url"].as_str().expect("a URL");
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket accepts the ticket");
    ws
}

pub(super) async fn next_json(ws: &mut Ws) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("JSON frame");
                }
                Some(Ok(_)) => continue,
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a frame within 10 s")
}

fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn posts_replies_and_updates_are_kept() {
    let slack = fake().await;
    let parent = slack.post_as_user("C1", "U222", "<@UBOT> fix it", None);
    assert_eq!(parent, "1700000100.000100");

    let posted = post(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "on it", "thread_ts": parent}),
    )
    .await;
    assert_eq!(posted["ok"], true, "{posted}");
    let ts = posted["ts"].as_str().expect("ts").to_string();
    assert_eq!(ts, "1700000100.000200");
    assert_eq!(posted["channel"], "C1");
    assert_eq!(posted["message"]["ts"], ts.as_str());
    assert_eq!(posted["message"]["bot_id"], "BBOT");
    assert_eq!(posted["message"]["user"], "UBOT");
    assert_eq!(posted["message"]["thread_ts"], parent.as_str());

    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]);
    let updated = post(
        &slack,
        "chat.update",
        json!({"channel": "C1", "ts": ts, "text": "done", "blocks": blocks}),
    )
    .await;
    assert_eq!(updated["ok"], true, "{updated}");
    assert_eq!(updated["message"]["text"], "done");

    let thread = slack.thread("C1", &parent);
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[0].text, "<@UBOT> fix it");
    assert!(!thread[0].is_bot());
    assert_eq!(thread[1].text, "done");
    assert_eq!(thread[1].blocks, Some(blocks));
    assert_eq!(thread[1].edits, 1);
    assert!(thread[1].is_bot() && thread[1].is_reply());
    let order: Vec<_> = slack.messages("C1").into_iter().map(|m| m.ts).collect();
    assert_eq!(order, [parent.clone(), ts.clone()]);
    assert!(slack.messages("C2").is_empty());

    let missing = post(
        &slack,
        "chat.update",
        json!({"channel": "C1", "ts": "1.000001", "text": "x"}),
    )
    .await;
    assert_eq!(missing, json!({"ok": false, "error": "message_not_found"}));
    let human = post(
        &slack,
        "chat.update",
        json!({"channel": "C1", "ts": parent, "text": "x"}),
    )
    .await;
    assert_eq!(human["error"], "cant_update_message");
    let empty = post(&slack, "chat.postMessage", json!({"channel": "C1"})).await;
    assert_eq!(empty["error"], "no_text");
    assert_eq!(slack.calls_to("chat.update").len(), 3);
}

#[tokio::test]
async fn replies_paginate_with_cursors() {
    let slack = fake().await;
    let parent = slack.post_as_user("C1", "U222", "root", None);
    for i in 0..4 {
        slack.post_as_user("C1", "U333", &format!("r{i}"), Some(&parent));
    }
    slack.post_as_user("C1", "U222", "elsewhere", None);

    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut query = vec![("channel", "C1"), ("ts", parent.as_str()), ("limit", "2")];
        if !cursor.is_empty() {
            query.push(("cursor", cursor.as_str()));
        }
        let page = get(&slack, "conversations.replies", &query).await;
        assert_eq!(page["ok"], true, "{page}");
        pages.push(texts(&page["messages"]));
        if pages.len() == 1 {
            let root = &page["messages"][0];
            assert_eq!(root["reply_count"], 4);
            assert_eq!(root["thread_ts"], parent.as_str());
            assert_eq!(root["latest_reply"], "1700000100.000500");
        }
        cursor = page["response_metadata"]["next_cursor"]
            .as_str()
            .expect("next_cursor")
            .to_string();
        if page["has_more"] == false {
            assert_eq!(cursor, "");
            break;
        }
    }
    assert_eq!(pages, [vec!["root", "r0"], vec!["r1", "r2"], vec!["r3"]]);

    let all = get(
        &slack,
        "conversations.replies",
        &[("channel", "C1"), ("ts", &parent)],
    )
    .await;
    assert_eq!(texts(&all["messages"]).len(), 5);
    assert_eq!(all["has_more"], false);
    let none = get(
        &slack,
        "conversations.replies",
        &[("channel", "C1"), ("ts", "1.000001")],
    )
    .await;
    assert_eq!(none["error"], "thread_not_found");
    let bad = get(
        &slack,
        "conversations.replies",
        &[("channel", "C1"), ("ts", &parent), ("cursor", "nope")],
    )
    .await;
    assert_eq!(bad["error"], "invalid_cursor");
}

#[tokio::test]
async fn reactions_ephemerals_views_and_lookups() {
    let slack = fake().await;
    let ts = slack.post_as_user("C1", "U222", "hi", None);
    let target = json!({"channel": "C1", "timestamp": ts, "name": "eyes"});
    assert_eq!(
        post(&slack, "reactions.add", target.clone()).await["ok"],
        true
    );
    assert_eq!(
        post(&slack, "reactions.add", target.clone()).await["error"],
        "already_reacted"
    );
    assert_eq!(slack.reactions("C1", &ts), ["eyes"]);
    assert_eq!(
        post(&slack, "reactions.remove", target.clone()).await["ok"],
        true
    );
    assert_eq!(
        post(&slack, "reactions.remove", target).await["error"],
        "no_reaction"
    );
    assert!(slack.reactions("C1", &ts).is_empty());

    let eph = post(
        &slack,
        "chat.postEphemeral",
        json!({"channel": "C1", "user": "U222", "text": "only you", "thread_ts": ts}),
    )
    .await;
    assert_eq!(eph["ok"], true);
    let ephemerals = slack.ephemerals();
    assert_eq!(ephemerals.len(), 1);
    assert_eq!(ephemerals[0].text, "only you");
    assert_eq!(ephemerals[0].thread_ts.as_deref(), Some(ts.as_str()));
    assert_eq!(eph["message_ts"], ephemerals[0].ts.as_str());

    let command = slack.slash_command("/threadsmith", "edit", "C1", "U222");
    assert_eq!(command["user_name"], "alice");
    let modal = json!({"type": "modal", "title": {"type": "plain_text", "text": "Edit"}, "blocks": [], "callback_id": "edit_summary"});
    let opened = post(
        &slack,
        "views.open",
        json!({"trigger_id": command["trigger_id"], "view": modal}),
    )
    .await;
    assert_eq!(opened["ok"], true, "{opened}");
    for key in ["id", "team_id", "hash", "type", "title", "blocks"] {
        assert!(
            opened["view"].get(key).is_some(),
            "view.{key} missing: {opened}"
        );
    }
    assert_eq!(slack.views_opened(), [modal]);
    let bad = post(
        &slack,
        "views.open",
        json!({"trigger_id": "1.2.3", "view": {"type": "modal"}}),
    )
    .await;
    assert_eq!(bad["error"], "invalid_trigger_id");
    let submitted = slack.view_submission(
        "U222",
        "edit_summary",
        "{}",
        json!({"b": {"a": {"type": "plain_text_input", "value": "new"}}}),
    );
    assert_eq!(submitted["view"]["id"], opened["view"]["id"]);
    assert_eq!(
        submitted["view"]["state"]["values"]["b"]["a"]["value"],
        "new"
    );

    let user = get(&slack, "users.info", &[("user", "U222")]).await;
    assert_eq!(user["user"]["name"], "alice");
    assert_eq!(user["user"]["profile"]["display_name"], "alice");
    assert_eq!(user["user"]["is_bot"], false);
    let unknown = get(&slack, "users.info", &[("user", "U999")]).await;
    assert_eq!(unknown["error"], "user_not_found");

    let me = get(&slack, "auth.test", &[]).await;
    assert_eq!(
        (&me["user_id"], &me["bot_id"], &me["team_id"]),
        (&json!("UBOT"), &json!("BBOT"), &json!("T111"))
    );
    let link = get(
        &slack,
        "chat.getPermalink",
        &[("channel", "C1"), ("message_ts", &ts)],
    )
    .await;
    assert_eq!(
        link["permalink"],
        format!(
            "https://fake.slack.com/archives/C1/p{}",
            ts.replace('.', "")
        )
    );
}

#[tokio::test]
async fn tokens_are_checked_and_unknown_methods_recorded() {
    let slack = fake().await;
    let body = json!({"channel": "C1", "text": "x"});
    let wrong: Value = send(&slack, "xoxb-wrong", "chat.postMessage", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wrong, json!({"ok": false, "error": "invalid_auth"}));
    let app: Value = send(&slack, "xapp-test", "chat.postMessage", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app["error"], "invalid_auth");
    let bot_opens = post(&slack, "apps.connections.open", json!({})).await;
    assert_eq!(bot_opens["error"], "invalid_auth");
    let unknown = post(&slack, "conversations.kick", json!({"channel": "C1"})).await;
    assert_eq!(unknown["error"], "unknown_method");
    assert!(slack.messages("C1").is_empty());

    let calls = slack.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].token.as_deref(), Some("xoxb-wrong"));
    assert_eq!(calls[3].method, "conversations.kick");
    assert_eq!(calls[3].body, json!({"channel": "C1"}));
}

#[tokio::test]
async fn fail_next_answers_429_with_retry_after() {
    let slack = fake().await;
    slack.join("C1");
    slack.fail_next("chat.postMessage", 429, Some(7));
    slack.fail_next_error("chat.postMessage", "channel_not_found");
    let body = json!({"channel": "C1", "text": "x"});
    let limited = send(&slack, "xoxb-test", "chat.postMessage", body.clone()).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    let limited: Value = limited.json().await.unwrap();
    assert_eq!(limited["error"], "ratelimited");
    assert_eq!(
        post(&slack, "chat.postMessage", body.clone()).await["error"],
        "channel_not_found"
    );
    assert_eq!(post(&slack, "chat.postMessage", body).await["ok"], true);
    assert_eq!(slack.calls_to("chat.postMessage").len(), 3);
    assert_eq!(slack.messages("C1").len(), 1);
}

#[tokio::test]
async fn form_bodies_are_parsed_and_recorded_as_json() {
    let slack = fake().await;
    slack.join("C1");
    let response: Value = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", slack.api_base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=xoxb-test&channel=C1&text=hello+world%21%20%E2%9C%93&blocks=%5B%5D")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(slack.messages("C1")[0].text, "hello world! ✓");
    let call = &slack.calls()[0];
    assert_eq!(call.token.as_deref(), Some("xoxb-test"));
    assert_eq!(call.body["blocks"], "[]");
}

#[tokio::test]
async fn files_upload_in_three_steps() {
    let slack = fake().await;
    let parent = slack.post_as_user("C1", "U222", "logs please", None);
    let url = get(
        &slack,
        "files.getUploadURLExternal",
        &[("filename", "diff.patch"), ("length", "5")],
    )
    .await;
    assert_eq!(url["ok"], true, "{url}");
    let file_id = url["file_id"].as_str().unwrap();
    let uploaded = reqwest::Client::new()
        .post(url["upload_url"].as_str().unwrap())
        .bearer_auth("xoxb-test")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.headers()["content-type"], "text/plain");
    assert_eq!(uploaded.text().await.unwrap(), "OK - 5");
    let done = post(
        &slack,
        "files.completeUploadExternal",
        json!({"files": [{"id": file_id, "title": "The diff"}], "channel_id": "C1", "thread_ts": parent, "initial_comment": "here"}),
    )
    .await;
    assert_eq!(done["files"][0]["id"], file_id);
    assert_eq!(done["files"][0]["title"], "The diff");
    let thread = slack.thread("C1", &parent);
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].text, "here");
    assert_eq!(thread[1].files[0].bytes, b"hello");
    assert_eq!(slack.files()[0].filename, "diff.patch");
    let again = post(
        &slack,
        "files.completeUploadExternal",
        json!({"files": [{"id": file_id}]}),
    )
    .await;
    assert_eq!(again["error"], "file_not_found");
}

#[tokio::test]
async fn socket_mode_says_hello_forwards_envelopes_and_records_acks() {
    let slack = fake().await;
    let mut ws = connect(&slack).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["connection_info"]["app_id"], "A111");
    assert_eq!(hello["num_connections"], 1);
    assert!(hello["debug_info"]["host"].is_string());
    slack.wait_connected().await;
    assert_eq!(slack.connections(), 1);

    let ts = slack.post_as_user("C1", "U222", "<@UBOT> hi", None);
    let payload = slack.app_mention("C1", "U222", "<@UBOT> hi", &ts, None);
    let id = slack.send_envelope("events_api", payload, false).await;
    let envelope = next_json(&mut ws).await;
    assert_eq!(envelope["envelope_id"], id.as_str());
    assert_eq!(envelope["type"], "events_api");
    assert_eq!(envelope["accepts_response_payload"], false);
    let event = &envelope["payload"];
    assert_eq!(event["type"], "event_callback");
    assert_eq!(event["authorizations"][0]["user_id"], "UBOT");
    assert_eq!(event["event"]["type"], "app_mention");
    assert_eq!(event["event"]["ts"], ts.as_str());
    for key in ["team_id", "api_app_id", "event_id", "event_time"] {
        assert!(event.get(key).is_some(), "{key} missing");
    }
    let other = slack.app_mention("C1", "U222", "again", &ts, None);
    assert_ne!(other["event_id"], event["event_id"]);
    assert!(slack.acked_at(&id).is_none());
    assert_eq!(slack.unacked(), std::slice::from_ref(&id));

    // An Events API envelope does not accept a response payload: Slack does not take that ack.
    let wrong = json!({"envelope_id": id, "payload": {"text": "ok"}});
    ws.send(WsMessage::Text(wrong.to_string().into()))
        .await
        .unwrap();
    slack
        .wait_until("the ack refused", |s| !s.rejected_acks().is_empty())
        .await;
    assert_eq!(slack.unacked(), std::slice::from_ref(&id));
    let ack = json!({"envelope_id": id});
    ws.send(WsMessage::Text(ack.to_string().into()))
        .await
        .unwrap();
    assert_eq!(slack.ack(&id).await, ack);
    let (sent, acked) = (slack.sent_at(&id).unwrap(), slack.acked_at(&id).unwrap());
    assert!(acked >= sent);
    assert!(slack.unacked().is_empty());

    slack.send_raw("{not json").await;
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        WsMessage::Text("{not json".into())
    );
}

#[tokio::test]
async fn disconnect_then_reconnect_delivers_queued_envelopes() {
    let slack = fake().await;
    let mut first = connect(&slack).await;
    assert_eq!(next_json(&mut first).await["type"], "hello");
    slack.wait_connected().await;

    slack.disconnect().await;
    let bye = next_json(&mut first).await;
    assert_eq!(bye["type"], "disconnect");
    assert_eq!(bye["reason"], "refresh_requested");
    assert!(!slack.read(SlackState::connected));
    let payload = slack.slash_command("/threadsmith", "help", "C1", "U222");
    let id = slack.send_envelope("slash_commands", payload, true).await;
    let _ = first.close(None).await;

    let mut second = connect(&slack).await;
    assert_eq!(next_json(&mut second).await["type"], "hello");
    let envelope = next_json(&mut second).await;
    assert_eq!(envelope["envelope_id"], id.as_str());
    assert_eq!(envelope["payload"]["command"], "/threadsmith");
    assert_eq!(slack.connections(), 2);
    assert_eq!(slack.calls_to("apps.connections.open").len(), 2);

    second
        .send(WsMessage::Text(
            json!({"envelope_id": id}).to_string().into(),
        ))
        .await
        .unwrap();
    assert_eq!(slack.ack(&id).await, json!({"envelope_id": id}));
}

#[tokio::test]
async fn websocket_needs_a_ticket() {
    let slack = fake().await;
    let url = format!("ws://{}/link/?ticket=forged", slack.shared.ws_addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    let mut ws = connect(&slack).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
}

#[tokio::test]
async fn wait_until_wakes_on_a_change() {
    let slack = fake().await;
    slack.join("C9");
    let poster = slack.clone();
    let task = tokio::spawn(async move {
        post(
            &poster,
            "chat.postMessage",
            json!({"channel": "C9", "text": "late"}),
        )
        .await
    });
    let text = slack
        .wait_for("a bot message in C9", |s| {
            s.messages("C9").first().map(|m| m.text.clone())
        })
        .await;
    assert_eq!(text, "late");
    task.await.unwrap();
}

#[tokio::test]
async fn block_actions_carry_the_clicked_message_and_element() {
    let slack = fake().await;
    let parent = slack.post_as_user("C1", "U222", "go", None);
    let blocks = json!([{"type": "actions", "block_id": "acts", "elements": [
        {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}, "value": "t1", "style": "primary"}
    ]}]);
    let posted = post(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "pick", "blocks": blocks, "thread_ts": parent}),
    )
    .await;
    let ts = posted["ts"].as_str().unwrap();
    let click = slack.block_actions("U222", "C1", ts, Some(&parent), "approve", "t1");
    assert_eq!(click["type"], "block_actions");
    assert_eq!(click["container"]["message_ts"], ts);
    assert_eq!(click["container"]["thread_ts"], parent.as_str());
    assert_eq!(click["message"]["text"], "pick");
    assert_eq!(click["message"]["thread_ts"], parent.as_str());
    let action = &click["actions"][0];
    assert_eq!(action["block_id"], "acts");
    assert_eq!(action["value"], "t1");
    assert_eq!(action["style"], "primary");
    assert_eq!(click["user"]["name"], "alice");

    let url = click["response_url"].as_str().unwrap();
    reqwest::Client::new()
        .post(url)
        .json(&json!({"text": "thanks", "replace_original": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(slack.responses()[0].body["text"], "thanks");

    let shortcut = slack.message_action("U222", "C1", &parent, None, "summarize");
    assert_eq!(shortcut["message"]["reply_count"], 1);
    assert_eq!(shortcut["callback_id"], "summarize");
}

#[test]
fn sign_matches_slacks_published_example() {
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    assert_eq!(
        sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body),
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    );
}
