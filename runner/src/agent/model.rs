//! A client for any OpenAI-compatible Chat Completions endpoint, with tool calling.
//!
//! The key is sent only in the `Authorization` header of requests to the configured endpoint;
//! it is never given to a sandbox, printed or logged.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::Secret;
use crate::usage::TokenUsage;

/// Where and how to reach the model.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
    pub request_timeout: Duration,
    /// How many times a transient failure is retried.
    pub max_retries: u32,
    /// First back-off delay; doubles on each retry, at most 30 s.
    pub retry_base: Duration,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key: None,
            request_timeout: Duration::from_secs(300),
            max_retries: 4,
            retry_base: Duration::from_millis(500),
        }
    }
}

/// One chat message, in the wire format.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        #[serde(default)]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    /// A JSON document as a string (the standard); some servers send an object, which is
    /// re-encoded when read.
    #[serde(deserialize_with = "string_or_json")]
    pub arguments: String,
}

fn string_or_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// How one rollout samples, so that the N rollouts differ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub seed: u64,
}

/// Which tool the model may or must call (Chat Completions `tool_choice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model picks: a message or tool calls.
    Auto,
    /// The model must call one or more tools.
    Required,
    /// The model must call this function.
    Function(String),
}

impl ToolChoice {
    /// The wire form: `"auto"`, `"required"`, or
    /// `{"type": "function", "function": {"name": …}}`.
    pub fn to_value(&self) -> Value {
        match self {
            ToolChoice::Auto => Value::from("auto"),
            ToolChoice::Required => Value::from("required"),
            ToolChoice::Function(name) => {
                serde_json::json!({"type": "function", "function": {"name": name}})
            }
        }
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    tools: &'a Value,
    tool_choice: Value,
    temperature: f32,
    seed: u64,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    /// Read leniently: an endpoint that omits it, or sends it in another shape, still answered.
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    message: ResponseMessage,
}

#[derive(Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

/// What the model said on one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// The response's `usage`; `None` when the endpoint did not report it.
    pub usage: Option<TokenUsage>,
}

/// `usage.prompt_tokens` and `usage.completion_tokens`, when both are numbers.
fn usage_of(usage: Option<&Value>) -> Option<TokenUsage> {
    let usage = usage?;
    Some(TokenUsage {
        prompt: usage.get("prompt_tokens")?.as_u64()?,
        completion: usage.get("completion_tokens")?.as_u64()?,
    })
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("the model endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the model request timed out")]
    Timeout,
    #[error("the model endpoint is rate-limiting us (HTTP {status})")]
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the model endpoint failed (HTTP {status}): {body}")]
    Server { status: u16, body: String },
    #[error("the model endpoint refused the request (HTTP {status}): {body}")]
    Rejected { status: u16, body: String },
    #[error("the model endpoint answered with something that is not a chat completion: {0}")]
    Garbage(String),
}

impl ModelError {
    /// Whether trying again may help. Exhaustive on purpose: a new kind of error must decide.
    pub fn is_transient(&self) -> bool {
        match self {
            ModelError::Unreachable(_)
            | ModelError::Timeout
            | ModelError::RateLimited { .. }
            | ModelError::Server { .. }
            | ModelError::Garbage(_) => true,
            ModelError::Rejected { .. } => false,
        }
    }
}

/// A successful response's body → the model's reply; anything else is `Garbage`.
fn parse_reply(text: &str) -> Result<Reply, ModelError> {
    let parsed: ChatResponse = serde_json::from_str(text)
        .map_err(|e| ModelError::Garbage(format!("{e}; it began: {}", excerpt(text))))?;
    let usage = usage_of(parsed.usage.as_ref());
    let choice = parsed
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ModelError::Garbage("no choices in the response".into()))?;
    Ok(Reply {
        content: choice.message.content,
        tool_calls: choice.message.tool_calls.unwrap_or_default(),
        usage,
    })
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A Chat Completions client.
#[derive(Clone)]
pub struct ModelClient {
    config: ModelConfig,
    http: reqwest::Client,
    /// What the requests are for, in the metrics (`agent`, `spec`).
    purpose: &'static str,
    /// Where answered requests' usage is counted, when someone wants it.
    meter: Option<crate::usage::UsageMeter>,
}

impl ModelClient {
    pub fn new(config: ModelConfig) -> Result<Self, ModelError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| ModelError::Unreachable(e.to_string()))?;
        Ok(Self {
            config,
            http,
            purpose: "agent",
            meter: None,
        })
    }

    /// The same client, its requests counted under `purpose` in the metrics (`agent` unless
    /// said otherwise).
    pub fn with_purpose(mut self, purpose: &'static str) -> Self {
        self.purpose = purpose;
        self
    }

    /// The same client, every answered request's usage counted in `meter`.
    pub fn with_meter(mut self, meter: crate::usage::UsageMeter) -> Self {
        self.meter = Some(meter);
        self
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        )
    }

    /// One request, no retries.
    pub async fn chat_once(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
    ) -> Result<Reply, ModelError> {
        self.chat_once_with(messages, tools, sampling, &ToolChoice::Auto)
            .await
    }

    /// One request with a `tool_choice`, no retries; timed and counted in the metrics.
    pub async fn chat_once_with(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
        choice: &ToolChoice,
    ) -> Result<Reply, ModelError> {
        let started = std::time::Instant::now();
        let reply = self.request(messages, tools, sampling, choice).await;
        crate::metrics::model_request(self.purpose, started.elapsed(), reply.as_ref().err());
        if let Ok(r) = &reply {
            crate::metrics::model_tokens(self.purpose, r.usage);
            if let Some(meter) = &self.meter {
                meter.record(r.usage);
            }
        }
        reply
    }

    async fn request(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
        choice: &ToolChoice,
    ) -> Result<Reply, ModelError> {
        let body = ChatRequest {
            model: &self.config.model,
            messages,
            tools,
            tool_choice: choice.to_value(),
            temperature: sampling.temperature,
            seed: sampling.seed,
        };
        let mut req = self.http.post(self.url()).json(&body);
        if let Some(key) = self.config.api_key.as_ref().filter(|k| !k.is_empty()) {
            req = req.bearer_auth(key.expose());
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                ModelError::Timeout
            } else {
                ModelError::Unreachable(e.without_url().to_string())
            }
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.map_err(|e| {
            if e.is_timeout() {
                ModelError::Timeout
            } else {
                ModelError::Unreachable(e.without_url().to_string())
            }
        })?;
        match status {
            200..=299 => {}
            429 => {
                return Err(ModelError::RateLimited {
                    status,
                    retry_after,
                });
            }
            500..=599 => {
                return Err(ModelError::Server {
                    status,
                    body: excerpt(&text),
                });
            }
            _ => {
                return Err(ModelError::Rejected {
                    status,
                    body: excerpt(&text),
                });
            }
        }
        parse_reply(&text)
    }

    /// A request with retries and exponential back-off for transient failures.
    pub async fn chat(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
    ) -> Result<Reply, ModelError> {
        self.chat_with(messages, tools, sampling, &ToolChoice::Auto)
            .await
    }

    /// [`Self::chat`] with a `tool_choice`.
    pub async fn chat_with(
        &self,
        messages: &[Message],
        tools: &Value,
        sampling: Sampling,
        choice: &ToolChoice,
    ) -> Result<Reply, ModelError> {
        let mut attempt = 0;
        loop {
            match self.chat_once_with(messages, tools, sampling, choice).await {
                Ok(reply) => return Ok(reply),
                Err(e) if e.is_transient() && attempt < self.config.max_retries => {
                    let backoff = self.config.retry_base * 2u32.saturating_pow(attempt);
                    let wait = match &e {
                        ModelError::RateLimited {
                            retry_after: Some(after),
                            ..
                        } => *after,
                        _ => backoff,
                    }
                    .min(Duration::from_secs(30));
                    tracing::warn!(error = %e, attempt, ?wait, "model call failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_the_wire_format() {
        let m = Message::Assistant {
            content: None,
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                kind: "function".into(),
                function: FunctionCall {
                    name: "run_command".into(),
                    arguments: r#"{"command":"ls"}"#.into(),
                },
            }],
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["tool_calls"][0]["type"], "function");
        assert_eq!(
            v["tool_calls"][0]["function"]["arguments"],
            r#"{"command":"ls"}"#
        );
        let t = serde_json::to_value(Message::Tool {
            tool_call_id: "call_1".into(),
            content: "ok".into(),
        })
        .unwrap();
        assert_eq!(
            t,
            serde_json::json!({"role":"tool","tool_call_id":"call_1","content":"ok"})
        );
    }

    #[test]
    fn usage_is_read_and_its_absence_is_unknown_not_zero() {
        let with = json_reply(
            serde_json::json!({"prompt_tokens": 120, "completion_tokens": 7,
            "total_tokens": 127, "prompt_tokens_details": {"cached_tokens": 0}}),
        );
        assert_eq!(
            parse_reply(&with).unwrap().usage,
            Some(TokenUsage {
                prompt: 120,
                completion: 7
            })
        );
        assert_eq!(parse_reply(&json_reply(Value::Null)).unwrap().usage, None);
        let odd = json_reply(serde_json::json!({"input_tokens": 3}));
        assert_eq!(parse_reply(&odd).unwrap().usage, None, "another shape");
        let text = r#"{"choices": [{"message": {"content": "hi"}}]}"#;
        let reply = parse_reply(text).unwrap();
        assert_eq!((reply.content.as_deref(), reply.usage), (Some("hi"), None));
    }

    fn json_reply(usage: Value) -> String {
        serde_json::json!({"choices": [{"message": {"content": "ok"}}], "usage": usage}).to_string()
    }

    #[test]
    fn object_arguments_are_accepted() {
        let call: ToolCall = serde_json::from_value(serde_json::json!({
            "id": "c", "type": "function",
            "function": {"name": "finish", "arguments": {"summary": "x", "confidence": 1}}
        }))
        .unwrap();
        assert_eq!(call.function.arguments, r#"{"confidence":1,"summary":"x"}"#);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// JSON values of any shape, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::hash_map("[a-z_]{1,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A completion whose fields are sometimes right, sometimes any JSON.
    fn completion_like() -> impl Strategy<Value = Value> {
        (any_json(), any_json(), any_json(), any::<bool>()).prop_map(
            |(content, calls, args, good_calls)| {
                let tool_calls = if good_calls {
                    json!([{"id": "c1", "type": "function",
                            "function": {"name": "run_command", "arguments": args}}])
                } else {
                    calls
                };
                json!({"choices": [{"message": {"role": "assistant", "content": content,
                                                "tool_calls": tool_calls}}]})
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_body_is_a_reply_or_garbage(body in ".{0,300}") {
            match parse_reply(&body) {
                Ok(_) => {}
                Err(ModelError::Garbage(why)) => prop_assert!(why.chars().count() < 700, "{why}"),
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        #[test]
        fn any_json_body_is_a_reply_or_garbage(v in any_json()) {
            let text = v.to_string();
            prop_assert!(matches!(parse_reply(&text), Ok(_) | Err(ModelError::Garbage(_))));
        }

        #[test]
        fn completion_like_bodies_never_panic(v in completion_like()) {
            if let Ok(reply) = parse_reply(&v.to_string()) {
                for call in reply.tool_calls {
                    // Whatever the arguments were, they reach the tool parser as a string.
                    let _ = crate::agent::tools::parse(&call.function.name, &call.function.arguments);
                }
            }
        }

        #[test]
        fn excerpts_are_short_and_whole_characters(text in "\\PC{0,1000}") {
            let e = excerpt(&text);
            prop_assert!(e.chars().count() <= 301);
            prop_assert!(text.trim().starts_with(e.trim_end_matches('…')));
        }
    }

    #[test]
    fn arguments_sent_as_an_object_are_re_encoded() {
        let body = json!({"choices": [{"message": {"tool_calls": [{"id": "1",
            "function": {"name": "finish", "arguments": {"summary": "s", "confidence": 0.5}}}]}}]});
        let reply = parse_reply(&body.to_string()).unwrap();
        assert_eq!(
            crate::agent::tools::parse("finish", &reply.tool_calls[0].function.arguments),
            Ok(crate::agent::tools::Tool::Finish {
                summary: "s".into(),
                confidence: 0.5
            })
        );
    }
}
