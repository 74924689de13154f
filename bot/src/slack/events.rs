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
            let feedback = v
                .view
                .state_params
                .state
                .as_ref()
                .and_then(|st| st.values.get(&FEEDBACK_BLOCK.into()))
                .and_then(|b| b.get(&FEEDBACK_ACTION.into()))
                .and_then(|v| v.value.clone())
                .unwrap_or_default();
            let _ = s;
            let user = v.user.id.to_string();
            let event = match callback.as_str() {
                RETRY_CALLBACK => ChatEvent::RetrySubmitted {
                    task_id: id,
                    user,
                    feedback,
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
