//! A stateful fake Discord at the wire level: REST API v10 (what threadsmith calls) and the
//! Gateway v10 WebSocket (Hello, Identify, Ready, heartbeats, dispatches with sequence numbers,
//! Resume with replay of what a dropped connection missed). Payloads are shaped as Discord's
//! documentation shows them; serenity parses them.
//!
//! `mod.rs`: the state and what the test does as users; `control.rs`: the gateway, interactions
//! and inspection; `gateway.rs`: the WebSocket; `rest.rs`: the REST API; `guard.rs`: the lock
//! whose writes wake the tests waiting for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

mod control;
mod gateway;
mod guard;
mod rest;

pub const BOT_ID: &str = "1100000000000000001";
pub const APP_ID: &str = BOT_ID;
pub const GUILD_ID: &str = "1200000000000000001";
pub const TOKEN: &str = "discord-test-token";
const TS: &str = "2026-11-23T12:00:00.000000+00:00";

/// A message as stored.
#[derive(Debug, Clone)]
pub struct Msg {
    pub id: String,
    pub channel_id: String,
    pub author_id: String,
    pub content: String,
    pub embeds: Value,
    pub components: Value,
    pub allowed_mentions: Option<Value>,
    pub attachments: Vec<(String, Vec<u8>)>,
    pub edits: u32,
    pub is_bot: bool,
}

/// A message sent with an interaction's token (a follow-up, or the deferred reply's edit).
#[derive(Debug, Clone)]
pub struct WebhookMsg {
    pub token: String,
    /// An edit of the original (deferred) response.
    pub original: bool,
    pub body: Value,
}

#[derive(Debug, Clone)]
struct Channel {
    id: String,
    kind: u8,
    name: String,
    parent: Option<String>,
}

#[derive(Debug, Default)]
struct Interaction {
    sent_at: Option<Instant>,
    first_response: Option<Instant>,
    responses: Vec<Value>,
}

struct EarlierSession {
    outbox: mpsc::UnboundedSender<String>,
    seq: u64,
    _kill: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Default)]
struct State_ {
    users: HashMap<String, (String, Vec<String>)>,
    channels: HashMap<String, Channel>,
    messages: Vec<Msg>,
    reactions: HashMap<(String, String), Vec<String>>,
    interactions: HashMap<String, Interaction>,
    webhooks: Vec<WebhookMsg>,
    calls: Vec<(String, String)>,
    commands: Value,
    next_id: u64,
    // Gateway.
    seq: u64,
    log: Vec<(u64, String, Value)>,
    session: Option<String>,
    outbox: Option<mpsc::UnboundedSender<String>>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    /// Sessions still connected when another process identified (Discord keeps both open):
    /// their outbox, last sequence number and kill switch, oldest first.
    earlier: Vec<EarlierSession>,
    identifies: usize,
    resumes: usize,
    ready: bool,
    /// The intents of the last Identify.
    intents: u64,
    /// The application's Message Content Intent (Developer Portal → Bot), on by default: off,
    /// Discord blanks guild messages over REST as over the gateway, and refuses an Identify
    /// asking for the intent.
    app_message_content: bool,
    /// (method, path prefix, retry_after seconds): the next matching call gets a 429.
    rate_limits: Vec<(String, String, f64)>,
    /// (method, path prefix, until): a bucket exhausted by a 429; calls before `until` get
    /// another 429 for what is left.
    exhausted: Vec<(String, String, Instant)>,
    /// When each call arrived: (method, path, at).
    arrivals: Vec<(String, String, Instant)>,
}

#[derive(Clone)]
pub struct FakeDiscord {
    state: Arc<Mutex<State_>>,
    /// Moves after every write of the state (see `guard.rs`).
    changed: Arc<watch::Sender<u64>>,
    addr: std::net::SocketAddr,
}

fn user_json(id: &str, name: &str, bot: bool) -> Value {
    json!({"id": id, "username": name, "discriminator": "0", "global_name": name,
           "avatar": null, "bot": bot, "public_flags": 0})
}

fn error(status: StatusCode, code: u64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"message": message, "code": code})),
    )
        .into_response()
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Discord");
        Self::start_on(listener)
    }

    /// The fake on a listener of the test's choosing (an address the bot already tries).
    pub fn start_on(listener: tokio::net::TcpListener) -> Self {
        let state = Arc::new(Mutex::new(State_ {
            next_id: 1_600_000_000_000_000_000,
            commands: json!([]),
            app_message_content: true,
            ..State_::default()
        }));
        let addr = listener.local_addr().expect("address");
        let fake = Self {
            state,
            changed: Arc::new(watch::Sender::new(0)),
            addr,
        };
        let app = Router::new()
            .route("/gateway", get(gateway::gateway))
            .route("/api/v10/{*path}", any(rest::rest))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> guard::StateGuard<'_> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard::StateGuard::new(state, &self.changed)
    }

    fn snowflake(&self) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        s.next_id.to_string()
    }

    pub fn add_user(&self, id: &str, name: &str, roles: &[&str]) {
        self.lock().users.insert(
            id.into(),
            (name.into(), roles.iter().map(|r| r.to_string()).collect()),
        );
    }

    pub fn add_channel(&self, id: &str, name: &str) {
        self.lock().channels.insert(
            id.into(),
            Channel {
                id: id.into(),
                kind: 0,
                name: name.into(),
                parent: None,
            },
        );
    }

    fn user(&self, id: &str) -> Value {
        if id == BOT_ID {
            return user_json(BOT_ID, "threadsmith", true);
        }
        let name = self
            .lock()
            .users
            .get(id)
            .map(|u| u.0.clone())
            .unwrap_or_else(|| "someone".into());
        user_json(id, &name, false)
    }

    fn member(&self, id: &str) -> Value {
        let roles = self
            .lock()
            .users
            .get(id)
            .map(|u| u.1.clone())
            .unwrap_or_default();
        json!({"user": self.user(id), "nick": null, "avatar": null, "roles": roles,
               "joined_at": TS, "premium_since": null, "deaf": false, "mute": false, "flags": 0,
               "pending": false, "permissions": "2248473465835073",
               "communication_disabled_until": null})
    }

    fn channel_json(&self, c: &Channel) -> Value {
        match &c.parent {
            None => json!({"id": c.id, "type": c.kind, "guild_id": GUILD_ID, "name": c.name,
                "position": 0, "permission_overwrites": [], "nsfw": false, "parent_id": null,
                "last_message_id": null, "rate_limit_per_user": 0, "topic": null, "flags": 0}),
            Some(p) => json!({"id": c.id, "type": c.kind, "guild_id": GUILD_ID, "name": c.name,
                "parent_id": p, "owner_id": BOT_ID, "last_message_id": null,
                "message_count": 0, "member_count": 1, "rate_limit_per_user": 0,
                "total_message_sent": 0, "flags": 0, "position": 0,
                "permission_overwrites": [], "nsfw": false,
                "thread_metadata": {"archived": false, "auto_archive_duration": 1440,
                    "archive_timestamp": TS, "locked": false, "create_timestamp": TS}}),
        }
    }

    fn message_json(&self, m: &Msg) -> Value {
        let mentions: Vec<Value> = m
            .content
            .split("<@")
            .skip(1)
            .filter_map(|rest| rest.split('>').next())
            .map(|id| id.trim_start_matches('!'))
            .filter(|id| id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty())
            .map(|id| self.user(id))
            .collect();
        let attachments: Vec<Value> = m
            .attachments
            .iter()
            .enumerate()
            .map(|(i, (name, bytes))| {
                json!({"id": format!("{}{}", m.id, i), "filename": name, "size": bytes.len(),
                       "url": format!("https://cdn.discordapp.com/attachments/{}/{}", m.channel_id, name),
                       "proxy_url": format!("https://media.discordapp.net/attachments/{}/{}", m.channel_id, name)})
            })
            .collect();
        json!({"id": m.id, "channel_id": m.channel_id, "author": self.user(&m.author_id),
               "content": m.content, "timestamp": TS,
               "edited_timestamp": if m.edits > 0 { json!(TS) } else { Value::Null },
               "tts": false, "mention_everyone": false, "mentions": mentions,
               "mention_roles": [], "attachments": attachments, "embeds": m.embeds,
               "pinned": false, "type": 0, "flags": 0, "components": m.components})
    }

    /// Sends a dispatch over the gateway (queued for a resume while disconnected).
    fn dispatch(&self, t: &str, d: Value) {
        let mut s = self.lock();
        s.seq += 1;
        let seq = s.seq;
        s.log.push((seq, t.to_string(), d.clone()));
        if let Some(out) = &s.outbox {
            let _ = out.send(json!({"op": 0, "s": seq, "t": t, "d": d}).to_string());
        }
    }

    /// The application's flags: `GATEWAY_MESSAGE_CONTENT_LIMITED` (1 << 19, an app in under 100
    /// servers) when its Message Content Intent is on.
    pub(super) fn app_flags(&self) -> u64 {
        if self.lock().app_message_content {
            1 << 19
        } else {
            0
        }
    }

    /// A message as this application may see it (Discord's "Message Content Intent"): without
    /// the intent (`gateway_intent`: asked for at Identify, for gateway events; REST reads need
    /// only the application's setting), a guild message's content, embeds, attachments and
    /// components are empty unless it mentions the bot or is the bot's own. DMs keep theirs.
    pub(super) fn visible_message_json(&self, m: &Msg, gateway_intent: bool) -> Value {
        let mut d = self.message_json(m);
        let (app, dm) = {
            let s = self.lock();
            let dm = s.channels.get(&m.channel_id).is_some_and(|c| c.kind == 1);
            (s.app_message_content, dm)
        };
        let mentions_bot = m.content.contains(&format!("<@{BOT_ID}>"))
            || m.content.contains(&format!("<@!{BOT_ID}>"));
        let shown = (app && gateway_intent) || dm || mentions_bot || m.author_id == BOT_ID;
        if !shown {
            d["content"] = json!("");
            d["embeds"] = json!([]);
            d["attachments"] = json!([]);
            d["components"] = json!([]);
        }
        d
    }

    fn gateway_message(&self, m: &Msg, t: &str) {
        let (intents, dm) = {
            let s = self.lock();
            let dm = s.channels.get(&m.channel_id).is_some_and(|c| c.kind == 1);
            (s.intents, dm)
        };
        let mut d = self.visible_message_json(m, intents & (1 << 15) != 0);
        if dm {
            // Direct messages reach only a bot that asked for them (DIRECT_MESSAGES, 1 << 12),
            // with their content; they carry no guild.
            if intents & (1 << 12) != 0 {
                self.dispatch(t, d);
            }
            return;
        }
        d["guild_id"] = json!(GUILD_ID);
        if !m.is_bot {
            let mut member = self.member(&m.author_id);
            if let Some(obj) = member.as_object_mut() {
                obj.remove("user");
            }
            d["member"] = member;
        }
        self.dispatch(t, d);
    }

    pub fn post_as_user(&self, channel_id: &str, user_id: &str, content: &str) -> String {
        let id = self.snowflake();
        let m = Msg {
            id: id.clone(),
            channel_id: channel_id.into(),
            author_id: user_id.into(),
            content: content.into(),
            embeds: json!([]),
            components: json!([]),
            allowed_mentions: None,
            attachments: Vec::new(),
            edits: 0,
            is_bot: false,
        };
        self.lock().messages.push(m.clone());
        self.gateway_message(&m, "MESSAGE_CREATE");
        id
    }

    /// A direct message from `user_id` to the bot (its DM channel made on first use); returns
    /// (channel, message id).
    pub fn post_dm(&self, user_id: &str, content: &str) -> (String, String) {
        let channel = format!("19{}", &user_id[2..]);
        self.lock()
            .channels
            .entry(channel.clone())
            .or_insert(Channel {
                id: channel.clone(),
                kind: 1,
                name: String::new(),
                parent: None,
            });
        (
            channel.clone(),
            self.post_as_user(&channel, user_id, content),
        )
    }

    fn create_thread(&self, parent: &str, id: &str, name: &str) -> Option<Value> {
        let c = {
            let mut s = self.lock();
            if s.channels.contains_key(id) {
                return None;
            }
            let c = Channel {
                id: id.into(),
                kind: 11,
                name: name.into(),
                parent: Some(parent.into()),
            };
            s.channels.insert(id.into(), c.clone());
            c
        };
        let json = self.channel_json(&c);
        let mut d = json.clone();
        d["newly_created"] = json!(true);
        self.dispatch("THREAD_CREATE", d);
        Some(json)
    }

    pub fn start_thread(&self, parent: &str, message_id: &str, name: &str) -> String {
        self.create_thread(parent, message_id, name);
        message_id.to_string()
    }
}
