//! An OpenAI-compatible model endpoint in the test process, on loopback: it answers the chat
//! core's forced calls (`write_spec`, `write_plan`) with fixed arguments and keeps every request
//! it was sent, for the plan and spec tests.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

/// The title the scripted spec gives a thread.
pub const SPEC_TITLE: &str = "Login page rejects valid passwords";
/// The plan it proposes.
pub const PLAN: &str = "1. Read `login.rs`.\n2. Fix the password check.";

type Requests = Arc<Mutex<Vec<Value>>>;

/// See the module's documentation. The server stops when this is dropped.
pub struct ScriptedModel {
    base_url: String,
    requests: Requests,
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

async fn completions(State(requests): State<Requests>, Json(request): Json<Value>) -> Json<Value> {
    let tool = forced_tool(&request);
    requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(request);
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
    Json(json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "scripted",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": tool, "arguments": arguments.to_string()}
            }]},
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
}

impl ScriptedModel {
    pub async fn start() -> Self {
        let requests = Requests::default();
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(requests.clone());
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
            requests,
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
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
