//! A stateful fake of Slack at the wire level, for end-to-end tests of the Slack adapter.
//!
//! - The Web API (`api_base()`, `POST|GET {base}/<method>`) keeps channels, threads, reactions,
//!   ephemerals, views and files, answers in Slack's real shapes, and records every call.
//! - Socket Mode: `apps.connections.open` hands out a `ws://` URL of the fake's own WebSocket
//!   endpoint; the fake says `hello`, forwards the envelopes a test sends, and records the acks.
//! - Payload builders (`app_mention`, `block_actions`, ...) produce what Slack would send,
//!   filled from the fake's state (the clicked message, the opened view).
//!
//! Every timestamp the fake assigns comes from one counter: `1700000100.000100`,
//! `1700000100.000200`, ... so they are unique, increasing and the same from run to run.
//! A thread is keyed by its channel and the `ts` of its parent message; a reply's `thread_ts`
//! is the parent's `ts` (the parent itself has `thread_ts: None` in [`Message`]).

mod limits;
mod payloads;
mod socket;
mod socket_control;
mod state;
mod steps;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_socket;
#[cfg(test)]
mod tests_strict;
mod web;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

pub use state::SlackState;
use state::{Failure, Frame, Outgoing};

/// How long the `wait_*` helpers and [`FakeSlack::ack`] wait before panicking.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Who the bot is and who else is in the workspace.
#[derive(Debug, Clone)]
pub struct FakeSlackConfig {
    pub bot_user_id: String,
    pub bot_id: String,
    pub team_id: String,
    pub app_id: String,
    pub bot_token: String,
    pub app_token: String,
    /// Human users as `(id, name)`; `users.info` knows these and the bot user.
    pub users: Vec<(String, String)>,
    /// Whether the method tiers (per method per workspace, per minute) are enforced, as Slack
    /// does (the default). A test of something else that makes hundreds of calls a minute
    /// (a throughput test) may turn them off; `chat.postMessage`'s per-channel limit stays.
    pub tier_limits: bool,
}

impl Default for FakeSlackConfig {
    fn default() -> Self {
        Self {
            bot_user_id: "UBOT".into(),
            bot_id: "BBOT".into(),
            team_id: "T111".into(),
            app_id: "A111".into(),
            bot_token: "xoxb-test".into(),
            app_token: "xapp-test".into(),
            users: vec![
                ("U222".into(), "alice".into()),
                ("U333".into(), "bob".into()),
            ],
            tier_limits: true,
        }
    }
}

/// The bot user's name, as `auth.test` and `users.info` report it.
pub const BOT_NAME: &str = "threadsmith";

/// A message in a channel, posted by a human (seeded) or by the bot (through the Web API).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    /// The parent's `ts` for a reply; `None` for a top-level message.
    pub thread_ts: Option<String>,
    pub user: String,
    /// `Some` for the bot's messages.
    pub bot_id: Option<String>,
    pub text: String,
    pub blocks: Option<Value>,
    /// How many times `chat.update` changed it.
    pub edits: u32,
    pub files: Vec<File>,
    /// Reactions the bot currently has on it.
    pub reactions: Vec<String>,
}

impl Message {
    pub fn is_bot(&self) -> bool {
        self.bot_id.is_some()
    }

    pub fn is_reply(&self) -> bool {
        self.thread_ts.as_deref().is_some_and(|t| t != self.ts)
    }
}

/// A file shared with `files.completeUploadExternal`.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub id: String,
    pub filename: String,
    pub title: Option<String>,
    pub bytes: Vec<u8>,
    pub channel: Option<String>,
    pub thread_ts: Option<String>,
}

/// A `chat.postEphemeral`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub text: String,
    pub blocks: Option<Value>,
    pub thread_ts: Option<String>,
    /// The `message_ts` the fake answered with.
    pub ts: String,
}

/// A Web API call as it arrived; query parameters and the body (JSON or form) are merged
/// into one JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub body: Value,
    /// The bearer token (or the `token` parameter).
    pub token: Option<String>,
}

/// A POST to a `response_url` handed out in an interactive or slash command payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseUrlPost {
    /// The last path segment of the URL.
    pub id: String,
    pub body: Value,
}

struct Shared {
    cfg: FakeSlackConfig,
    api_addr: SocketAddr,
    ws_addr: SocketAddr,
    state: Mutex<SlackState>,
    changed: watch::Sender<u64>,
}

impl Shared {
    /// Changes the state and wakes every waiter (after the lock is released).
    fn mutate<R>(&self, f: impl FnOnce(&mut SlackState) -> R) -> R {
        let out = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut state)
        };
        self.changed.send_modify(|n| *n += 1);
        out
    }

    fn read<R>(&self, f: impl FnOnce(&SlackState) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The fake Slack; clones share one server.
#[derive(Clone)]
pub struct FakeSlack {
    shared: Arc<Shared>,
}

impl FakeSlack {
    /// Starts the Web API and the Socket Mode endpoint on free loopback ports.
    pub async fn start(cfg: FakeSlackConfig) -> Self {
        let api = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Slack API");
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Slack WebSocket");
        Self::start_on(api, ws, cfg)
    }

    /// The Web API and the Socket Mode endpoint on listeners of the caller's choosing (the
    /// standalone binary's `--port`).
    pub fn start_on(
        api: tokio::net::TcpListener,
        ws: tokio::net::TcpListener,
        cfg: FakeSlackConfig,
    ) -> Self {
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            api_addr: api.local_addr().expect("local addr"),
            ws_addr: ws.local_addr().expect("local addr"),
            state: Mutex::new(SlackState::new(&cfg)),
            cfg,
            changed,
        });
        let app = web::router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(api, app).await;
        });
        tokio::spawn(socket::serve(ws, shared.clone()));
        Self { shared }
    }

    /// The Web API base URL, without a trailing slash: `http://127.0.0.1:PORT/api`.
    pub fn api_base(&self) -> String {
        format!("http://{}/api", self.shared.api_addr)
    }

    pub fn config(&self) -> &FakeSlackConfig {
        &self.shared.cfg
    }

    /// Reads the state under its lock.
    pub fn read<R>(&self, f: impl FnOnce(&SlackState) -> R) -> R {
        self.shared.read(f)
    }

    /// A human's message (no event is sent). Returns its `ts`.
    pub fn post_as_user(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        self.shared.mutate(|s| {
            let ts = s.next_ts();
            s.insert(Message {
                channel: channel.into(),
                ts: ts.clone(),
                thread_ts: thread_ts.map(String::from),
                user: user.into(),
                bot_id: None,
                text: text.into(),
                blocks: None,
                edits: 0,
                files: Vec::new(),
                reactions: Vec::new(),
            });
            ts
        })
    }

    /// A channel the bot is in (a payload built for a channel, or a human's message there,
    /// puts the bot in it too): only there can it post.
    pub fn join(&self, channel: &str) {
        self.shared.mutate(|s| s.join(channel));
    }

    /// A user group (`S…`) and its members, for `usergroups.users.list`.
    pub fn add_group(&self, id: &str, members: &[&str]) {
        self.shared.mutate(|s| {
            s.groups.insert(
                id.to_string(),
                members.iter().map(|m| m.to_string()).collect(),
            );
        });
    }

    /// Adds a user that `users.info` knows.
    pub fn add_user(&self, id: &str, name: &str) {
        self.shared
            .mutate(|s| s.users.push((id.into(), name.into())));
    }

    pub fn messages(&self, channel: &str) -> Vec<Message> {
        self.read(|s| s.messages(channel))
    }

    pub fn thread(&self, channel: &str, thread_ts: &str) -> Vec<Message> {
        self.read(|s| s.thread(channel, thread_ts))
    }

    pub fn message(&self, channel: &str, ts: &str) -> Option<Message> {
        self.read(|s| s.message(channel, ts))
    }

    pub fn reactions(&self, channel: &str, ts: &str) -> Vec<String> {
        self.read(|s| s.reactions(channel, ts))
    }

    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.read(SlackState::ephemerals)
    }

    pub fn views_opened(&self) -> Vec<Value> {
        self.read(SlackState::views_opened)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.read(SlackState::calls)
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.read(|s| s.calls_to(method))
    }

    pub fn files(&self) -> Vec<File> {
        self.read(SlackState::files)
    }

    pub fn responses(&self) -> Vec<ResponseUrlPost> {
        self.read(SlackState::responses)
    }

    /// Waits until `pred` holds; it is checked now and after every change of the state.
    /// Panics after [`WAIT_LIMIT`], naming `what` and summing up the state.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&SlackState) -> bool) {
        self.wait_for(what, |s| pred(s).then_some(())).await
    }

    /// Like [`wait_until`](Self::wait_until), returning what `f` found.
    pub async fn wait_for<T>(&self, what: &str, f: impl Fn(&SlackState) -> Option<T>) -> T {
        let mut changes = self.shared.changed.subscribe();
        let found = tokio::time::timeout(WAIT_LIMIT, async {
            loop {
                if let Some(found) = self.shared.read(&f) {
                    return found;
                }
                changes
                    .changed()
                    .await
                    .expect("the fake Slack holds the sender");
            }
        })
        .await;
        match found {
            Ok(found) => found,
            Err(_) => panic!(
                "timed out after {WAIT_LIMIT:?} waiting for {what}\n{}",
                self.read(SlackState::summary)
            ),
        }
    }

    /// Calls the fake answered HTTP 429 for being over Slack's rate limits, as
    /// `(method, channel)`.
    pub fn rate_limited(&self) -> Vec<(String, Option<String>)> {
        self.read(|s| s.rate_limited().to_vec())
    }

    /// The next call of `method` fails with this HTTP status (and `Retry-After` header).
    pub fn fail_next(&self, method: &str, status: u16, retry_after_secs: Option<u64>) {
        self.push_failure(
            method,
            Failure::Status {
                status,
                retry_after: retry_after_secs,
            },
        );
    }

    /// The next call of `method` answers `{"ok":false,"error":error}` with status 200.
    pub fn fail_next_error(&self, method: &str, error: &str) {
        self.push_failure(method, Failure::Error(error.into()));
    }

    fn push_failure(&self, method: &str, failure: Failure) {
        self.shared.mutate(|s| {
            s.failures
                .entry(method.into())
                .or_default()
                .push_back(failure)
        });
    }

    // ---- Socket Mode ----
}

/// Slack's request signature for HTTP mode: `v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The two headers of a signed HTTP-mode request, signed now:
/// `x-slack-request-timestamp` and `x-slack-signature`.
pub fn signed_headers(secret: &str, body: &str) -> [(&'static str, String); 2] {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64;
    [
        ("x-slack-request-timestamp", now.to_string()),
        ("x-slack-signature", sign(secret, now, body)),
    ]
}
