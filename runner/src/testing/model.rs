//! A model that answers from a script: a queue of turns, each a reply (tool calls, text), an
//! error, or a reply that never comes. It records every request it got.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use super::lock;
use crate::agent::chat::ChatModel;
use crate::agent::model::{FunctionCall, Message, ModelError, Reply, Sampling, ToolCall};

/// One scripted turn.
#[derive(Debug, Clone)]
pub enum ModelTurn {
    Reply(Reply),
    Fail(ModelError),
    /// Never answers (a model endpoint that hangs): the caller's deadline or cancellation must
    /// end the wait.
    Hang,
}

/// One request the model got.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub messages: Vec<Message>,
    pub tools: Value,
    pub sampling: Sampling,
}

/// A scripted model; clones share the script and the record.
#[derive(Clone, Default)]
pub struct ScriptedModel {
    turns: Arc<Mutex<VecDeque<ModelTurn>>>,
    requests: Arc<Mutex<Vec<ModelRequest>>>,
    arrived: Arc<Notify>,
    calls: Arc<Mutex<u32>>,
    /// The `usage` the replies scripted from now on report (`None`: not reported).
    usage: Arc<Mutex<Option<crate::usage::TokenUsage>>>,
}

impl ScriptedModel {
    pub fn new() -> Self {
        Self::default()
    }

    /// The replies scripted after this report `usage` (by default they report none, as some
    /// endpoints do).
    pub fn with_usage(&self, usage: Option<crate::usage::TokenUsage>) -> &Self {
        *lock(&self.usage) = usage;
        self
    }

    fn usage(&self) -> Option<crate::usage::TokenUsage> {
        *lock(&self.usage)
    }

    /// Appends a turn to the script.
    pub fn push(&self, turn: ModelTurn) -> &Self {
        lock(&self.turns).push_back(turn);
        self
    }

    /// A reply calling one tool with `arguments` as its JSON arguments.
    pub fn tool_call(&self, name: &str, arguments: Value) -> &Self {
        self.raw_tool_call(name, &arguments.to_string())
    }

    /// A reply calling one tool with `arguments` exactly as given (malformed ones included).
    pub fn raw_tool_call(&self, name: &str, arguments: &str) -> &Self {
        let id = {
            let mut calls = lock(&self.calls);
            *calls += 1;
            format!("call_{}", *calls)
        };
        self.push(ModelTurn::Reply(Reply {
            content: None,
            tool_calls: vec![ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name: name.into(),
                    arguments: arguments.into(),
                },
            }],
            usage: self.usage(),
        }))
    }

    /// A reply calling `finish`.
    pub fn finish(&self, summary: &str, confidence: f64) -> &Self {
        self.tool_call(
            "finish",
            serde_json::json!({"summary": summary, "confidence": confidence}),
        )
    }

    /// A reply calling `give_up`.
    pub fn give_up(&self, reason: &str) -> &Self {
        self.tool_call("give_up", serde_json::json!({ "reason": reason }))
    }

    /// A reply with text and no tool call.
    pub fn text(&self, content: &str) -> &Self {
        self.push(ModelTurn::Reply(Reply {
            content: Some(content.into()),
            tool_calls: Vec::new(),
            usage: self.usage(),
        }))
    }

    /// A failed request.
    pub fn fail(&self, error: ModelError) -> &Self {
        self.push(ModelTurn::Fail(error))
    }

    /// A request that never gets an answer.
    pub fn hang(&self) -> &Self {
        self.push(ModelTurn::Hang)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<ModelRequest> {
        lock(&self.requests).clone()
    }

    /// Waits until the model has had `n` requests (its caller is then waiting for the answer to
    /// the last, when that turn hangs).
    pub async fn wait_for_requests(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            if lock(&self.requests).len() >= n {
                return;
            }
            arrived.await;
        }
    }

    /// Turns not yet used.
    pub fn remaining(&self) -> usize {
        lock(&self.turns).len()
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    async fn chat(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
    ) -> Result<Reply, ModelError> {
        lock(&self.requests).push(ModelRequest {
            messages: messages.to_vec(),
            tools: tools.clone(),
            sampling,
        });
        self.arrived.notify_waiters();
        let turn = lock(&self.turns).pop_front();
        match turn {
            Some(ModelTurn::Reply(reply)) => Ok(reply),
            Some(ModelTurn::Fail(e)) => Err(e),
            Some(ModelTurn::Hang) => std::future::pending().await,
            // A script that ran out is a test's mistake: say so as a refusal (not retried).
            None => Err(ModelError::Rejected {
                status: 400,
                body: "the scripted model has no reply left".into(),
            }),
        }
    }
}
