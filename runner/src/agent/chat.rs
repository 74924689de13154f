//! The one call the built-in agent makes of a model, as a trait: the Chat Completions client
//! implements it, and tests drive the agent loop with a scripted model
//! (`crate::testing::ScriptedModel`) in its place.

use async_trait::async_trait;
use serde_json::Value;

use super::model::{Message, ModelClient, ModelError, Reply, Sampling};

/// A model the agent talks to: the conversation so far, the tools it may call and the rollout's
/// sampling, in; its next reply (text and tool calls), out. Retries are the implementation's.
///
/// Held as `Arc<dyn ChatModel>`, hence `async_trait` (native `async fn` in traits is not
/// object-safe).
#[async_trait]
pub trait ChatModel: Send + Sync {
    async fn chat(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
    ) -> Result<Reply, ModelError>;
}

#[async_trait]
impl ChatModel for ModelClient {
    /// [`ModelClient::chat`]: `tool_choice` auto, transient failures retried with back-off.
    async fn chat(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
    ) -> Result<Reply, ModelError> {
        ModelClient::chat(self, messages, tools, sampling).await
    }
}
