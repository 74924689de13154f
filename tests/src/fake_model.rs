//! A fake OpenAI-compatible Chat Completions server that replays scripted turns in the real wire
//! format and records every request it received.
//!
//! Rollouts are told apart by the `seed` they send (rollout k of a task sends seed k with the
//! default config); each seed has its own script, served in order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One answer of the fake model.
#[derive(Clone)]
pub enum Turn {
    /// A single tool call.
    Call(&'static str, Value),
    /// Several tool calls in one message.
    Calls(Vec<(&'static str, Value)>),
    /// A tool call whose `arguments` string is given raw (to send malformed JSON).
    RawCall(&'static str, String),
    /// Plain assistant text, no tool call.
    Text(String),
    /// An HTTP error status with a JSON error body.
    Status(u16),
    /// A 200 whose body is not a chat completion.
    Garbage(String),
    /// Waits until the test opens the gate, then answers with the inner turn.
    Gated(Arc<Notify>, Box<Turn>),
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Received {
    pub seed: Option<u64>,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    scripts: HashMap<u64, Vec<Turn>>,
    cursors: HashMap<u64, usize>,
    received: Vec<Received>,
    latency: Duration,
}

#[derive(Clone)]
pub struct FakeModel {
    inner: Arc<Mutex<Inner>>,
    arrivals: tokio::sync::watch::Sender<usize>,
    pub addr: SocketAddr,
}

type AppState = (Arc<Mutex<Inner>>, tokio::sync::watch::Sender<usize>);

impl FakeModel {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let (arrivals, _) = tokio::sync::watch::channel(0usize);
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state((inner.clone(), arrivals.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake model");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            inner,
            arrivals,
            addr,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Rollouts `seeds` each wait at their first model call until the returned gate opens
    /// (`notify_waiters`), then give up: tasks that stay mid-run while a test acts.
    pub fn hold_rollouts(&self, seeds: std::ops::RangeInclusive<u64>) -> Arc<Notify> {
        let gate = Arc::new(Notify::new());
        for seed in seeds {
            self.script(
                seed,
                vec![Turn::Gated(
                    gate.clone(),
                    Box::new(Turn::Call("give_up", json!({"reason": "held by the test"}))),
                )],
            );
        }
        gate
    }

    /// The script of the rollout that sends `seed`.
    pub fn script(&self, seed: u64, turns: Vec<Turn>) {
        self.inner.lock().unwrap().scripts.insert(seed, turns);
    }

    /// A fixed delay before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.inner.lock().unwrap().latency = latency;
    }

    /// Waits until `n` requests have arrived in all.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.arrivals.subscribe();
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    /// Every script starts over; what was received is forgotten.
    pub fn reset(&self) {
        let mut g = self.inner.lock().unwrap();
        g.cursors.clear();
        g.received.clear();
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Requests of one rollout, in order.
    pub fn received_by(&self, seed: u64) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.seed == Some(seed))
            .collect()
    }
}

fn tool_call(n: usize, name: &str, arguments: String) -> Value {
    json!({"id": format!("call_{n}_{name}"), "type": "function", "function": {"name": name, "arguments": arguments}})
}

fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-threadsmith-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}

async fn models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "threadsmith-tests"}]}),
    )
}

async fn chat(
    State((inner, arrivals)): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let seed = body["seed"].as_u64();
    let (turn, n, latency) = {
        let mut g = inner.lock().unwrap();
        g.received.push(Received {
            seed,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            body: body.clone(),
        });
        let key = seed.unwrap_or(0);
        let n = *g.cursors.get(&key).unwrap_or(&0);
        g.cursors.insert(key, n + 1);
        let turn = g.scripts.get(&key).and_then(|s| s.get(n)).cloned();
        (turn, n, g.latency)
    };
    arrivals.send_modify(|count| *count += 1);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut turn = turn.unwrap_or_else(|| {
        Turn::Call(
            "give_up",
            json!({"reason": "the fake model's script is exhausted"}),
        )
    });
    while let Turn::Gated(gate, inner_turn) = turn {
        gate.notified().await;
        turn = *inner_turn;
    }
    match turn {
        Turn::Call(name, args) => Json(completion(
            json!({"role": "assistant", "content": null, "tool_calls": [tool_call(n, name, args.to_string())]}),
            "tool_calls",
        ))
        .into_response(),
        Turn::Calls(calls) => Json(completion(
            json!({"role": "assistant", "content": null, "tool_calls": calls.into_iter().map(|(name, args)| tool_call(n, name, args.to_string())).collect::<Vec<_>>()}),
            "tool_calls",
        ))
        .into_response(),
        Turn::RawCall(name, raw) => Json(completion(
            json!({"role": "assistant", "content": null, "tool_calls": [tool_call(n, name, raw)]}),
            "tool_calls",
        ))
        .into_response(),
        Turn::Text(text) => Json(completion(
            json!({"role": "assistant", "content": text}),
            "stop",
        ))
        .into_response(),
        Turn::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({"error": {"message": "scripted failure", "type": "server_error", "code": null}})),
        )
            .into_response(),
        Turn::Garbage(text) => (StatusCode::OK, text).into_response(),
        Turn::Gated(..) => unreachable!("gates are opened above"),
    }
}
