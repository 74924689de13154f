//! A stateful fake Discord at the wire level: REST API v10 (what threadsmith calls) and the
//! Gateway v10 WebSocket (Hello, Identify, Ready, heartbeats, dispatches with sequence numbers,
//! Resume with replay of what a dropped connection missed). Payloads are shaped as Discord's
//! documentation shows them; serenity parses them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tokio::sync::mpsc;

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
    identifies: usize,
    resumes: usize,
    ready: bool,
    /// The intents of the last Identify.
    intents: u64,
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
            ..State_::default()
        }));
        let addr = listener.local_addr().expect("address");
        let fake = Self { state, addr };
        let app = Router::new()
            .route("/gateway", get(gateway))
            .route("/api/v10/{*path}", any(rest))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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

    fn gateway_message(&self, m: &Msg, t: &str) {
        let mut d = self.message_json(m);
        let (intents, dm) = {
            let s = self.lock();
            let dm = s.channels.get(&m.channel_id).is_some_and(|c| c.kind == 1);
            (s.intents, dm)
        };
        if dm {
            // Direct messages reach only a bot that asked for them (DIRECT_MESSAGES, 1 << 12),
            // with their content; they carry no guild.
            if intents & (1 << 12) != 0 {
                self.dispatch(t, d);
            }
            return;
        }
        // Without the privileged MESSAGE_CONTENT intent (1 << 15), a guild message's content,
        // embeds, attachments and components are empty unless it mentions the bot or is the
        // bot's own (Discord's "Message Content Intent").
        let mentions_bot = m.content.contains(&format!("<@{BOT_ID}>"))
            || m.content.contains(&format!("<@!{BOT_ID}>"));
        if intents & (1 << 15) == 0 && !mentions_bot && m.author_id != BOT_ID {
            d["content"] = json!("");
            d["embeds"] = json!([]);
            d["attachments"] = json!([]);
            d["components"] = json!([]);
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

    // --- gateway control ---------------------------------------------------------------

    pub async fn wait_connected(&self) {
        self.wait_until("the gateway's READY", |f| f.lock().ready && f.connected())
            .await;
    }

    pub fn connected(&self) -> bool {
        self.lock().outbox.is_some()
    }

    /// The next `method` call whose path starts with `path_prefix` (e.g.
    /// `/api/v10/channels/123/messages`) is answered 429, asking to retry after `retry_after`
    /// seconds.
    pub fn rate_limit_next(&self, method: &str, path_prefix: &str, retry_after: f64) {
        self.lock()
            .rate_limits
            .push((method.into(), path_prefix.into(), retry_after));
    }

    /// When each call arrived, in order: (method, path, at).
    pub fn arrivals(&self) -> Vec<(String, String, Instant)> {
        self.lock().arrivals.clone()
    }

    pub fn identifies(&self) -> usize {
        self.lock().identifies
    }

    pub fn resumes(&self) -> usize {
        self.lock().resumes
    }

    /// Cuts the connection without a close frame, as a network drop does.
    pub async fn drop_connection(&self) {
        let kill = {
            let mut s = self.lock();
            s.outbox = None;
            s.kill.take()
        };
        if let Some(k) = kill {
            let _ = k.send(());
        }
    }

    // --- interactions -----------------------------------------------------------------

    pub async fn send_interaction(&self, payload: Value) -> String {
        let id = payload["id"].as_str().unwrap_or_default().to_string();
        self.lock()
            .interactions
            .entry(id.clone())
            .or_default()
            .sent_at = Some(Instant::now());
        self.dispatch("INTERACTION_CREATE", payload);
        id
    }

    fn interaction(&self, kind: u8, user: &str, channel_id: &str, data: Value) -> Value {
        let id = self.snowflake();
        let channel = self
            .lock()
            .channels
            .get(channel_id)
            .cloned()
            .unwrap_or(Channel {
                id: channel_id.into(),
                kind: 0,
                name: "general".into(),
                parent: None,
            });
        json!({"id": id, "application_id": APP_ID, "type": kind, "data": data,
               "guild_id": GUILD_ID, "channel": self.channel_json(&channel),
               "channel_id": channel_id, "member": self.member(user),
               "token": format!("itok-{}", uuid::Uuid::new_v4().simple()), "version": 1,
               "app_permissions": "2248473465835073", "locale": "en-US", "guild_locale": "en-US",
               "entitlements": [], "authorizing_integration_owners": {"0": GUILD_ID},
               "context": 0, "attachment_size_limit": 10_485_760})
    }

    pub fn button_click(
        &self,
        user: &str,
        channel_id: &str,
        message_id: &str,
        custom_id: &str,
    ) -> Value {
        let message = self
            .message(channel_id, message_id)
            .map(|m| self.message_json(&m))
            .unwrap_or(Value::Null);
        let mut p = self.interaction(
            3,
            user,
            channel_id,
            json!({"custom_id": custom_id, "component_type": 2}),
        );
        p["message"] = message;
        p
    }

    pub fn modal_submit(
        &self,
        user: &str,
        channel_id: &str,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> Value {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
            .collect();
        self.interaction(
            5,
            user,
            channel_id,
            json!({"custom_id": custom_id, "components": rows}),
        )
    }

    pub fn slash_command(
        &self,
        user: &str,
        channel_id: &str,
        name: &str,
        text: Option<&str>,
    ) -> Value {
        let mut data = json!({"id": "1700000000000000001", "name": name, "type": 1});
        if let Some(t) = text {
            data["options"] = json!([{"name": "text", "type": 3, "value": t}]);
        }
        self.interaction(2, user, channel_id, data)
    }

    pub fn message_command(&self, user: &str, channel_id: &str, target: &str, name: &str) -> Value {
        let message = self
            .message(channel_id, target)
            .map(|m| self.message_json(&m))
            .unwrap_or(Value::Null);
        self.interaction(
            2,
            user,
            channel_id,
            json!({"id": "1700000000000000002", "name": name, "type": 3, "target_id": target,
                   "resolved": {"messages": {target: message}}}),
        )
    }

    // --- inspection -------------------------------------------------------------------

    pub fn messages(&self, channel_id: &str) -> Vec<Msg> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id)
            .cloned()
            .collect()
    }

    pub fn message(&self, channel_id: &str, id: &str) -> Option<Msg> {
        self.lock()
            .messages
            .iter()
            .find(|m| m.channel_id == channel_id && m.id == id)
            .cloned()
    }

    pub fn reactions(&self, channel_id: &str, message_id: &str) -> Vec<String> {
        self.lock()
            .reactions
            .get(&(channel_id.to_string(), message_id.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn interaction_responses(&self, id: &str) -> Vec<Value> {
        self.lock()
            .interactions
            .get(id)
            .map(|i| i.responses.clone())
            .unwrap_or_default()
    }

    pub fn responded_within(&self, id: &str) -> Option<Duration> {
        let s = self.lock();
        let i = s.interactions.get(id)?;
        Some(i.first_response?.duration_since(i.sent_at?))
    }

    pub fn webhook_messages(&self) -> Vec<WebhookMsg> {
        self.lock().webhooks.clone()
    }

    pub fn threads(&self) -> Vec<(String, String)> {
        self.lock()
            .channels
            .values()
            .filter_map(|c| c.parent.clone().map(|p| (c.id.clone(), p)))
            .collect()
    }

    pub fn calls(&self) -> Vec<(String, String)> {
        self.lock().calls.clone()
    }

    pub fn registered_commands(&self) -> Value {
        self.lock().commands.clone()
    }

    pub async fn wait_until(&self, what: &str, pred: impl Fn(&FakeDiscord) -> bool) {
        self.wait_for(what, |f| pred(f).then_some(())).await
    }

    pub async fn wait_for<T>(&self, what: &str, f: impl Fn(&FakeDiscord) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > deadline {
                let s = self.lock();
                let msgs: Vec<String> = s
                    .messages
                    .iter()
                    .map(|m| {
                        format!(
                            "{} {} {} {:?} {}",
                            m.channel_id, m.id, m.author_id, m.content, m.components
                        )
                    })
                    .collect();
                panic!(
                    "timed out after 60s waiting for {what}\ncalls: {:?}\nmessages:\n{}\nwebhooks: {:?}",
                    s.calls,
                    msgs.join("\n"),
                    s.webhooks
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// --- the gateway ------------------------------------------------------------------------

async fn gateway(State(fake): State<FakeDiscord>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(fake, socket))
}

async fn connection(fake: FakeDiscord, mut socket: WebSocket) {
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null});
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (kill_tx, mut kill_rx) = tokio::sync::oneshot::channel::<()>();
    loop {
        tokio::select! {
            _ = &mut kill_rx => return,
            out = rx.recv() => {
                let Some(out) = out else { return };
                if socket.send(WsMessage::Text(out.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                let text = match msg {
                    WsMessage::Text(t) => t.to_string(),
                    WsMessage::Close(_) => break,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["op"].as_u64() {
                    Some(1) => {
                        let _ = tx.send(json!({"op": 11, "d": null, "s": null, "t": null}).to_string());
                    }
                    Some(2) => {
                        if v["d"]["token"].as_str().map(|t| t.trim_start_matches("Bot ")) != Some(TOKEN) {
                            let _ = socket.send(WsMessage::Close(Some(axum::extract::ws::CloseFrame {
                                code: 4004, reason: "Authentication failed.".into() }))).await;
                            return;
                        }
                        let session = format!("sess-{}", uuid::Uuid::new_v4().simple());
                        {
                            let mut s = fake.lock();
                            s.identifies += 1;
                            s.intents = v["d"]["intents"].as_u64().unwrap_or(0);
                            s.session = Some(session.clone());
                            s.log.clear();
                            s.seq = 0;
                            s.outbox = Some(tx.clone());
                            s.kill = Some(kill_tx);
                        }
                        let ready = json!({"v": 10, "user": user_json(BOT_ID, "threadsmith", true),
                            "guilds": [{"id": GUILD_ID, "unavailable": true}], "session_id": session,
                            "resume_gateway_url": format!("ws://{}/gateway", fake.addr),
                            "shard": [0, 1], "application": {"id": APP_ID, "flags": 0}});
                        fake.dispatch("READY", ready);
                        fake.lock().ready = true;
                        return run_session(fake, socket, rx, kill_rx, tx).await;
                    }
                    Some(6) => {
                        let seq = v["d"]["seq"].as_u64().unwrap_or(0);
                        let ok = fake.lock().session.as_deref() == v["d"]["session_id"].as_str();
                        if !ok {
                            let _ = tx.send(json!({"op": 9, "d": false, "s": null, "t": null}).to_string());
                            continue;
                        }
                        let missed: Vec<(u64, String, Value)> = {
                            let mut s = fake.lock();
                            s.resumes += 1;
                            s.log.iter().filter(|(n, _, _)| *n > seq).cloned().collect()
                        };
                        for (n, t, d) in missed {
                            let _ = tx.send(json!({"op": 0, "s": n, "t": t, "d": d}).to_string());
                        }
                        {
                            let mut s = fake.lock();
                            s.outbox = Some(tx.clone());
                            s.kill = Some(kill_tx);
                        }
                        fake.dispatch("RESUMED", json!({}));
                        return run_session(fake, socket, rx, kill_rx, tx).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// After Identify or Resume: forward dispatches, answer heartbeats, until the connection ends.
async fn run_session(
    fake: FakeDiscord,
    mut socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<String>,
    mut kill_rx: tokio::sync::oneshot::Receiver<()>,
    tx: mpsc::UnboundedSender<String>,
) {
    loop {
        tokio::select! {
            _ = &mut kill_rx => return,
            out = rx.recv() => {
                let Some(out) = out else { break };
                if socket.send(WsMessage::Text(out.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                if let WsMessage::Text(t) = msg
                    && let Ok(v) = serde_json::from_str::<Value>(&t)
                    && v["op"].as_u64() == Some(1)
                {
                    let _ = tx.send(json!({"op": 11, "d": null, "s": null, "t": null}).to_string());
                }
            }
        }
    }
    let mut s = fake.lock();
    if s.outbox.as_ref().is_some_and(|o| o.same_channel(&tx)) {
        s.outbox = None;
    }
}

// --- REST -------------------------------------------------------------------------------

fn multipart_parts(body: &[u8], content_type: &str) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let mut parts = Vec::new();
    let text = body;
    let mut i = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    while let Some(start) = find(text, boundary.as_bytes(), i) {
        let head_start = start + boundary.len() + 2;
        let Some(head_end) = find(text, b"\r\n\r\n", head_start) else {
            break;
        };
        let head = String::from_utf8_lossy(&text[head_start..head_end]).to_string();
        let Some(next) = find(text, boundary.as_bytes(), head_end) else {
            break;
        };
        let data = text[head_end + 4..next.saturating_sub(2)].to_vec();
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string();
        let filename = head
            .split("filename=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string);
        parts.push((name, filename, data));
        i = next;
    }
    parts
}

fn too_big(body: &Value) -> Option<Response> {
    if body["content"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 2000)
    {
        return Some(error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (content: Must be 2000 or fewer in length.)",
        ));
    }
    if let Some(rows) = body["components"].as_array()
        && (rows.len() > 5
            || rows
                .iter()
                .any(|r| r["components"].as_array().is_some_and(|c| c.len() > 5)))
    {
        return Some(error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (components)",
        ));
    }
    if body["embeds"].as_array().is_some_and(|e| e.len() > 10) {
        return Some(error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (embeds)",
        ));
    }
    None
}

async fn rest(
    State(fake): State<FakeDiscord>,
    method: Method,
    uri: Uri,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    {
        let mut s = fake.lock();
        s.calls.push((method.to_string(), uri.path().to_string()));
        s.arrivals
            .push((method.to_string(), uri.path().to_string(), Instant::now()));
    }
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(&format!("Bot {TOKEN}")) {
        return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    // A scripted rate limit, and the bucket it exhausts until its time is up.
    let limited = {
        let mut s = fake.lock();
        let now = Instant::now();
        s.exhausted.retain(|(_, _, until)| *until > now);
        let matches =
            |m: &str, prefix: &str| m == method.as_str() && uri.path().starts_with(prefix);
        let still = s
            .exhausted
            .iter()
            .find(|(m, p, _)| matches(m, p))
            .map(|(_, _, until)| (*until - now).as_secs_f64());
        let fresh = s
            .rate_limits
            .iter()
            .position(|(m, p, _)| matches(m, p))
            .map(|i| s.rate_limits.remove(i));
        match (still, fresh) {
            (Some(left), _) => Some(left),
            (None, Some((m, p, retry_after))) => {
                s.exhausted
                    .push((m, p, now + Duration::from_secs_f64(retry_after)));
                Some(retry_after)
            }
            (None, None) => None,
        }
    };
    if let Some(retry_after) = limited {
        return rate_limited(retry_after);
    }
    let content_type = headers
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut files = Vec::new();
    let json_body: Value = if content_type.starts_with("multipart/form-data") {
        let mut payload = Value::Null;
        for (name, filename, data) in multipart_parts(&body, &content_type) {
            if name == "payload_json" {
                payload = serde_json::from_slice(&data).unwrap_or(Value::Null);
            } else if let Some(f) = filename {
                files.push((f, data));
            }
        }
        payload
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let seg: Vec<&str> = path.split('/').collect();
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["gateway", "bot"]) => ok(
            json!({"url": format!("ws://{}/gateway", fake.addr), "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}}),
        ),
        ("GET", ["gateway"]) => ok(json!({"url": format!("ws://{}/gateway", fake.addr)})),
        ("GET", ["users", "@me"]) => ok(user_json(BOT_ID, "threadsmith", true)),
        ("GET", ["oauth2", "applications", "@me"]) => {
            ok(json!({"id": APP_ID, "name": "threadsmith",
            "icon": null, "description": "", "summary": "", "bot_public": true,
            "bot_require_code_grant": false, "verify_key": "0f", "flags": 0,
            "owner": user_json("1400000000000000009", "owner", false), "team": null}))
        }
        ("PUT", ["applications", _, "commands"])
        | ("PUT", ["applications", _, "guilds", _, "commands"]) => {
            let cmds: Vec<Value> = json_body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    c["id"] = json!(format!("170000000000000000{i}"));
                    c["application_id"] = json!(APP_ID);
                    c["version"] = json!("1");
                    c["default_member_permissions"] = Value::Null;
                    if c.get("description").is_none() {
                        c["description"] = json!("");
                    }
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    c
                })
                .collect();
            fake.lock().commands = json!(cmds);
            ok(json!(cmds))
        }
        ("GET", ["channels", id]) => match fake.lock().channels.get(*id).cloned() {
            Some(c) => ok(fake.channel_json(&c)),
            None => error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
        },
        ("GET", ["channels", id, "messages"]) => {
            if !fake.lock().channels.contains_key(*id) {
                return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let limit = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(50usize)
                .min(100);
            let before: Option<u64> = query.get("before").and_then(|b| b.parse().ok());
            let mut msgs: Vec<Msg> = fake
                .messages(id)
                .into_iter()
                .filter(|m| before.is_none_or(|b| m.id.parse::<u64>().unwrap_or(0) < b))
                .collect();
            msgs.reverse();
            msgs.truncate(limit);
            ok(json!(
                msgs.iter()
                    .map(|m| fake.message_json(m))
                    .collect::<Vec<_>>()
            ))
        }
        ("GET", ["channels", id, "messages", mid]) => match fake.message(id, mid) {
            Some(m) => ok(fake.message_json(&m)),
            None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
        },
        ("POST", ["channels", id, "messages"]) => {
            if !fake.lock().channels.contains_key(*id) {
                return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            if let Some(e) = too_big(&json_body) {
                return e;
            }
            let m = Msg {
                id: fake.snowflake(),
                channel_id: id.to_string(),
                author_id: BOT_ID.into(),
                content: json_body["content"].as_str().unwrap_or("").into(),
                embeds: json_body.get("embeds").cloned().unwrap_or(json!([])),
                components: json_body.get("components").cloned().unwrap_or(json!([])),
                allowed_mentions: json_body.get("allowed_mentions").cloned(),
                attachments: files,
                edits: 0,
                is_bot: true,
            };
            fake.lock().messages.push(m.clone());
            fake.gateway_message(&m, "MESSAGE_CREATE");
            ok(fake.message_json(&m))
        }
        ("PATCH", ["channels", id, "messages", mid]) => {
            if let Some(e) = too_big(&json_body) {
                return e;
            }
            let updated = {
                let mut s = fake.lock();
                let Some(m) = s
                    .messages
                    .iter_mut()
                    .find(|m| m.channel_id == *id && m.id == *mid)
                else {
                    drop(s);
                    return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
                };
                if let Some(c) = json_body["content"].as_str() {
                    m.content = c.into();
                }
                if let Some(e) = json_body.get("embeds") {
                    m.embeds = e.clone();
                }
                if let Some(c) = json_body.get("components") {
                    m.components = c.clone();
                }
                if let Some(a) = json_body.get("allowed_mentions") {
                    m.allowed_mentions = Some(a.clone());
                }
                m.edits += 1;
                m.clone()
            };
            fake.gateway_message(&updated, "MESSAGE_UPDATE");
            ok(fake.message_json(&updated))
        }
        (m @ ("PUT" | "DELETE"), ["channels", id, "messages", mid, "reactions", emoji, "@me"]) => {
            let emoji = percent_decode(emoji);
            let mut s = fake.lock();
            let list = s
                .reactions
                .entry((id.to_string(), mid.to_string()))
                .or_default();
            if m == "PUT" {
                if !list.contains(&emoji) {
                    list.push(emoji);
                }
            } else {
                list.retain(|e| *e != emoji);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["channels", id, "messages", mid, "threads"]) => {
            let name = json_body["name"].as_str().unwrap_or("thread").to_string();
            match fake.create_thread(id, mid, &name) {
                Some(c) => (StatusCode::CREATED, axum::Json(c)).into_response(),
                None => error(
                    StatusCode::BAD_REQUEST,
                    160004,
                    "A thread has already been created for this message",
                ),
            }
        }
        ("POST", ["interactions", iid, _token, "callback"]) => {
            let mut s = fake.lock();
            let Some(i) = s.interactions.get_mut(*iid) else {
                return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
            };
            if !i.responses.is_empty() {
                return error(
                    StatusCode::BAD_REQUEST,
                    40060,
                    "Interaction has already been acknowledged.",
                );
            }
            i.first_response = Some(Instant::now());
            i.responses.push(json_body);
            StatusCode::NO_CONTENT.into_response()
        }
        ("PATCH", ["webhooks", _, token, "messages", "@original"]) => {
            fake.lock().webhooks.push(WebhookMsg {
                token: token.to_string(),
                original: true,
                body: json_body.clone(),
            });
            ok(webhook_message(&fake, &json_body))
        }
        ("POST", ["webhooks", _, token]) | ("PATCH", ["webhooks", _, token, "messages", _]) => {
            fake.lock().webhooks.push(WebhookMsg {
                token: token.to_string(),
                original: false,
                body: json_body.clone(),
            });
            ok(webhook_message(&fake, &json_body))
        }
        ("GET", ["guilds", _, "members", uid]) => {
            if fake.lock().users.contains_key(*uid) {
                ok(fake.member(uid))
            } else {
                error(StatusCode::NOT_FOUND, 10007, "Unknown Member")
            }
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// A 429 as Discord documents it ("Exceeding A Rate Limit"): the JSON body with `retry_after`
/// in seconds (with decimals), `Retry-After` in whole seconds rounded up, and the bucket's
/// headers (`X-RateLimit-Reset-After` with decimals, scope `user`).
fn rate_limited(retry_after: f64) -> Response {
    let retry_after = (retry_after * 1000.0).ceil() / 1000.0;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        + retry_after;
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            ("retry-after", format!("{}", retry_after.ceil() as u64)),
            ("x-ratelimit-limit", "5".to_string()),
            ("x-ratelimit-remaining", "0".to_string()),
            ("x-ratelimit-reset", format!("{reset:.3}")),
            ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
            ("x-ratelimit-bucket", "fake-bucket".to_string()),
            ("x-ratelimit-scope", "user".to_string()),
        ],
        axum::Json(json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false})),
    )
        .into_response()
}

fn webhook_message(fake: &FakeDiscord, body: &Value) -> Value {
    let m = Msg {
        id: fake.snowflake(),
        // Where the interaction happened is not tracked per token; any channel id parses.
        channel_id: "1".into(),
        author_id: BOT_ID.into(),
        content: body["content"].as_str().unwrap_or("").into(),
        embeds: json!([]),
        components: json!([]),
        allowed_mentions: None,
        attachments: Vec::new(),
        edits: 0,
        is_bot: true,
    };
    let mut v = fake.message_json(&m);
    v["webhook_id"] = json!(APP_ID);
    v["flags"] = body.get("flags").cloned().unwrap_or(json!(0));
    v
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(Ok(b)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::Interaction;

    #[tokio::test]
    async fn payloads_parse_as_serenity_reads_them() {
        let fake = FakeDiscord::start().await;
        fake.add_channel("1300000000000000001", "bugs");
        fake.add_user("1400000000000000001", "alice", &["1500000000000000001"]);
        let m = fake.post_as_user(
            "1300000000000000001",
            "1400000000000000001",
            "hi <@1100000000000000001>",
        );
        let thread = fake.start_thread("1300000000000000001", &m, "t");
        let msg = fake.message("1300000000000000001", &m).unwrap();
        serde_json::from_value::<serenity::all::Message>(fake.message_json(&msg)).unwrap();
        let c = fake.lock().channels.get(&thread).cloned().unwrap();
        serde_json::from_value::<serenity::all::GuildChannel>(fake.channel_json(&c)).unwrap();
        for p in [
            fake.button_click(
                "1400000000000000001",
                "1300000000000000001",
                &m,
                "approve:0a:1",
            ),
            fake.modal_submit(
                "1400000000000000001",
                &thread,
                "retry:0a",
                &[("feedback", "x")],
            ),
            fake.slash_command(
                "1400000000000000001",
                "1300000000000000001",
                "fix",
                Some("help"),
            ),
            fake.message_command("1400000000000000001", "1300000000000000001", &m, "Fix this"),
        ] {
            let kind = p["type"].clone();
            if let Err(e) = serde_json::from_value::<Interaction>(p) {
                panic!("interaction type {kind}: {e}");
            }
        }
    }
}
