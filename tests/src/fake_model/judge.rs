//! The judge's side of the fake model: a request whose `tools` offer `judge_rollouts` (the
//! ranking's judge, see runner/src/rank.rs) is answered with the scripted verdicts, whatever
//! seed it carries, through the forced tool call the real model would make.

use serde_json::{Value, json};

/// The judge's tool, by the shared contract.
pub const TOOL: &str = "judge_rollouts";

/// Whether a request is the judge's: its `tools` name `judge_rollouts`.
pub fn is_judge_request(body: &Value) -> bool {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["function"]["name"] == TOOL)
}

/// Every message's text, lower-cased: what the judge was shown.
fn shown(body: &Value) -> String {
    let mut text = String::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        match &m["content"] {
            Value::String(s) => text.push_str(s),
            // Content parts: `[{"type": "text", "text": …}]`.
            Value::Array(parts) => {
                for p in parts {
                    text.push_str(p["text"].as_str().unwrap_or_default());
                }
            }
            _ => {}
        }
        text.push('\n');
    }
    text.to_lowercase()
}

/// Whether `text` names rollout `k` ("rollout 3", "Rollout #3"), not rollout 31.
fn names_rollout(text: &str, k: u64) -> bool {
    ["rollout ", "rollout #"].iter().any(|prefix| {
        let needle = format!("{prefix}{k}");
        text.match_indices(&needle).any(|(at, _)| {
            !text[at + needle.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    })
}

/// The arguments of the judge's answer: the scripted verdicts of the rollouts the request
/// shows (a model answers about the candidates it was given), or all of them when the request
/// names none of them in words the fake recognises.
pub fn answer(body: &Value, verdicts: &[Value]) -> Value {
    let text = shown(body);
    let named: Vec<Value> = verdicts
        .iter()
        .filter(|v| {
            v["rollout"]
                .as_u64()
                .is_some_and(|k| names_rollout(&text, k))
        })
        .cloned()
        .collect();
    let verdicts = if named.is_empty() {
        verdicts.to_vec()
    } else {
        named
    };
    json!({ "verdicts": verdicts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_about_the_candidates_shown() {
        let verdicts = vec![
            json!({"rollout": 1, "verdict": "best", "reason": "a"}),
            json!({"rollout": 3, "verdict": "poor", "reason": "c"}),
        ];
        let body = json!({
            "tools": [{"type": "function", "function": {"name": TOOL}}],
            "messages": [{"role": "user", "content": "Rollout 3: …\nRollout 31: …"}]
        });
        assert!(is_judge_request(&body));
        let a = answer(&body, &verdicts);
        assert_eq!(a["verdicts"].as_array().unwrap().len(), 1);
        assert_eq!(a["verdicts"][0]["rollout"], 3);
        let unnamed = json!({"messages": [{"role": "user", "content": "candidates: A, B"}]});
        assert_eq!(
            answer(&unnamed, &verdicts)["verdicts"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(!is_judge_request(&unnamed));
    }
}
