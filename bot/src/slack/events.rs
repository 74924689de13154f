//! Slack payloads → threadsmith's [`ChatEvent`]s, each with the key that makes a redelivery a
//! duplicate. The only place that reads Slack's event types.

use slack_morphism::prelude::*;

use crate::chat::{ButtonAction, ChatEvent, ThreadRef, Via};

/// What the conversion needs to know.
#[derive(Debug, Clone, Default)]
pub struct EventSettings {
    pub bot_user_id: String,
    pub team_id: String,
    pub trigger_phrases: Vec<String>,
    pub phrase_channels: Vec<String>,
}

/// The message shortcut's callback id (see `deploy/slack/manifest.yml`).
pub const SHORTCUT_CALLBACK: &str = "fix_this";
/// The Retry form's callback id, and its input's block and action ids.
pub const RETRY_CALLBACK: &str = "retry";
/// The Revise form of a plan.
pub const REVISE_CALLBACK: &str = "revise_plan";
pub const FEEDBACK_BLOCK: &str = "feedback";
pub const FEEDBACK_ACTION: &str = "feedback";
/// The Retry form's "start from rollout" input (its block and action ids).
pub const FROM_BLOCK: &str = "from_rollout";
pub const FROM_ACTION: &str = "from_rollout";

fn thread(team: &str, channel: &str, thread_ts: &str) -> ThreadRef {
    ThreadRef {
        platform: "slack".into(),
        workspace: team.to_string(),
        channel: channel.to_string(),
        thread: thread_ts.to_string(),
    }
}

/// A message's `ts`, and the thread it belongs to (itself when it starts one).
fn place(origin: &SlackMessageOrigin) -> (String, String) {
    let ts = origin.ts.to_string();
    let thread_ts = origin
        .thread_ts
        .as_ref()
        .map_or(ts.clone(), |t| t.to_string());
    (ts, thread_ts)
}

fn message_key(channel: &str, ts: &str) -> String {
    format!("slack:msg:{channel}:{ts}")
}

/// A push event (Events API, over Socket Mode or HTTP).
pub fn from_push(cb: &SlackPushEventCallback, s: &EventSettings) -> Option<(String, ChatEvent)> {
    let team = cb.team_id.to_string();
    match &cb.event {
        SlackEventCallbackBody::AppMention(m) => {
            let user = m.user.to_string();
            if user == s.bot_user_id {
                return None;
            }
            let (ts, thread_ts) = place(&m.origin);
            let channel = m.channel.to_string();
            Some((
                message_key(&channel, &ts),
                ChatEvent::Trigger {
                    thread: thread(&team, &channel, &thread_ts),
                    message_ts: ts,
                    user,
                    text: m.content.text.clone().unwrap_or_default(),
                    via: Via::Mention,
                },
            ))
        }
        SlackEventCallbackBody::Message(m) => {
            // Bots (this one included), edits, joins…: never a trigger.
            if m.sender.bot_id.is_some() || m.subtype.is_some() {
                return None;
            }
            let user = m.sender.user.as_ref()?.to_string();
            let channel = m.origin.channel.as_ref()?.to_string();
            let text = m.content.as_ref()?.text.clone()?;
            if user == s.bot_user_id
                || text.contains(&format!("<@{}>", s.bot_user_id))
                || !s.phrase_channels.contains(&channel)
            {
                return None;
            }
            crate::chat::commands::parse_phrase(&text, &s.trigger_phrases)?;
            let (ts, thread_ts) = place(&m.origin);
            Some((
                message_key(&channel, &ts),
                ChatEvent::Trigger {
                    thread: thread(&team, &channel, &thread_ts),
                    message_ts: ts,
                    user,
                    text,
                    via: Via::Phrase,
                },
            ))
        }
        _ => None,
    }
}

/// The channel, message and thread of the message whose element was clicked.
fn clicked_message(b: &SlackInteractionBlockActionsEvent) -> Option<(String, String, String)> {
    let SlackInteractionActionContainer::Message(m) = &b.container else {
        return None;
    };
    let channel = m.channel_id.as_ref()?.to_string();
    let message_ts = m.message_ts.to_string();
    let thread_ts = b
        .message
        .as_ref()
        .and_then(|m| m.origin.thread_ts.as_ref())
        .map_or(message_ts.clone(), |t| t.to_string());
    Some((channel, message_ts, thread_ts))
}

/// An interaction: a button, the message shortcut, the Retry form.
pub fn from_interaction(
    ev: &SlackInteractionEvent,
    s: &EventSettings,
) -> Option<(String, ChatEvent)> {
    match ev {
        SlackInteractionEvent::BlockActions(b) => {
            let user = b.user.as_ref()?.id.to_string();
            let action = b.actions.as_ref()?.first()?;
            if action.action_id.as_ref() == crate::chat::CHOOSE_REPO {
                let chosen = &action.selected_option.as_ref()?.value;
                let (question_id, repo) = chosen.split_once('|')?;
                let (channel, _, thread_ts) = clicked_message(b)?;
                return Some((
                    format!("slack:click:{}", b.trigger_id),
                    ChatEvent::RepoChosen {
                        question_id: question_id.to_string(),
                        thread: thread(b.team.id.as_ref(), &channel, &thread_ts),
                        user,
                        repo: repo.to_string(),
                    },
                ));
            }
            let button = ButtonAction::parse(action.action_id.as_ref(), action.value.as_deref()?)?;
            let (channel, message_ts, thread_ts) = clicked_message(b)?;
            Some((
                format!("slack:click:{}", b.trigger_id),
                ChatEvent::Button {
                    thread: thread(b.team.id.as_ref(), &channel, &thread_ts),
                    message_ts,
                    user,
                    action: button,
                    trigger_id: Some(b.trigger_id.to_string()),
                },
            ))
        }
        SlackInteractionEvent::MessageAction(a) => {
            if a.callback_id.to_string() != SHORTCUT_CALLBACK {
                return None;
            }
            let channel = a.channel.as_ref()?.id.to_string();
            let message = a.message.as_ref()?;
            let (ts, thread_ts) = place(&message.origin);
            Some((
                message_key(&channel, &ts),
                ChatEvent::Trigger {
                    thread: thread(a.team.id.as_ref(), &channel, &thread_ts),
                    message_ts: ts,
                    user: a.user.id.to_string(),
                    text: String::new(),
                    via: Via::Shortcut,
                },
            ))
        }
        SlackInteractionEvent::ViewSubmission(v) => {
            let SlackView::Modal(modal) = &v.view.view else {
                return None;
            };
            let callback = modal.callback_id.as_ref()?.to_string();
            let id = modal.private_metadata.clone()?;
            let input = |block: &str, action: &str| {
                v.view
                    .state_params
                    .state
                    .as_ref()
                    .and_then(|st| st.values.get(&block.into()))
                    .and_then(|b| b.get(&action.into()))
                    .and_then(|v| v.value.clone())
                    .unwrap_or_default()
            };
            let feedback = input(FEEDBACK_BLOCK, FEEDBACK_ACTION);
            let from = input(FROM_BLOCK, FROM_ACTION);
            let _ = s;
            let user = v.user.id.to_string();
            let event = match callback.as_str() {
                RETRY_CALLBACK => ChatEvent::RetrySubmitted {
                    task_id: id,
                    user,
                    feedback,
                    from,
                },
                REVISE_CALLBACK => ChatEvent::PlanRevision {
                    plan_id: id,
                    user,
                    feedback,
                },
                _ => return None,
            };
            Some((format!("slack:view:{}", v.view.state_params.id), event))
        }
        _ => None,
    }
}

/// A slash command (`/fix …`).
pub fn from_command(c: &SlackCommandEvent) -> (String, ChatEvent) {
    (
        format!("slack:command:{}", c.trigger_id),
        ChatEvent::Slash {
            platform: "slack".into(),
            workspace: c.team_id.to_string(),
            channel: c.channel_id.to_string(),
            user: c.user_id.to_string(),
            text: c.text.clone().unwrap_or_default(),
        },
    )
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn settings() -> EventSettings {
        EventSettings {
            bot_user_id: "UBOT".into(),
            team_id: "T1".into(),
            trigger_phrases: vec!["fix this".into()],
            phrase_channels: vec!["C1".into()],
        }
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,24}".prop_map(Value::String),
            Just(json!("1700000000.000100")),
            Just(json!("UBOT")),
            Just(json!([])),
            Just(json!({})),
        ]
    }

    /// `v` with some of its leaves replaced (by path index), and some keys dropped.
    fn mutate(v: &mut Value, edits: &[(usize, Value)], drops: &[usize], counter: &mut usize) {
        match v {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    *counter += 1;
                    if drops.contains(counter) {
                        map.remove(&k);
                    } else if let Some(child) = map.get_mut(&k) {
                        mutate(child, edits, drops, counter);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    mutate(item, edits, drops, counter);
                }
            }
            leaf => {
                *counter += 1;
                if let Some((_, new)) = edits.iter().find(|(at, _)| at == counter) {
                    *leaf = new.clone();
                }
            }
        }
    }

    fn mutated(base: Value) -> impl Strategy<Value = Value> {
        (
            prop::collection::vec((0usize..60, leaf()), 0..6),
            prop::collection::vec(0usize..60, 0..3),
            "\\PC{0,200}",
        )
            .prop_map(move |(edits, drops, text)| {
                let mut v = base.clone();
                let mut n = 0;
                mutate(&mut v, &edits, &drops, &mut n);
                if let Some(t) = v.pointer_mut("/event/text")
                    && t.is_string()
                    && text.len() % 2 == 0
                {
                    *t = json!(format!("<@UBOT> {text}"));
                }
                v
            })
    }

    fn app_mention() -> Value {
        json!({"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
               "event_id": "Ev1", "event_time": 1700000000,
               "event": {"type": "app_mention", "user": "U1", "text": "<@UBOT> fix this",
                         "ts": "1700000000.000200", "thread_ts": "1700000000.000100",
                         "channel": "C1", "event_ts": "1700000000.000200"}})
    }

    fn message() -> Value {
        json!({"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
               "event_id": "Ev2", "event_time": 1700000000,
               "event": {"type": "message", "user": "U1", "text": "fix this please",
                         "ts": "1700000000.000300", "channel": "C1", "channel_type": "channel",
                         "event_ts": "1700000000.000300"}})
    }

    fn block_actions() -> Value {
        json!({"type": "block_actions", "team": {"id": "T1", "domain": "acme"},
               "user": {"id": "U1", "username": "alice", "team_id": "T1"},
               "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
               "container": {"type": "message", "message_ts": "1700000000.000400",
                             "channel_id": "C1", "is_ephemeral": false},
               "channel": {"id": "C1", "name": "bugs"},
               "message": {"type": "message", "ts": "1700000000.000400",
                           "thread_ts": "1700000000.000100", "text": "summary"},
               "actions": [{"action_id": "approve", "block_id": "b1", "type": "button",
                            "value": "0123456789abcdef0123456789abcdef:2",
                            "action_ts": "1700000001.000000"}]})
    }

    fn view_submission() -> Value {
        json!({"type": "view_submission", "team": {"id": "T1", "domain": "acme"},
               "user": {"id": "U1", "username": "alice", "team_id": "T1"},
               "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
               "view": {"id": "V1", "type": "modal", "callback_id": "retry",
                        "private_metadata": "0123456789abcdef0123456789abcdef",
                        "title": {"type": "plain_text", "text": "Retry"},
                        "blocks": [],
                        "state": {"values": {"feedback": {"feedback": {"type": "plain_text_input", "value": "try harder"}}}},
                        "hash": "h", "team_id": "T1", "app_id": "A1", "bot_id": "B1"}})
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn push_events_convert_or_are_ignored(v in prop_oneof![mutated(app_mention()), mutated(message())]) {
            if let Ok(SlackPushEvent::EventCallback(cb)) = serde_json::from_value::<SlackPushEvent>(v)
                && let Some((key, event)) = from_push(&cb, &settings())
            {
                prop_assert!(key.starts_with("slack:"));
                prop_assert!(serde_json::to_string(&event).is_ok());
            }
        }

        #[test]
        fn interactions_convert_or_are_ignored(v in prop_oneof![mutated(block_actions()), mutated(view_submission())]) {
            if let Ok(ev) = serde_json::from_value::<SlackInteractionEvent>(v)
                && let Some((key, event)) = from_interaction(&ev, &settings())
            {
                prop_assert!(key.starts_with("slack:"));
                prop_assert!(serde_json::to_string(&event).is_ok());
            }
        }

        #[test]
        fn any_json_is_refused_or_converted(v in leaf().prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::hash_map(
                    prop::sample::select(vec!["type", "event", "user", "text", "ts", "channel", "actions", "view", "team_id"]),
                    inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })) {
            if let Ok(SlackPushEvent::EventCallback(cb)) = serde_json::from_value::<SlackPushEvent>(v.clone()) {
                let _ = from_push(&cb, &settings());
            }
            if let Ok(ev) = serde_json::from_value::<SlackInteractionEvent>(v) {
                let _ = from_interaction(&ev, &settings());
            }
        }
    }

    #[test]
    fn the_base_payloads_convert() {
        let SlackPushEvent::EventCallback(cb) = serde_json::from_value(app_mention()).unwrap()
        else {
            panic!("not an event callback")
        };
        assert!(from_push(&cb, &settings()).is_some());
        let ev: SlackInteractionEvent = serde_json::from_value(block_actions()).unwrap();
        assert!(from_interaction(&ev, &settings()).is_some());
    }
}
