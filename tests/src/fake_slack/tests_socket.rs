//! Socket Mode with several connections: each envelope goes to one open connection, and an
//! Events API envelope left unacknowledged by a connection that closed is delivered again.

use std::collections::HashSet;

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::tests::{Ws, connect, fake, next_json};
use super::*;

async fn hello(slack: &FakeSlack) -> (Ws, Value) {
    let mut ws = connect(slack).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    (ws, hello)
}

async fn mention(slack: &FakeSlack, text: &str) -> String {
    let ts = slack.post_as_user("C1", "U222", text, None);
    let payload = slack.app_mention("C1", "U222", text, &ts, None);
    slack.send_envelope("events_api", payload, false).await
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(WsMessage::Text(frame.to_string().into()))
        .await
        .unwrap();
}

async fn ack(ws: &mut Ws, id: &str) {
    ws.send(WsMessage::Text(
        json!({"envelope_id": id}).to_string().into(),
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn envelopes_are_spread_over_the_open_connections_one_each() {
    let slack = fake().await;
    let (mut a, hello_a) = hello(&slack).await;
    let (mut b, hello_b) = hello(&slack).await;
    assert_eq!(hello_a["num_connections"], 1);
    assert_eq!(hello_b["num_connections"], 2);
    slack
        .wait_until("two connections", |s| s.open_connections() == 2)
        .await;

    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(mention(&slack, &format!("<@UBOT> {i}")).await);
    }
    // Each side acks what it got until all 40 are acked; no envelope comes twice.
    let mut seen = HashSet::new();
    let (mut on_a, mut on_b) = (0, 0);
    while seen.len() < ids.len() {
        tokio::select! {
            frame = next_json(&mut a) => {
                let id = frame["envelope_id"].as_str().unwrap().to_string();
                ack(&mut a, &id).await;
                assert!(seen.insert(id), "delivered twice");
                on_a += 1;
            }
            frame = next_json(&mut b) => {
                let id = frame["envelope_id"].as_str().unwrap().to_string();
                ack(&mut b, &id).await;
                assert!(seen.insert(id), "delivered twice");
                on_b += 1;
            }
        }
    }
    // At random, all 40 on one side has a chance of 2^-39.
    assert!(on_a > 0 && on_b > 0, "a: {on_a}, b: {on_b}");
    for id in &ids {
        slack.ack(id).await;
    }
    assert!(slack.unacked().is_empty());
}

#[tokio::test]
async fn an_unacked_event_on_a_closed_connection_is_delivered_again() {
    let slack = fake().await;
    let (mut a, _) = hello(&slack).await;
    slack.wait_connected().await;
    let event = mention(&slack, "<@UBOT> hi").await;
    let command = slack
        .send_envelope(
            "slash_commands",
            slack.slash_command("/threadsmith", "help", "C1", "U222"),
            true,
        )
        .await;
    let first = next_json(&mut a).await;
    assert_eq!(first["envelope_id"], event.as_str());
    assert_eq!(first["retry_attempt"], 0);
    assert_eq!(next_json(&mut a).await["envelope_id"], command.as_str());
    slack
        .wait_until("both written", |s| s.sent_at(&command).is_some())
        .await;
    // The connection ends without acknowledging either.
    a.close(None).await.unwrap();
    drop(a);
    slack.wait_until("closed", |s| !s.connected()).await;

    let (mut b, _) = hello(&slack).await;
    let again = next_json(&mut b).await;
    assert_eq!(again["envelope_id"], event.as_str());
    assert_eq!(again["retry_attempt"], 1);
    assert_eq!(again["retry_reason"], "timeout");
    assert_eq!(again["payload"], first["payload"]);
    ack(&mut b, &event).await;
    slack.ack(&event).await;
    // The slash command is not retried: Slack shows the user an error instead.
    assert_eq!(slack.unacked(), vec![command]);
}

#[tokio::test]
async fn acks_are_taken_only_in_slacks_shape_on_the_connection_that_got_the_envelope() {
    let slack = fake().await;
    let (mut a, _) = hello(&slack).await;
    slack.wait_connected().await;
    let command = slack
        .send_envelope(
            "slash_commands",
            slack.slash_command("/threadsmith", "help", "C1", "U222"),
            true,
        )
        .await;
    assert_eq!(next_json(&mut a).await["envelope_id"], command.as_str());
    let (mut b, _) = hello(&slack).await;
    slack
        .wait_until("two connections", |s| s.open_connections() == 2)
        .await;
    // On another connection than the envelope's.
    send(&mut b, json!({"envelope_id": command})).await;
    // Unknown envelope; a payload that is not an object; a field Slack does not know.
    send(&mut a, json!({"envelope_id": "env-none"})).await;
    send(&mut a, json!({"envelope_id": command, "payload": "On it."})).await;
    send(&mut a, json!({"envelope_id": command, "ok": true})).await;
    let n = 4;
    slack
        .wait_until("every wrong ack refused", |s| s.rejected_acks().len() == n)
        .await;
    assert_eq!(slack.unacked(), std::slice::from_ref(&command));

    let good = json!({"envelope_id": command, "payload": {"text": "On it.", "response_type": "ephemeral"}});
    a.send(WsMessage::Text(good.to_string().into()))
        .await
        .unwrap();
    assert_eq!(slack.ack(&command).await, good);
    // Acknowledged once: a second ack names nothing awaiting one.
    ack(&mut a, &command).await;
    slack
        .wait_until("the second ack refused", |s| {
            s.rejected_acks().len() == n + 1
        })
        .await;
}

#[tokio::test]
async fn closing_a_connection_redelivers_its_unacked_events_on_the_next() {
    let slack = fake().await;
    let (mut a, _) = hello(&slack).await;
    slack.wait_connected().await;
    let event = mention(&slack, "<@UBOT> hi").await;
    assert_eq!(next_json(&mut a).await["envelope_id"], event.as_str());
    slack
        .wait_until("written", |s| s.sent_at(&event).is_some())
        .await;
    slack.close_connections();
    slack
        .wait_until("closed", |s| s.live_connections() == 0)
        .await;
    let (mut b, _) = hello(&slack).await;
    let again = next_json(&mut b).await;
    assert_eq!(again["envelope_id"], event.as_str());
    assert_eq!(again["retry_attempt"], 1);
    ack(&mut b, &event).await;
    slack.ack(&event).await;
}

#[tokio::test]
async fn disconnect_carries_the_reason_asked() {
    let slack = fake().await;
    let (mut a, _) = hello(&slack).await;
    slack.wait_connected().await;
    slack.disconnect_with("warning").await;
    let bye = next_json(&mut a).await;
    assert_eq!(bye["type"], "disconnect");
    assert_eq!(bye["reason"], "warning");
    assert!(!slack.read(SlackState::connected));
}
