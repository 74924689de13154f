//! What the Chat Completions API refuses before any model sees a request: an unknown
//! model (404 `model_not_found`), an argument it does not know (400), and a conversation
//! whose tool calls and tool answers do not pair up (400, `messages`).

use std::collections::HashSet;

use serde_json::Value;

/// The model the fake serves.
pub const MODEL: &str = "fake-model";

/// The request arguments of `POST /v1/chat/completions` in OpenAI's reference.
const ARGUMENTS: &[&str] = &[
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "messages",
    "metadata",
    "modalities",
    "model",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

/// A refusal: HTTP status, message, `param`, `code`.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

fn bad(message: String, param: Option<&'static str>) -> Refusal {
    Refusal {
        status: 400,
        message,
        param,
        code: None,
    }
}

/// Checks a request as OpenAI does before answering it.
pub fn check(body: &Value) -> Result<(), Refusal> {
    let Some(fields) = body.as_object() else {
        return Err(bad(
            "We could not parse the JSON body of your request.".into(),
            None,
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !ARGUMENTS.contains(&k.as_str())) {
        return Err(bad(
            format!("Unrecognized request argument supplied: {unknown}"),
            None,
        ));
    }
    match body.get("model").and_then(Value::as_str) {
        None => {
            return Err(bad("you must provide a model parameter".into(), None));
        }
        Some(MODEL) => {}
        Some(other) => {
            return Err(Refusal {
                status: 404,
                message: format!(
                    "The model `{other}` does not exist or you do not have access to it."
                ),
                param: None,
                code: Some("model_not_found"),
            });
        }
    }
    check_messages(body.get("messages"))
}

/// Every `tool` message answers a call of the assistant message before it, and every call
/// of an assistant message is answered before the next non-tool message.
fn check_messages(messages: Option<&Value>) -> Result<(), Refusal> {
    let Some(messages) = messages.and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return Err(bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.".into(),
            Some("messages"),
        ));
    };
    let mut open: Vec<String> = Vec::new();
    let mut answerable: HashSet<String> = HashSet::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if role == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or_default();
            if !answerable.contains(id) {
                return Err(bad(
                    format!(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[{i}])"
                    ),
                    Some("messages"),
                ));
            }
            open.retain(|o| o != id);
            continue;
        }
        if !open.is_empty() {
            return Err(bad(
                format!(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                    open.join(", ")
                ),
                Some("messages"),
            ));
        }
        if !["system", "developer", "user", "assistant"].contains(&role) {
            return Err(bad(
                format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function' and 'developer'."
                ),
                Some("messages"),
            ));
        }
        let calls = m["tool_calls"].as_array().filter(|c| !c.is_empty());
        if role == "assistant" && calls.is_none() && !m["content"].is_string() {
            // "Required unless tool_calls or function_call is specified."
            return Err(bad(
                format!(
                    "Invalid value for 'content': expected a string, got null. (messages[{i}].content)"
                ),
                Some("messages"),
            ));
        }
        answerable.clear();
        for call in calls.into_iter().flatten() {
            let id = call["id"].as_str().unwrap_or_default().to_string();
            answerable.insert(id.clone());
            open.push(id);
        }
    }
    if !open.is_empty() {
        return Err(bad(
            format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                open.join(", ")
            ),
            Some("messages"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(id: &str) -> Value {
        json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}})
    }

    #[test]
    fn tool_answers_must_pair_with_calls() {
        let user = json!({"role": "user", "content": "hi"});
        let ask =
            json!({"role": "assistant", "content": null, "tool_calls": [call("a"), call("b")]});
        let answer = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "ok"});
        let req = |msgs: Vec<Value>| json!({"model": MODEL, "messages": msgs});
        assert_eq!(
            check(&req(vec![
                user.clone(),
                ask.clone(),
                answer("a"),
                answer("b"),
                user.clone()
            ])),
            Ok(())
        );
        let unanswered = check(&req(vec![
            user.clone(),
            ask.clone(),
            answer("a"),
            user.clone(),
        ]))
        .unwrap_err();
        assert!(unanswered.message.contains(": b"), "{unanswered:?}");
        assert!(check(&req(vec![user.clone(), ask.clone(), answer("a")])).is_err());
        let stray = check(&req(vec![user.clone(), answer("z")])).unwrap_err();
        assert!(stray.message.contains("preceeding"), "{stray:?}");
        let silent = json!({"role": "assistant", "content": null});
        let null = check(&req(vec![user.clone(), silent, user.clone()])).unwrap_err();
        assert!(null.message.contains("got null"), "{null:?}");
    }

    #[test]
    fn unknown_models_and_arguments_are_refused() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let other = check(&json!({"model": "gpt-9", "messages": msgs})).unwrap_err();
        assert_eq!((other.status, other.code), (404, Some("model_not_found")));
        let extra = check(&json!({"model": MODEL, "messages": msgs, "colour": 1})).unwrap_err();
        assert_eq!(extra.status, 400);
        assert!(extra.message.ends_with("colour"));
        assert!(check(&json!({"model": MODEL, "messages": []})).is_err());
    }
}
