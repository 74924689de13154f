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

mod judge;
mod request;
pub use request::MODEL;

/// One answer of the fake model.
#[derive(Clone)]
pub enum Turn {
    /// A single tool call.
    Call(&'static str, Value),
    /// Several tool calls in one message.
    Calls(Vec<(&'static str, Value)>),
    /// A tool call whose `arguments` string is given raw (to send malformed JSON).
    RawCall(&'static str, String),
    /// Plain assistant text, no tool call (e.g. the JSON a tool call should have carried).
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
    /// Refuse a named `tool_choice` (HTTP 400), as some OpenAI-compatible servers do.
    no_named_tool_choice: bool,
    /// The API key every request must carry (`Authorization: Bearer …`), when set.
    key: Option<String>,
    /// The judge's verdicts (`{"rollout", "verdict", "reason"}`), when scripted: a request
    /// offering `judge_rollouts` gets them, whatever its seed (see [`FakeModel::judge`]).
    verdicts: Option<Vec<Value>>,
    /// Answer without `usage`, as some OpenAI-compatible servers do.
    no_usage: bool,
    /// Report these prompt and completion tokens for every answer instead of counting.
    fixed_usage: Option<(u64, u64)>,
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake model");
        Self::start_on(listener)
    }

    /// The server on a listener of the caller's choosing (the standalone binary's `--port`).
    pub fn start_on(listener: tokio::net::TcpListener) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let (arrivals, _) = tokio::sync::watch::channel(0usize);
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state((inner.clone(), arrivals.clone()));
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

    /// Scripts the ranking's judge: a request whose `tools` offer `judge_rollouts` is answered
    /// with a forced call of it carrying these verdicts — those of the rollouts the request
    /// names ("rollout 2"), or all when it names none — and does not advance any seed's script.
    pub fn judge(&self, verdicts: Vec<Value>) {
        self.inner.lock().unwrap().verdicts = Some(verdicts);
    }

    /// The judge's requests received so far.
    pub fn judge_requests(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| judge::is_judge_request(&r.body))
            .collect()
    }

    /// From now on, refuse `tool_choice: {"type": "function", …}` with HTTP 400, as an
    /// OpenAI-compatible server without named tool choice does ("required" and "auto" work).
    pub fn refuse_named_tool_choice(&self) {
        self.inner.lock().unwrap().no_named_tool_choice = true;
    }

    /// From now on, a request without `Authorization: Bearer <key>` is refused with OpenAI's
    /// 401 (`invalid_api_key`), and not recorded.
    /// Answers from now on carry no `usage` object when `omit` (some OpenAI-compatible servers
    /// omit it), or carry it again.
    pub fn omit_usage(&self, omit: bool) {
        self.inner.lock().unwrap().no_usage = omit;
    }

    /// Every answer from now on reports `prompt` and `completion` tokens (a test's round numbers).
    pub fn fixed_usage(&self, prompt: u64, completion: u64) {
        self.inner.lock().unwrap().fixed_usage = Some((prompt, completion));
    }

    pub fn require_key(&self, key: &str) {
        self.inner.lock().unwrap().key = Some(key.to_string());
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

/// The answer's `usage`, as OpenAI reports it: tokens counted the fake's way — a token per 4
/// bytes of the request's messages and tools (so a longer conversation costs more, as it does),
/// and of the answer's message — with the detail objects OpenAI adds.
fn usage(request: &Value, message: &Value, fixed: Option<(u64, u64)>) -> Value {
    let tokens = |v: &Value| (v.to_string().len() as u64).div_ceil(4);
    let (prompt, completion) = fixed.unwrap_or_else(|| {
        (
            tokens(&request["messages"]) + tokens(&request["tools"]),
            tokens(message),
        )
    });
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

fn completion(message: Value, finish_reason: &str, usage: Option<Value>) -> Value {
    let mut body = json!({
        "id": "chatcmpl-threadsmith-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
    });
    if let Some(u) = usage {
        body["usage"] = u;
    }
    body
}

async fn models(State((inner, _)): State<AppState>, headers: HeaderMap) -> Response {
    let key = inner.lock().unwrap().key.clone();
    if let Err(refusal) = check_key(key.as_deref(), &headers) {
        return *refusal;
    }
    Json(
        json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "threadsmith-tests"}]}),
    )
    .into_response()
}

/// OpenAI's 401s: no key at all, or a key it does not know (`invalid_api_key`).
fn check_key(key: Option<&str>, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(key) = key else { return Ok(()) };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let (message, code) = match given {
        Some(k) if k == key => return Ok(()),
        None => (
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_string(),
            Value::Null,
        ),
        Some(_) => (
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.".to_string(),
            json!("invalid_api_key"),
        ),
    };
    Err(Box::new(
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})),
        )
            .into_response(),
    ))
}

/// The error body OpenAI sends with a status: its `type` and `code` by status.
fn status_error(status: StatusCode) -> Value {
    let (message, kind, code) = match status.as_u16() {
        400 => ("scripted bad request", "invalid_request_error", Value::Null),
        401 => (
            "Incorrect API key provided.",
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        404 => (
            "The model `fake-model` does not exist or you do not have access to it.",
            "invalid_request_error",
            json!("model_not_found"),
        ),
        429 => (
            "Rate limit reached for fake-model (scripted).",
            "requests",
            json!("rate_limit_exceeded"),
        ),
        _ => (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            Value::Null,
        ),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// OpenAI's answer to a request it refuses before the model sees it.
fn refused(r: request::Refusal) -> Response {
    (
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"error": {
            "message": r.message,
            "type": "invalid_request_error",
            "param": r.param,
            "code": r.code
        }})),
    )
        .into_response()
}

/// What OpenAI answers for a `tool_choice` it does not accept: HTTP 400 with an
/// `invalid_request_error` naming the parameter.
fn invalid_tool_choice(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {
            "message": message,
            "type": "invalid_request_error",
            "param": "tool_choice",
            "code": null
        }})),
    )
        .into_response()
}

/// Checks `tool_choice` as the Chat Completions API does: `none`, `auto`, `required`, or
/// `{"type": "function", "function": {"name": …}}` naming one of the `tools`. The error is
/// the message of the 400.
fn check_tool_choice(body: &Value, named_ok: bool) -> Result<(), String> {
    let Some(choice) = body.get("tool_choice") else {
        return Ok(());
    };
    let tools = body["tools"].as_array().filter(|t| !t.is_empty());
    if tools.is_none() && !choice.is_null() {
        return Err("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.".into());
    }
    match choice {
        Value::String(s) if ["none", "auto", "required"].contains(&s.as_str()) => Ok(()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            if !named_ok {
                return Err("This server does not support a named tool_choice.".into());
            }
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or("Missing required parameter: 'tool_choice.function.name'.")?;
            let known = tools
                .into_iter()
                .flatten()
                .any(|t| t["function"]["name"] == name);
            if known {
                Ok(())
            } else {
                Err(format!(
                    "Invalid value for 'tool_choice': no function named '{name}' was specified in the 'tools' parameter."
                ))
            }
        }
        _ => Err(
            "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or a named tool."
                .into(),
        ),
    }
}

async fn chat(
    State((inner, arrivals)): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let seed = body["seed"].as_u64();
    let (turn, n, latency, no_usage, fixed) = {
        let mut g = inner.lock().unwrap();
        if let Err(refusal) = check_key(g.key.as_deref(), &headers) {
            return *refusal;
        }
        g.received.push(Received {
            seed,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            body: body.clone(),
        });
        // Refused before the model sees it: the script does not advance.
        if let Err(r) = request::check(&body) {
            drop(g);
            arrivals.send_modify(|count| *count += 1);
            return refused(r);
        }
        if let Err(refusal) = check_tool_choice(&body, !g.no_named_tool_choice) {
            drop(g);
            arrivals.send_modify(|count| *count += 1);
            return invalid_tool_choice(&refusal);
        }
        let key = seed.unwrap_or(0);
        let n = *g.cursors.get(&key).unwrap_or(&0);
        let turn = match &g.verdicts {
            Some(verdicts) if judge::is_judge_request(&body) => {
                Some(Turn::Call(judge::TOOL, judge::answer(&body, verdicts)))
            }
            _ => {
                g.cursors.insert(key, n + 1);
                g.scripts.get(&key).and_then(|s| s.get(n)).cloned()
            }
        };
        (turn, n, g.latency, g.no_usage, g.fixed_usage)
    };
    let answer = |message: Value, finish: &str| {
        let used = (!no_usage).then(|| usage(&body, &message, fixed));
        Json(completion(message, finish, used)).into_response()
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
        Turn::Call(name, args) => answer(
            json!({"role": "assistant", "content": null, "tool_calls": [tool_call(n, name, args.to_string())]}),
            "tool_calls",
        ),
        Turn::Calls(calls) => answer(
            json!({"role": "assistant", "content": null, "tool_calls": calls.into_iter().map(|(name, args)| tool_call(n, name, args.to_string())).collect::<Vec<_>>()}),
            "tool_calls",
        ),
        Turn::RawCall(name, raw) => answer(
            json!({"role": "assistant", "content": null, "tool_calls": [tool_call(n, name, raw)]}),
            "tool_calls",
        ),
        Turn::Text(text) => answer(json!({"role": "assistant", "content": text}), "stop"),
        Turn::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(status_error(status))).into_response()
        }
        Turn::Garbage(text) => (StatusCode::OK, text).into_response(),
        Turn::Gated(..) => unreachable!("gates are opened above"),
    }
}
