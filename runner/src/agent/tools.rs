//! The tools the built-in agent offers the model, and the parsing of its calls.
//!
//! A malformed call is answered with an error the model can act on, never a crash.

use serde::Deserialize;
use serde_json::{Value, json};

/// A parsed tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Tool {
    RunCommand {
        command: String,
        timeout_secs: Option<u64>,
    },
    ReadFile {
        path: String,
        start_line: u64,
        max_lines: u64,
    },
    WriteFile {
        path: String,
        content: String,
    },
    ApplyPatch {
        patch: String,
    },
    Finish {
        summary: String,
        confidence: f64,
    },
    GiveUp {
        reason: String,
    },
}

pub const TOOL_NAMES: [&str; 6] = [
    "run_command",
    "read_file",
    "write_file",
    "apply_patch",
    "finish",
    "give_up",
];

/// The tools in the Chat Completions `tools` format.
pub fn definitions() -> Value {
    let f = |name: &str, description: &str, parameters: Value| json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}});
    json!([
        f(
            "run_command",
            "Run a bash command in /workspace (the repository). No network. Output is capped.",
            json!({"type": "object", "properties": {
                "command": {"type": "string", "description": "The bash command line."},
                "timeout_secs": {"type": "integer", "description": "Optional limit in seconds."}
            }, "required": ["command"]})
        ),
        f(
            "read_file",
            "Read a text file, optionally a range of lines.",
            json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Relative to /workspace, or absolute."},
                "start_line": {"type": "integer", "description": "First line, from 1."},
                "max_lines": {"type": "integer", "description": "How many lines (default 400)."}
            }, "required": ["path"]})
        ),
        f(
            "write_file",
            "Create or replace a file with the given content.",
            json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "content": {"type": "string"}
            }, "required": ["path", "content"]})
        ),
        f(
            "apply_patch",
            "Apply a unified diff (as produced by `git diff`) to the repository.",
            json!({"type": "object", "properties": {
                "patch": {"type": "string"}
            }, "required": ["patch"]})
        ),
        f(
            "finish",
            "Stop: the task is done. Give a short Markdown summary of what you changed and why, and your confidence (0 to 1) that it is right.",
            json!({"type": "object", "properties": {
                "summary": {"type": "string"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}
            }, "required": ["summary", "confidence"]})
        ),
        f(
            "give_up",
            "Stop without a fix, saying why.",
            json!({"type": "object", "properties": {
                "reason": {"type": "string"}
            }, "required": ["reason"]})
        ),
    ])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunCommandArgs {
    command: String,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFileArgs {
    path: String,
    #[serde(default)]
    start_line: Option<u64>,
    #[serde(default)]
    max_lines: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteFileArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyPatchArgs {
    patch: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishArgs {
    summary: String,
    confidence: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GiveUpArgs {
    reason: String,
}

fn args<T: serde::de::DeserializeOwned>(name: &str, arguments: &str) -> Result<T, String> {
    let arguments = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    serde_json::from_str(arguments).map_err(|e| {
        format!("the arguments of `{name}` are not valid: {e}. Send a JSON object matching the tool's parameters.")
    })
}

/// Parses a call; the error is written for the model.
pub fn parse(name: &str, arguments: &str) -> Result<Tool, String> {
    let tool = match name {
        "run_command" => {
            let a: RunCommandArgs = args(name, arguments)?;
            if a.command.trim().is_empty() {
                return Err("`command` is empty.".into());
            }
            Tool::RunCommand {
                command: a.command,
                timeout_secs: a.timeout_secs,
            }
        }
        "read_file" => {
            let a: ReadFileArgs = args(name, arguments)?;
            Tool::ReadFile {
                path: non_empty_path(a.path)?,
                start_line: a.start_line.unwrap_or(1).max(1),
                max_lines: a.max_lines.unwrap_or(400).clamp(1, 5000),
            }
        }
        "write_file" => {
            let a: WriteFileArgs = args(name, arguments)?;
            Tool::WriteFile {
                path: non_empty_path(a.path)?,
                content: a.content,
            }
        }
        "apply_patch" => {
            let a: ApplyPatchArgs = args(name, arguments)?;
            Tool::ApplyPatch { patch: a.patch }
        }
        "finish" => {
            let a: FinishArgs = args(name, arguments)?;
            if !(0.0..=1.0).contains(&a.confidence) {
                return Err("`confidence` must be a number from 0 to 1.".into());
            }
            Tool::Finish {
                summary: a.summary,
                confidence: a.confidence,
            }
        }
        "give_up" => {
            let a: GiveUpArgs = args(name, arguments)?;
            Tool::GiveUp { reason: a.reason }
        }
        other => {
            // The name is the model's: quote a bounded part of it.
            let shown: String = other.chars().take(80).collect();
            return Err(format!(
                "there is no tool named `{shown}`. The tools are: {}.",
                TOOL_NAMES.join(", ")
            ));
        }
    };
    Ok(tool)
}

fn non_empty_path(path: String) -> Result<String, String> {
    if path.trim().is_empty() {
        Err("`path` is empty.".into())
    } else {
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_calls_parse() {
        assert_eq!(
            parse("run_command", r#"{"command":"ls -la"}"#),
            Ok(Tool::RunCommand {
                command: "ls -la".into(),
                timeout_secs: None
            })
        );
        assert_eq!(
            parse("finish", r#"{"summary":"done","confidence":0.5}"#),
            Ok(Tool::Finish {
                summary: "done".into(),
                confidence: 0.5
            })
        );
        assert_eq!(
            parse("read_file", r#"{"path":"a.rs","max_lines":999999}"#),
            Ok(Tool::ReadFile {
                path: "a.rs".into(),
                start_line: 1,
                max_lines: 5000
            })
        );
    }

    #[test]
    fn malformed_calls_get_errors_the_model_can_act_on() {
        let e = parse("run_command", "{not json").unwrap_err();
        assert!(e.contains("not valid"), "{e}");
        let e = parse("rm_rf", "{}").unwrap_err();
        assert!(
            e.contains("no tool named `rm_rf`") && e.contains("run_command"),
            "{e}"
        );
        let e = parse("finish", r#"{"summary":"x","confidence":7}"#).unwrap_err();
        assert!(e.contains("from 0 to 1"), "{e}");
        let e = parse("write_file", r#"{"path":"a"}"#).unwrap_err();
        assert!(e.contains("content"), "{e}");
        assert!(parse("run_command", r#"{"command":"  "}"#).is_err());
    }

    #[test]
    fn every_tool_has_a_definition() {
        let defs = definitions();
        let names: Vec<&str> = defs
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, TOOL_NAMES);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(TOOL_NAMES.to_vec()).prop_map(String::from),
            "\\PC{0,200}",
        ]
    }

    /// Argument strings: valid objects, objects with wrong types, truncated or garbled JSON.
    fn arguments() -> impl Strategy<Value = String> {
        let field = prop_oneof![
            Just(json!(null)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            any::<u64>().prop_map(|n| json!(n)),
            "\\PC{0,60}".prop_map(|s| json!(s)),
            Just(json!([1, "two", {"three": 3}])),
            Just(json!({"nested": {"deeper": [null]}})),
        ];
        let keys = prop::sample::select(vec![
            "command",
            "timeout_secs",
            "path",
            "start_line",
            "max_lines",
            "content",
            "patch",
            "summary",
            "confidence",
            "reason",
            "extra",
        ]);
        let object = prop::collection::hash_map(keys, field, 0..6).prop_map(|m| {
            serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                .to_string()
        });
        prop_oneof![
            object.clone(),
            (object, any::<prop::sample::Index>()).prop_map(|(s, cut)| {
                let at = cut.index(s.len() + 1);
                s.get(..at).unwrap_or(&s).to_string()
            }),
            "\\PC{0,200}",
            Just(String::new()),
            Just("\u{0}".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn any_call_parses_or_says_what_is_wrong(name in name(), args in arguments()) {
            match parse(&name, &args) {
                Ok(tool) => {
                    prop_assert!(TOOL_NAMES.contains(&name.as_str()));
                    match tool {
                        Tool::RunCommand { command, .. } => prop_assert!(!command.trim().is_empty()),
                        Tool::ReadFile { path, start_line, max_lines } => {
                            prop_assert!(!path.trim().is_empty());
                            prop_assert!(start_line >= 1);
                            prop_assert!((1..=5000).contains(&max_lines));
                        }
                        Tool::WriteFile { path, .. } => prop_assert!(!path.trim().is_empty()),
                        Tool::Finish { confidence, .. } => prop_assert!((0.0..=1.0).contains(&confidence)),
                        Tool::ApplyPatch { .. } | Tool::GiveUp { .. } => {}
                    }
                }
                Err(why) => {
                    prop_assert!(!why.is_empty());
                    prop_assert!(why.chars().count() < 600, "{} chars: {why}", why.chars().count());
                }
            }
        }

        #[test]
        fn well_formed_calls_always_parse(
            command in "[a-z][a-z ./-]{0,40}",
            path in "[a-z][a-z0-9_./]{0,40}",
            content in "\\PC{0,200}",
            confidence in 0.0f64..=1.0,
            start in proptest::option::of(0u64..u64::MAX),
        ) {
            prop_assert_eq!(
                parse("run_command", &json!({"command": command}).to_string()),
                Ok(Tool::RunCommand { command: command.clone(), timeout_secs: None })
            );
            let read = parse("read_file", &json!({"path": path, "start_line": start}).to_string());
            let read_ok = matches!(read, Ok(Tool::ReadFile { start_line, .. }) if start_line >= 1);
            prop_assert!(read_ok);
            prop_assert_eq!(
                parse("write_file", &json!({"path": path, "content": content}).to_string()),
                Ok(Tool::WriteFile { path: path.clone(), content: content.clone() })
            );
            // (serde_json reads floats to within an ulp, not always bit for bit.)
            let finish = parse("finish", &json!({"summary": "done", "confidence": confidence}).to_string());
            let finish_ok = matches!(finish, Ok(Tool::Finish { confidence: c, .. }) if (c - confidence).abs() < 1e-12);
            prop_assert!(finish_ok, "{finish:?}");
        }
    }

    #[test]
    fn a_huge_unknown_name_is_quoted_in_part() {
        let name = "x".repeat(1 << 20);
        let why = parse(&name, "{}").unwrap_err();
        assert!(why.len() < 300, "{}", why.len());
    }
}
