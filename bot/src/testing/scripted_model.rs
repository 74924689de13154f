//! An OpenAI-compatible model endpoint in the test process, on loopback: it answers the chat
//! core's forced calls (`write_spec`, `write_plan`) with fixed arguments, the judge
//! (`judge_rollouts`) with the replies queued by the test, and keeps every request it was sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The title the scripted spec gives a thread.
pub const SPEC_TITLE: &str = "Login page rejects valid passwords";
/// The plan it proposes.
pub const PLAN: &str = "1. Read `login.rs`.\n2. Fix the password check.";

type Requests = Arc<Mutex<Vec<Value>>>;

/// How the scripted model answers the judge's next request.
#[derive(Debug, Clone)]
pub enum JudgeReply {
    /// A `judge_rollouts` call with these arguments.
    Call(Value),
    /// A message with this content and no call (a refusal, prose).
    Content(String),
    /// An HTTP error with this status and an OpenAI-style error body.
    Status(u16),
    /// No answer at all (until the client gives up).
    Hang,
}

#[derive(Clone, Default)]
struct Shared {
    requests: Requests,
    judge: Arc<Mutex<VecDeque<JudgeReply>>>,
}

/// See the module's documentation. The server stops when this is dropped.
pub struct ScriptedModel {
    base_url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn forced_tool(request: &Value) -> String {
    request["tools"][0]["function"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A reply with `message` as the assistant's message.
fn completion(message: Value) -> Json<Value> {
    let finish = if message["tool_calls"].is_array() {
        "tool_calls"
    } else {
        "stop"
    };
    Json(json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
}

fn call(tool: &str, arguments: &Value) -> Value {
    json!({"role": "assistant", "content": null, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": tool, "arguments": arguments.to_string()}
    }]})
}

async fn completions(State(shared): State<Shared>, Json(request): Json<Value>) -> Response {
    let tool = forced_tool(&request);
    lock(&shared.requests).push(request);
    let queued = if tool == "judge_rollouts" {
        lock(&shared.judge).pop_front()
    } else {
        None
    };
    if let Some(reply) = queued {
        return match reply {
            JudgeReply::Call(arguments) => completion(call(&tool, &arguments)).into_response(),
            JudgeReply::Content(text) => {
                completion(json!({"role": "assistant", "content": text})).into_response()
            }
            JudgeReply::Status(status) => {
                let code =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = json!({"error": {
                    "message": "The scripted model failed this request.",
                    "type": "server_error", "param": null, "code": null
                }});
                (code, Json(body)).into_response()
            }
            JudgeReply::Hang => std::future::pending().await,
        };
    }
    let arguments = match tool.as_str() {
        "write_spec" => json!({
            "title": SPEC_TITLE,
            "problem": "The login page rejects valid passwords.",
            "acceptance_checks": ["A valid password logs in."],
            "hints": []
        }),
        "write_plan" => json!({ "plan": PLAN }),
        other => json!({ "error": format!("the scripted model has no answer for `{other}`") }),
    };
    completion(call(&tool, &arguments)).into_response()
}

impl ScriptedModel {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the scripted model serves");
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            shared,
            server,
        }
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The forced tool of every request so far, in order.
    pub fn tools_asked(&self) -> Vec<String> {
        self.requests().iter().map(forced_tool).collect()
    }

    /// Every request so far, as sent.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }

    /// Queues the answer to the judge's next request (with none queued, the judge gets
    /// arguments it cannot use).
    pub fn push_judge(&self, reply: JudgeReply) {
        lock(&self.shared.judge).push_back(reply);
    }
}
