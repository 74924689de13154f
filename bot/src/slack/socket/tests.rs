//! Frames as Slack sends them (shapes from Slack's Socket Mode reference) → what the client
//! does, and the acks it sends.

use std::time::Duration;

use serde_json::{Value, json};

use super::envelope::{Disconnect, Frame, parse};
use super::slot::backoff;
use crate::chat::ChatEvent;
use crate::slack::events::EventSettings;

fn settings() -> EventSettings {
    EventSettings {
        bot_user_id: "UBOT".into(),
        team_id: "T1".into(),
        trigger_phrases: vec!["fix this".into()],
        phrase_channels: Vec::new(),
    }
}

fn mention_envelope(id: &str) -> String {
    json!({
        "envelope_id": id,
        "type": "events_api",
        "accepts_response_payload": false,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "token": "tok",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": "Ev1",
            "event_time": 1_700_000_000,
            "event": {
                "type": "app_mention",
                "user": "U222",
                "text": "<@UBOT> help",
                "ts": "1700000000.000100",
                "channel": "C1",
                "event_ts": "1700000000.000100"
            }
        }
    })
    .to_string()
}

fn command_envelope(id: &str) -> String {
    json!({
        "envelope_id": id,
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": {
            "token": "tok",
            "team_id": "T1",
            "team_domain": "acme",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": "U222",
            "user_name": "ann",
            "command": "/fix",
            "text": "the flaky test",
            "api_app_id": "A1",
            "response_url": "https://hooks.slack.com/commands/T1/1/x",
            "trigger_id": "13345224609.738474920.8088930838d88f008e0"
        }
    })
    .to_string()
}

fn ack_json(frame: &str) -> Value {
    let Frame::Envelope(e) = parse(frame) else {
        panic!("not an envelope: {frame}");
    };
    serde_json::from_str(&e.ack().unwrap()).unwrap()
}

#[test]
fn an_app_mention_is_an_event_to_store_and_its_ack_is_the_bare_envelope_id() {
    let Frame::Envelope(e) = parse(&mention_envelope("env-1")) else {
        panic!("not an envelope");
    };
    assert_eq!(e.id(), "env-1");
    let (key, event) = e.event(&settings()).unwrap();
    assert_eq!(key, "slack:msg:C1:1700000000.000100");
    assert!(matches!(event, ChatEvent::Trigger { .. }), "{event:?}");
    assert_eq!(
        ack_json(&mention_envelope("env-1")),
        json!({"envelope_id": "env-1"})
    );
}

#[test]
fn a_slash_command_is_acked_with_the_ephemeral_on_it() {
    let frame = command_envelope("env-2");
    let Frame::Envelope(e) = parse(&frame) else {
        panic!("not an envelope");
    };
    let (key, event) = e.event(&settings()).unwrap();
    assert_eq!(
        key,
        "slack:command:13345224609.738474920.8088930838d88f008e0"
    );
    assert!(matches!(event, ChatEvent::Slash { .. }), "{event:?}");
    assert_eq!(
        ack_json(&frame),
        json!({"envelope_id": "env-2", "payload": {"text": "On it.", "response_type": "ephemeral"}})
    );
}

#[test]
fn an_ignored_event_has_nothing_to_store_but_is_acked() {
    let mut frame: Value = serde_json::from_str(&mention_envelope("env-3")).unwrap();
    // The bot's own message: nothing to do.
    frame["payload"]["event"] = json!({
        "type": "message", "user": "UBOT", "text": "hi", "ts": "1.2", "channel": "C1"
    });
    let Frame::Envelope(e) = parse(&frame.to_string()) else {
        panic!("not an envelope");
    };
    assert!(e.event(&settings()).is_none());
    assert_eq!(
        serde_json::from_str::<Value>(&e.ack().unwrap()).unwrap(),
        json!({"envelope_id": "env-3"})
    );
}

#[test]
fn hello_and_each_disconnect_reason() {
    let hello = json!({
        "type": "hello", "num_connections": 2,
        "debug_info": {"host": "applink-1", "build_number": 10, "approximate_connection_time": 18060},
        "connection_info": {"app_id": "A1"}
    });
    assert!(matches!(parse(&hello.to_string()), Frame::Hello(2)));
    for (reason, expected) in [
        ("warning", Disconnect::Refresh("warning".into())),
        (
            "refresh_requested",
            Disconnect::Refresh("refresh_requested".into()),
        ),
        ("link_disabled", Disconnect::LinkDisabled),
    ] {
        let frame =
            json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-1"}});
        match parse(&frame.to_string()) {
            Frame::Disconnect(d) => assert_eq!(d, expected),
            other => panic!("{reason}: {other:?}"),
        }
    }
}

#[test]
fn an_unreadable_envelope_is_acked_so_that_it_is_not_retried_and_garbage_is_not() {
    let odd = json!({"envelope_id": "env-4", "type": "events_api", "payload": {"nonsense": 1}});
    match parse(&odd.to_string()) {
        Frame::Unreadable { ack: Some(ack), .. } => assert_eq!(
            serde_json::from_str::<Value>(&ack).unwrap(),
            json!({"envelope_id": "env-4"})
        ),
        other => panic!("{other:?}"),
    }
    let unknown = json!({"envelope_id": "env-5", "type": "something_new", "payload": {}});
    assert!(matches!(
        parse(&unknown.to_string()),
        Frame::Unreadable { ack: Some(_), .. }
    ));
    for garbage in ["{not json", "[]", "\"hello\"", "{\"type\": \"hello\"}"] {
        assert!(
            matches!(parse(garbage), Frame::Unreadable { ack: None, .. }),
            "{garbage}"
        );
    }
}

#[test]
fn backoff_replaces_a_lost_connection_at_once_then_waits_longer_up_to_a_bound() {
    assert_eq!(backoff(0, 0), Duration::ZERO);
    assert_eq!(backoff(1, 3), Duration::ZERO);
    assert_eq!(backoff(2, 0), Duration::from_secs(1));
    assert_eq!(backoff(3, 0), Duration::from_secs(2));
    assert_eq!(backoff(4, 1), Duration::from_millis(4150));
    assert_eq!(backoff(60, 0), Duration::from_secs(30));
}

#[test]
fn the_tls_configuration_builds_without_a_process_wide_provider() {
    // Several rustls providers are linked in; the client names one instead of panicking.
    assert!(super::connection::tls_config().is_ok());
}
