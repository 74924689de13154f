//! The pull request's title, body and commit message. Pure functions: snapshot-tested.
//!
//! Text from the thread and the model is untrusted: `@mentions` are defused (GitHub would notify
//! the people named) and code goes in fences longer than any backtick run inside it.

use threadsmith_runner::{CommandRecord, Diff};

use crate::spec::TaskSpec;
use crate::store::RolloutRow;

/// GitHub refuses bodies over 65,536 characters.
const MAX_BODY_CHARS: usize = 60_000;
/// Output shown per command in the collapsed transcript.
const OUTPUT_CHARS: usize = 600;

pub struct BodyInput<'a> {
    pub task_id: &'a str,
    pub spec: &'a TaskSpec,
    pub rollout: &'a RolloutRow,
    pub diff: &'a Diff,
    pub commands: &'a [CommandRecord],
    pub test_command: Option<&'a str>,
    /// The chat thread the task came from.
    pub thread_link: Option<&'a str>,
    /// The rollout's diff page.
    pub page_link: Option<&'a str>,
    pub approved_by: Option<&'a str>,
}

/// `@name` → `@\u{200b}name`: readable, but no notification.
pub fn defuse_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '@' && chars.peek().is_some_and(|n| n.is_alphanumeric()) {
            out.push('\u{200b}');
        }
    }
    out
}

/// A fenced code block that `text` cannot close early.
pub fn fenced(text: &str, lang: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{lang}\n{}\n{fence}", text.trim_end_matches('\n'))
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}\n… ({} more characters)", &text[..i], text.len() - i),
        None => text.to_string(),
    }
}

/// The pull request's title: the spec's, on one line.
pub fn title(spec: &TaskSpec) -> String {
    let t = spec.title.lines().next().unwrap_or("").trim();
    if t.is_empty() {
        "Changes from threadsmith".into()
    } else {
        cut(t, 120).lines().next().unwrap_or(t).to_string()
    }
}

pub fn commit_message(input: &BodyInput<'_>) -> String {
    let mut msg = title(input.spec);
    msg.push_str("\n\n");
    if let Some(summary) = input
        .rollout
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        msg.push_str(summary.trim());
        msg.push_str("\n\n");
    }
    msg.push_str(&format!(
        "Threadsmith-Task: {}\nThreadsmith-Rollout: {}\n",
        input.task_id, input.rollout.index
    ));
    msg
}

pub fn pull_request_body(input: &BodyInput<'_>) -> String {
    let r = input.rollout;
    let mut b = String::new();
    b.push_str("## Problem\n\n");
    b.push_str(&defuse_mentions(input.spec.problem.trim()));
    b.push_str("\n\n");
    if let Some(expected) = input
        .spec
        .expected
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        b.push_str("**Expected:** ");
        b.push_str(&defuse_mentions(expected.trim()));
        b.push_str("\n\n");
    }
    b.push_str("## What changed\n\n");
    if let Some(summary) = r.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        b.push_str(&defuse_mentions(summary.trim()));
        b.push_str("\n\n");
    }
    b.push_str(&format!(
        "+{} −{} in {} file{}:\n",
        input.diff.added(),
        input.diff.removed(),
        input.diff.files.len(),
        if input.diff.files.len() == 1 { "" } else { "s" }
    ));
    for f in &input.diff.files {
        let stat = match (f.added, f.removed) {
            (Some(a), Some(d)) => format!("+{a} −{d}"),
            _ => "binary".into(),
        };
        b.push_str(&format!("- `{}` ({stat})\n", f.path.replace('`', "'")));
    }
    b.push('\n');
    b.push_str("## Tests\n\n");
    match (&r.test, input.test_command) {
        (Some(t), Some(cmd)) => {
            let verdict = if t.passed {
                "passed".to_string()
            } else if t.timed_out {
                "timed out".to_string()
            } else {
                format!(
                    "failed (exit {})",
                    t.exit_code.map_or("?".into(), |c| c.to_string())
                )
            };
            b.push_str(&format!(
                "`{}` {verdict} in the rollout's sandbox ({:.1} s).\n\n",
                cmd.replace('`', "'"),
                t.duration.as_secs_f64()
            ));
            if !t.passed && !t.output.trim().is_empty() {
                b.push_str(&fenced(&cut(t.output.trim(), 2_000), "text"));
                b.push_str("\n\n");
            }
        }
        (Some(t), None) => b.push_str(if t.passed {
            "The tests passed in the rollout's sandbox.\n\n"
        } else {
            "The tests failed in the rollout's sandbox.\n\n"
        }),
        (None, _) => b.push_str("No test command is configured for this repository.\n\n"),
    }
    b.push_str(&format!(
        "<details>\n<summary>Commands the agent ran ({})</summary>\n\n",
        input.commands.len()
    ));
    let mut transcript = String::new();
    for c in input.commands {
        let exit = match (c.timed_out, c.exit_code) {
            (true, _) => "timed out".to_string(),
            (false, Some(code)) => format!("exit {code}"),
            (false, None) => "no exit code".to_string(),
        };
        transcript.push_str(&format!(
            "$ {}    # {exit}, {:.1} s\n",
            c.command.replace('\n', "\n  "),
            c.duration.as_secs_f64()
        ));
        let out = c.output.trim_end();
        if !out.is_empty() {
            transcript.push_str(&cut(out, OUTPUT_CHARS));
            transcript.push('\n');
        }
    }
    if transcript.is_empty() {
        transcript.push_str("(none)");
    }
    b.push_str(&fenced(&cut(&transcript, MAX_BODY_CHARS / 2), "text"));
    b.push_str("\n\n</details>\n\n---\n");
    let mut links = Vec::new();
    if let Some(t) = input.thread_link {
        links.push(format!("[the chat thread]({t})"));
    }
    if let Some(p) = input.page_link {
        links.push(format!("[the rollout's evidence]({p})"));
    }
    let approver = input
        .approved_by
        .map(|a| format!(", approved by {}", defuse_mentions(a)))
        .unwrap_or_default();
    b.push_str(&format!(
        "Made by threadsmith (task `{}`, rollout {}{approver}).",
        input.task_id, r.index
    ));
    if !links.is_empty() {
        b.push_str(&format!(" See {}.", links.join(" and ")));
    }
    b.push('\n');
    cut(&b, MAX_BODY_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_defused_and_fences_hold() {
        assert_eq!(
            defuse_mentions("ask @alice or a@b"),
            "ask @\u{200b}alice or a@\u{200b}b"
        );
        assert_eq!(defuse_mentions("@ alone"), "@ alone");
        let f = fenced("a ``` b ```` c", "");
        assert!(f.starts_with("`````\n"), "{f}");
        assert!(f.ends_with("\n`````"), "{f}");
    }
}
