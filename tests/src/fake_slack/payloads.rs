//! Builders of the `payload` objects Slack puts in Socket Mode envelopes, in Slack's real
//! shapes, filled from the fake's state where Slack would be (the clicked message, the view).

use serde_json::{Value, json};

use super::web::{TEAM_DOMAIN, history_json, view_json};
use super::{FakeSlack, SlackState};

const VERIFICATION_TOKEN: &str = "fake-verification-token";

impl FakeSlack {
    /// An `app_mention` event callback (a fresh `event_id` each call).
    pub fn app_mention(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        ts: &str,
        thread_ts: Option<&str>,
    ) -> Value {
        self.join(channel);
        let n = self.shared.mutate(|s| s.next_id());
        let mut event = json!({
            "client_msg_id": client_msg_id(n),
            "type": "app_mention",
            "text": text,
            "user": user,
            "ts": ts,
            "team": self.shared.cfg.team_id,
            "channel": channel,
            "event_ts": ts,
        });
        if let Some(thread_ts) = thread_ts {
            event["thread_ts"] = json!(thread_ts);
        }
        self.event_callback(event)
    }

    /// A `message` event. With a `bot_id` and no `user` it is a `bot_message`.
    pub fn message_event(
        &self,
        channel: &str,
        user: Option<&str>,
        bot_id: Option<&str>,
        text: &str,
        ts: &str,
        thread_ts: Option<&str>,
    ) -> Value {
        self.join(channel);
        let n = self.shared.mutate(|s| s.next_id());
        let channel_type = match channel.chars().next() {
            Some('D') => "im",
            Some('G') => "group",
            _ => "channel",
        };
        let mut event = json!({
            "type": "message",
            "text": text,
            "ts": ts,
            "team": self.shared.cfg.team_id,
            "channel": channel,
            "channel_type": channel_type,
            "event_ts": ts,
        });
        if let Some(user) = user {
            event["user"] = json!(user);
        }
        match bot_id {
            Some(bot_id) => {
                event["bot_id"] = json!(bot_id);
                event["app_id"] = json!(self.shared.cfg.app_id);
                if user.is_none() {
                    event["subtype"] = json!("bot_message");
                }
            }
            None => event["client_msg_id"] = json!(client_msg_id(n)),
        }
        if let Some(thread_ts) = thread_ts {
            event["thread_ts"] = json!(thread_ts);
        }
        self.event_callback(event)
    }

    /// Wraps any `event` in an `event_callback` with a fresh `event_id`. To simulate a
    /// redelivery, send the same payload again (same `event_id`, new envelope).
    pub fn event_callback(&self, event: Value) -> Value {
        let cfg = &self.shared.cfg;
        let n = self.shared.mutate(|s| s.next_id());
        let event_time = event["event_ts"]
            .as_str()
            .and_then(|ts| ts.split('.').next()?.parse::<u64>().ok())
            .unwrap_or(1_700_000_100);
        json!({
            "token": VERIFICATION_TOKEN,
            "team_id": cfg.team_id,
            "api_app_id": cfg.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": format!("Ev{n:08}"),
            "event_time": event_time,
            "authorizations": [{
                "enterprise_id": null,
                "team_id": cfg.team_id,
                "user_id": cfg.bot_user_id,
                "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": format!("4-fake-{n}"),
        })
    }

    /// A click on an element of a message. When the fake holds the message (or the
    /// ephemeral), the payload carries it and the clicked element (`block_id`, `text`, ...).
    pub fn block_actions(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        thread_ts: Option<&str>,
        action_id: &str,
        value: &str,
    ) -> Value {
        self.join(channel);
        let cfg = &self.shared.cfg;
        let (n, trigger, message, ephemeral_blocks) = self.shared.mutate(|s| {
            let (n, trigger) = new_trigger(s);
            let s: &SlackState = s;
            let message = s.find(channel, message_ts).map(|m| history_json(s, cfg, m));
            let ephemeral = s
                .ephemerals
                .iter()
                .rev()
                .find(|e| e.channel == channel && e.ts == message_ts)
                .map(|e| e.blocks.clone().unwrap_or(Value::Null));
            (n, trigger, message, ephemeral)
        });
        let is_ephemeral = ephemeral_blocks.is_some();
        let blocks = ephemeral_blocks
            .or_else(|| message.as_ref().map(|m| m["blocks"].clone()))
            .unwrap_or(Value::Null);
        let mut container = json!({
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": is_ephemeral,
        });
        if let Some(thread_ts) = thread_ts {
            container["thread_ts"] = json!(thread_ts);
        }
        let mut payload = json!({
            "type": "block_actions",
            "user": self.user_info(user),
            "api_app_id": cfg.app_id,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": trigger,
            "team": team(cfg),
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": channel, "name": channel.to_lowercase()},
            "state": {"values": {}},
            "response_url": self.response_url(n),
            "actions": [action(&blocks, action_id, value, n)],
        });
        if !is_ephemeral {
            payload["message"] = message.unwrap_or_else(|| {
                let mut m = json!({"type": "message", "user": cfg.bot_user_id, "bot_id": cfg.bot_id, "text": "", "ts": message_ts});
                if let Some(thread_ts) = thread_ts {
                    m["thread_ts"] = json!(thread_ts);
                }
                m
            });
        }
        payload
    }

    /// A modal's submission. The view is the latest one the bot opened with this
    /// `callback_id` (or a minimal modal); `values` become `view.state.values`, e.g.
    /// `{"block":{"action":{"type":"plain_text_input","value":"…"}}}`.
    pub fn view_submission(
        &self,
        user: &str,
        callback_id: &str,
        private_metadata: &str,
        values: Value,
    ) -> Value {
        let cfg = &self.shared.cfg;
        let (trigger, mut view) = self.shared.mutate(|s| {
            let (n, trigger) = new_trigger(s);
            let view = s
                .views
                .iter()
                .rev()
                .find(|v| v.current["callback_id"] == callback_id)
                .map(|v| v.current.clone())
                .unwrap_or_else(|| {
                    let modal = json!({
                        "type": "modal",
                        "title": {"type": "plain_text", "text": "Threadsmith"},
                        "blocks": [],
                    });
                    view_json(
                        cfg,
                        &format!("V{n:08}"),
                        &format!("1700000100.{n:08x}"),
                        &modal,
                    )
                });
            (trigger, view)
        });
        view["callback_id"] = json!(callback_id);
        view["private_metadata"] = json!(private_metadata);
        view["state"] = json!({"values": values});
        json!({
            "type": "view_submission",
            "team": team(cfg),
            "user": self.user_info(user),
            "api_app_id": cfg.app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger,
            "view": view,
            "response_urls": [],
            "is_enterprise_install": false,
            "enterprise": null,
        })
    }

    /// A message shortcut on a message (carried in the payload when the fake holds it).
    pub fn message_action(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        thread_ts: Option<&str>,
        callback_id: &str,
    ) -> Value {
        self.join(channel);
        let cfg = &self.shared.cfg;
        let (n, trigger, message) = self.shared.mutate(|s| {
            let (n, trigger) = new_trigger(s);
            let s: &SlackState = s;
            let message = s.find(channel, message_ts).map(|m| history_json(s, cfg, m));
            (n, trigger, message)
        });
        let message = message.unwrap_or_else(|| {
            let mut m = json!({"type": "message", "text": "", "ts": message_ts});
            if let Some(thread_ts) = thread_ts {
                m["thread_ts"] = json!(thread_ts);
            }
            m
        });
        json!({
            "type": "message_action",
            "token": VERIFICATION_TOKEN,
            "action_ts": format!("1700000200.{n:06}"),
            "team": team(cfg),
            "user": self.user_info(user),
            "channel": {"id": channel, "name": channel.to_lowercase()},
            "is_enterprise_install": false,
            "enterprise": null,
            "callback_id": callback_id,
            "trigger_id": trigger,
            "response_url": self.response_url(n),
            "message_ts": message_ts,
            "message": message,
        })
    }

    /// A slash command (send it as `slash_commands`, usually with
    /// `accepts_response_payload: true`).
    pub fn slash_command(&self, command: &str, text: &str, channel: &str, user: &str) -> Value {
        self.join(channel);
        let cfg = &self.shared.cfg;
        let (n, trigger) = self.shared.mutate(new_trigger);
        json!({
            "token": VERIFICATION_TOKEN,
            "team_id": cfg.team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": channel.to_lowercase(),
            "user_id": user,
            "user_name": self.user_name(user),
            "command": command,
            "text": text,
            "api_app_id": cfg.app_id,
            "is_enterprise_install": "false",
            "response_url": self.response_url(n),
            "trigger_id": trigger,
        })
    }

    /// A human mentions the bot: the message is stored and an `app_mention` envelope sent.
    /// Returns the message's `ts` and the envelope's id.
    pub async fn mention(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> (String, String) {
        let ts = self.post_as_user(channel, user, text, thread_ts);
        let payload = self.app_mention(channel, user, text, &ts, thread_ts);
        let envelope_id = self.send_envelope("events_api", payload, false).await;
        (ts, envelope_id)
    }
}

/// What several payloads carry: the user's description and a `response_url`.
impl FakeSlack {
    fn user_info(&self, user: &str) -> Value {
        let name = self.user_name(user);
        json!({"id": user, "username": name, "name": name, "team_id": self.shared.cfg.team_id})
    }

    /// A `response_url` that points back at the fake (see [`FakeSlack::responses`]).
    fn response_url(&self, n: u64) -> String {
        format!("http://{}/response/{n}", self.shared.api_addr)
    }
}

fn team(cfg: &super::FakeSlackConfig) -> Value {
    json!({"id": cfg.team_id, "domain": TEAM_DOMAIN})
}

fn client_msg_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// A trigger id that `views.open` will accept.
fn new_trigger(s: &mut SlackState) -> (u64, String) {
    let n = s.next_id();
    let trigger = format!("{n}.4711.{n:032x}");
    s.triggers.insert(trigger.clone());
    (n, trigger)
}

/// The `actions` entry for a click on `action_id`, shaped by the element found in `blocks`.
fn action(blocks: &Value, action_id: &str, value: &str, n: u64) -> Value {
    let (block_id, element) = find_element(blocks, action_id).unwrap_or_else(|| {
        (
            "fake-block".into(),
            json!({"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": action_id}}),
        )
    });
    let kind = element["type"].as_str().unwrap_or("button").to_string();
    let mut action = json!({
        "action_id": action_id,
        "block_id": block_id,
        "type": kind,
        "action_ts": format!("1700000200.{n:06}"),
    });
    match kind.as_str() {
        "static_select" | "external_select" | "overflow" | "radio_buttons" => {
            let option = element["options"]
                .as_array()
                .and_then(|options| options.iter().find(|o| o["value"] == value))
                .cloned()
                .unwrap_or_else(
                    || json!({"text": {"type": "plain_text", "text": value}, "value": value}),
                );
            action["selected_option"] = option;
        }
        _ => {
            action["value"] = json!(value);
            for key in ["text", "style"] {
                if let Some(v) = element.get(key) {
                    action[key] = v.clone();
                }
            }
        }
    }
    action
}

/// The block id and element with `action_id` in a list of blocks.
fn find_element(blocks: &Value, action_id: &str) -> Option<(String, Value)> {
    blocks
        .as_array()?
        .iter()
        .enumerate()
        .find_map(|(i, block)| {
            let mut candidates: Vec<&Value> = block["elements"]
                .as_array()
                .map(|e| e.iter().collect())
                .unwrap_or_default();
            candidates.extend([&block["accessory"], &block["element"]]);
            let element = candidates
                .into_iter()
                .find(|e| e["action_id"] == action_id)?;
            let block_id = block["block_id"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("fake-block-{i}"));
            Some((block_id, element.clone()))
        })
}
