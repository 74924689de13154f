//! One model turn that must produce one function's arguments (`write_spec`, `write_plan`).
//!
//! The call is forced with `tool_choice: {"type": "function", "function": {"name": …}}`;
//! an endpoint that refuses a named `tool_choice` (HTTP 400) is asked again with
//! `"required"`, then `"auto"`, and what it accepted is remembered for the process. A model
//! that answers with the JSON object in its message content (bare, or in a ```json fence)
//! instead of a call is accepted too.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde_json::Value;
use threadsmith_runner::ModelClient;
use threadsmith_runner::agent::model::{Message, ModelError, Reply, ToolChoice};

/// The strongest `tool_choice` each endpoint accepted (0: named, 1: required, 2: auto).
fn accepted() -> &'static Mutex<HashMap<String, usize>> {
    static ACCEPTED: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    ACCEPTED.get_or_init(Mutex::default)
}

fn choices(tool: &str) -> [ToolChoice; 3] {
    [
        ToolChoice::Function(tool.to_string()),
        ToolChoice::Required,
        ToolChoice::Auto,
    ]
}

/// Why a forced call gave no arguments. Either way the text is a sentence for the operator's
/// log (not for the thread: it may quote the endpoint or the model).
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The endpoint could not be reached, or refused or failed the request.
    #[error("{0}")]
    Model(String),
    /// It answered, but not with the tool's arguments.
    #[error("{0}")]
    Answer(String),
}

impl From<AskError> for String {
    fn from(e: AskError) -> Self {
        e.to_string()
    }
}

/// One model turn that must call `tool`; returns the call's arguments.
pub async fn ask_for_tool<T: serde::de::DeserializeOwned>(
    model: &ModelClient,
    system: &str,
    user: String,
    tools: Value,
    tool: &str,
    temperature: f32,
) -> Result<T, AskError> {
    let messages = [
        Message::System {
            content: system.into(),
        },
        Message::User { content: user },
    ];
    let endpoint = model.config().base_url.clone();
    let start = accepted()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&endpoint)
        .copied()
        .unwrap_or(0);
    let sampling = threadsmith_runner::Sampling {
        temperature,
        seed: 0,
    };
    let all = choices(tool);
    let mut level = start.min(all.len() - 1);
    let reply = loop {
        match model
            .chat_with(&messages, &tools, sampling, &all[level])
            .await
        {
            Ok(reply) => break reply,
            Err(ModelError::Rejected { status: 400, .. }) if level + 1 < all.len() => {
                tracing::warn!(
                    tool_choice = %all[level].to_value(),
                    "the model endpoint refused this tool_choice; asking with a weaker one"
                );
                level += 1;
            }
            Err(e) => return Err(AskError::Model(e.to_string())),
        }
    };
    if level != start {
        accepted()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(endpoint, level);
    }
    let args = arguments(&reply, tool).map_err(AskError::Answer)?;
    serde_json::from_value(args)
        .map_err(|e| AskError::Answer(format!("the model's {tool} arguments are not valid: {e}")))
}

/// The arguments of the call to `tool`, or the JSON object the model wrote in its content.
fn arguments(reply: &Reply, tool: &str) -> Result<Value, String> {
    if let Some(call) = reply.tool_calls.iter().find(|c| c.function.name == tool) {
        return serde_json::from_str(&call.function.arguments)
            .map_err(|e| format!("the model's {tool} arguments are not valid JSON: {e}"));
    }
    reply
        .content
        .as_deref()
        .and_then(|c| json_in_content(c, tool))
        .ok_or_else(|| format!("the model neither called {tool} nor wrote its arguments as JSON"))
}

/// A JSON object in a message's content: the whole content, a ```json fence, or the text
/// from its first `{` to its last `}`. A call written out as JSON
/// (`{"name": tool, "arguments": {…}}`) gives its arguments.
fn json_in_content(content: &str, tool: &str) -> Option<Value> {
    let text = content.trim();
    let fenced = text.find("```").and_then(|open| {
        let body = &text[open + 3..];
        let body = body.split_once('\n').map_or("", |(_, rest)| rest);
        body.find("```").map(|close| &body[..close])
    });
    let braced = match (text.find('{'), text.rfind('}')) {
        (Some(a), Some(b)) if a < b => Some(&text[a..=b]),
        _ => None,
    };
    let object = [Some(text), fenced, braced]
        .into_iter()
        .flatten()
        .find_map(
            |candidate| match serde_json::from_str::<Value>(candidate.trim()) {
                Ok(v @ Value::Object(_)) => Some(v),
                _ => None,
            },
        )?;
    let call = object.get("function").unwrap_or(&object);
    if call.get("name").and_then(Value::as_str) == Some(tool)
        && let Some(args) = call.get("arguments").or_else(|| call.get("parameters"))
    {
        return match args {
            Value::String(s) => serde_json::from_str(s).ok(),
            Value::Object(_) => Some(args.clone()),
            _ => None,
        };
    }
    Some(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_found_bare_fenced_inside_prose_or_as_a_written_out_call() {
        let spec = json!({"title": "Fix add", "problem": "add subtracts"});
        let cases = [
            spec.to_string(),
            format!("```json\n{spec:#}\n```"),
            format!("Here is the spec:\n```\n{spec}\n```\nDone."),
            format!("Sure! {spec} Hope it helps."),
            json!({"name": "write_spec", "arguments": spec.to_string()}).to_string(),
            json!({"type": "function", "function": {"name": "write_spec", "arguments": spec}})
                .to_string(),
        ];
        for c in cases {
            assert_eq!(json_in_content(&c, "write_spec"), Some(spec.clone()), "{c}");
        }
        for c in [
            "I'd rather chat.",
            "[1, 2]",
            "{not json}",
            "} backwards {",
            "",
        ] {
            assert_eq!(json_in_content(c, "write_spec"), None, "{c}");
        }
    }

    #[test]
    fn a_call_wins_over_content_and_nothing_is_an_error() {
        use threadsmith_runner::agent::model::{FunctionCall, ToolCall};
        let call = ToolCall {
            id: "c".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "write_spec".into(),
                arguments: r#"{"title": "from the call", "problem": "p"}"#.into(),
            },
        };
        let reply = Reply {
            content: Some(r#"{"title": "from the content", "problem": "p"}"#.into()),
            tool_calls: vec![call],
            usage: None,
        };
        assert_eq!(
            arguments(&reply, "write_spec").unwrap()["title"],
            "from the call"
        );
        let nothing = Reply {
            content: Some("no".into()),
            tool_calls: vec![],
            usage: None,
        };
        assert!(arguments(&nothing, "write_spec").is_err());
        assert_eq!(
            choices("write_spec")[0].to_value(),
            json!({"type": "function", "function": {"name": "write_spec"}})
        );
    }
}
