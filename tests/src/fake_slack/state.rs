//! What the fake knows: channels and threads, ephemerals, views, files, the calls it
//! received, and the Socket Mode connection with its queue and acks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{BOT_NAME, Call, Ephemeral, FakeSlackConfig, File, Message, ResponseUrlPost};

#[derive(Debug, Clone)]
pub(super) struct Ack {
    pub(super) frame: Value,
    pub(super) at: Instant,
}

#[derive(Debug, Clone)]
pub(super) enum Failure {
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    Error(String),
}

#[derive(Debug, Clone)]
pub(super) struct StoredView {
    pub(super) id: String,
    pub(super) hash: String,
    /// "views.open" or "views.push".
    pub(super) origin: &'static str,
    /// The `view` the bot sent with `views.open`/`views.push`.
    pub(super) opened: Value,
    /// The view as the fake returns it (with id, hash, state...).
    pub(super) current: Value,
}

#[derive(Debug, Clone)]
pub(super) struct Upload {
    pub(super) filename: String,
    pub(super) bytes: Option<Vec<u8>>,
}

/// A frame for the Socket Mode client.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub(super) text: String,
    pub(super) envelope_id: Option<String>,
}

pub(super) enum Outgoing {
    Frame(Frame),
    /// `disconnect` with this reason, then close after a grace period.
    Disconnect(String, oneshot::Sender<()>),
    /// Close at once, without `disconnect` (a connection lost).
    Close,
}

pub(super) struct Target {
    pub(super) id: usize,
    pub(super) tx: mpsc::UnboundedSender<Outgoing>,
}

/// Everything the fake knows. Read it through [`FakeSlack::read`](super::FakeSlack::read) or in a
/// [`FakeSlack::wait_until`](super::FakeSlack::wait_until) predicate.
pub struct SlackState {
    pub(super) users: Vec<(String, String)>,
    pub(super) groups: HashMap<String, Vec<String>>,
    pub(super) bot_user_id: String,
    pub(super) channels: HashMap<String, Vec<Message>>,
    pub(super) ephemerals: Vec<Ephemeral>,
    pub(super) views: Vec<StoredView>,
    pub(super) calls: Vec<Call>,
    pub(super) uploads: HashMap<String, Upload>,
    pub(super) files: Vec<File>,
    pub(super) responses: Vec<ResponseUrlPost>,
    pub(super) failures: HashMap<String, VecDeque<Failure>>,
    pub(super) limits: super::limits::RateLimits,
    pub(super) triggers: HashSet<String>,
    pub(super) tickets: HashSet<String>,
    pub(super) ts_seq: u64,
    pub(super) id_seq: u64,
    // Socket Mode
    pub(super) connections: usize,
    pub(super) live: usize,
    /// The open connections, oldest first; each frame goes to one of them, chosen at random.
    pub(super) targets: Vec<Target>,
    pub(super) pending: VecDeque<Frame>,
    /// Envelopes written to a connection and not acknowledged yet, by envelope id: the
    /// connection's id and the frame.
    pub(super) in_flight: HashMap<String, (usize, Frame)>,
    pub(super) envelopes: Vec<String>,
    pub(super) sent: HashMap<String, Instant>,
    pub(super) acks: HashMap<String, Ack>,
    pub(super) client_frames: Vec<String>,
    /// Client frames that named an envelope but were not a valid ack of it, and why.
    pub(super) rejected_acks: Vec<(String, String)>,
}

impl SlackState {
    pub(super) fn new(cfg: &FakeSlackConfig) -> Self {
        Self {
            users: cfg.users.clone(),
            groups: HashMap::new(),
            bot_user_id: cfg.bot_user_id.clone(),
            channels: HashMap::new(),
            ephemerals: Vec::new(),
            views: Vec::new(),
            calls: Vec::new(),
            uploads: HashMap::new(),
            files: Vec::new(),
            responses: Vec::new(),
            failures: HashMap::new(),
            limits: super::limits::RateLimits::new(cfg.tier_limits),
            triggers: HashSet::new(),
            tickets: HashSet::new(),
            ts_seq: 0,
            id_seq: 0,
            connections: 0,
            live: 0,
            targets: Vec::new(),
            pending: VecDeque::new(),
            in_flight: HashMap::new(),
            envelopes: Vec::new(),
            sent: HashMap::new(),
            acks: HashMap::new(),
            client_frames: Vec::new(),
            rejected_acks: Vec::new(),
        }
    }

    /// Every message of a channel (top-level and replies), oldest first.
    pub fn messages(&self, channel: &str) -> Vec<Message> {
        self.channels.get(channel).cloned().unwrap_or_default()
    }

    /// A thread's parent (if it exists) and its replies, oldest first.
    pub fn thread(&self, channel: &str, thread_ts: &str) -> Vec<Message> {
        self.thread_refs(channel, thread_ts)
            .into_iter()
            .cloned()
            .collect()
    }

    /// One message.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Message> {
        self.find(channel, ts).cloned()
    }

    /// The names of the bot's reactions on a message.
    pub fn reactions(&self, channel: &str, ts: &str) -> Vec<String> {
        self.find(channel, ts)
            .map(|m| m.reactions.clone())
            .unwrap_or_default()
    }

    /// Calls answered HTTP 429 for being over Slack's rate limits, as `(method, channel)`.
    pub fn rate_limited(&self) -> &[(String, Option<String>)] {
        &self.limits.refused
    }

    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.ephemerals.clone()
    }

    /// The `view` of each `views.open`, as the bot sent it.
    pub fn views_opened(&self) -> Vec<Value> {
        self.views
            .iter()
            .filter(|v| v.origin == "views.open")
            .map(|v| v.opened.clone())
            .collect()
    }

    /// Every Web API call, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Files shared with `files.completeUploadExternal`, in order.
    pub fn files(&self) -> Vec<File> {
        self.files.clone()
    }

    /// POSTs to `response_url`s, in order.
    pub fn responses(&self) -> Vec<ResponseUrlPost> {
        self.responses.clone()
    }

    /// How many WebSocket connections were opened in all.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// How many WebSocket connections are open now.
    pub fn live_connections(&self) -> usize {
        self.live
    }

    /// Whether a Socket Mode client is connected now.
    pub fn connected(&self) -> bool {
        !self.targets.is_empty()
    }

    /// How many Socket Mode connections are open now.
    pub fn open_connections(&self) -> usize {
        self.targets.len()
    }

    /// The client's ack frame for an envelope.
    pub fn ack(&self, envelope_id: &str) -> Option<Value> {
        self.acks.get(envelope_id).map(|a| a.frame.clone())
    }

    pub fn acked_at(&self, envelope_id: &str) -> Option<Instant> {
        self.acks.get(envelope_id).map(|a| a.at)
    }

    /// When the envelope was written to the client's socket.
    pub fn sent_at(&self, envelope_id: &str) -> Option<Instant> {
        self.sent.get(envelope_id).copied()
    }

    /// Envelopes sent with `send_envelope` that the client has not acked (yet).
    pub fn unacked(&self) -> Vec<String> {
        self.envelopes
            .iter()
            .filter(|id| !self.acks.contains_key(*id))
            .cloned()
            .collect()
    }

    /// Frames the client meant as acks that Slack would not take (the frame, and why): the
    /// envelope stays unacknowledged.
    pub fn rejected_acks(&self) -> Vec<(String, String)> {
        self.rejected_acks.clone()
    }

    /// Every text frame the client sent, in order.
    pub fn client_frames(&self) -> Vec<String> {
        self.client_frames.clone()
    }

    pub(super) fn thread_refs(&self, channel: &str, thread_ts: &str) -> Vec<&Message> {
        self.channels
            .get(channel)
            .map(|list| {
                list.iter()
                    .filter(|m| m.ts == thread_ts || m.thread_ts.as_deref() == Some(thread_ts))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn find(&self, channel: &str, ts: &str) -> Option<&Message> {
        self.channels.get(channel)?.iter().find(|m| m.ts == ts)
    }

    pub(super) fn find_mut(&mut self, channel: &str, ts: &str) -> Option<&mut Message> {
        self.channels
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m.ts == ts)
    }

    /// The bot is in `channel` (nothing in it yet).
    pub(super) fn join(&mut self, channel: &str) {
        self.channels.entry(channel.to_string()).or_default();
    }

    /// Whether the bot is in `channel`.
    pub(super) fn in_channel(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    pub(super) fn insert(&mut self, message: Message) {
        let list = self.channels.entry(message.channel.clone()).or_default();
        let key = ts_key(&message.ts);
        let at = list.partition_point(|m| ts_key(&m.ts) <= key);
        list.insert(at, message);
    }

    pub(super) fn user_name(&self, id: &str) -> String {
        if id == self.bot_user_id {
            return BOT_NAME.into();
        }
        self.users
            .iter()
            .find(|(uid, _)| uid == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| id.to_lowercase())
    }

    pub(super) fn next_ts(&mut self) -> String {
        self.ts_seq += 1;
        let micros = 1_700_000_100_000_000 + self.ts_seq * 100;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }

    pub(super) fn next_id(&mut self) -> u64 {
        self.id_seq += 1;
        self.id_seq
    }

    /// Hands a frame to one of the open connections, chosen at random as Slack does ("each
    /// event to only one random connection"), or queues it for the next connection.
    pub(super) fn deliver(&mut self, mut frame: Frame) {
        while !self.targets.is_empty() {
            let i = rand::random_range(0..self.targets.len());
            match self.targets[i].tx.send(Outgoing::Frame(frame)) {
                Ok(()) => return,
                // That connection is ending: forget it and choose again.
                Err(mpsc::error::SendError(out)) => {
                    self.targets.remove(i);
                    match out {
                        Outgoing::Frame(f) => frame = f,
                        Outgoing::Disconnect(..) | Outgoing::Close => return,
                    }
                }
            }
        }
        self.pending.push_back(frame);
    }

    /// A connection ended: Events API envelopes written to it and never acknowledged are
    /// delivered again to the open connections, as Slack retries them (`retry_attempt` one
    /// more, `retry_reason: "timeout"`). Interactions and slash commands are not retried: the
    /// user sees an error in Slack.
    pub(super) fn redeliver_unacked(&mut self, connection: usize) {
        let mut ids: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, (on, _))| *on == connection)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        for id in ids {
            let Some((_, frame)) = self.in_flight.remove(&id) else {
                continue;
            };
            let Ok(mut envelope) = serde_json::from_str::<Value>(&frame.text) else {
                continue;
            };
            if envelope["type"] != "events_api" {
                continue;
            }
            let attempt = envelope["retry_attempt"].as_u64().unwrap_or(0) + 1;
            envelope["retry_attempt"] = attempt.into();
            envelope["retry_reason"] = "timeout".into();
            self.deliver(Frame {
                text: envelope.to_string(),
                envelope_id: frame.envelope_id,
            });
        }
    }

    /// A short account of the state, for timeout messages.
    pub(super) fn summary(&self) -> String {
        let mut out = String::new();
        let calls: Vec<_> = self.calls.iter().map(|c| c.method.as_str()).collect();
        out.push_str(&format!("calls: {calls:?}\n"));
        let mut channels: Vec<_> = self.channels.iter().collect();
        channels.sort_by_key(|(c, _)| c.as_str());
        for (channel, list) in channels {
            for m in list {
                let text: String = m.text.chars().take(120).collect();
                out.push_str(&format!(
                    "{channel} {} thread={:?} {} {text:?}\n",
                    m.ts, m.thread_ts, m.user
                ));
            }
        }
        out.push_str(&format!(
            "socket: {} connection(s), connected={}, unacked={:?}",
            self.connections,
            self.connected(),
            self.unacked()
        ));
        out
    }
}

/// Orders Slack timestamps numerically.
pub(super) fn ts_key(ts: &str) -> (u64, u64) {
    let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    (secs.parse().unwrap_or(0), micros.parse().unwrap_or(0))
}
