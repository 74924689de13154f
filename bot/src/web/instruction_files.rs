//! The rollout page's list of the repository's instructions for agents its task was given.

use maud::{Markup, html};

use crate::instructions::REPO_FILE;
use crate::pipeline::bytes_words;
use crate::store::InstructionFile;

fn given(f: &InstructionFile) -> String {
    if f.shown >= f.bytes {
        format!("given whole ({})", bytes_words(f.bytes))
    } else if f.shown == 0 {
        "left out: the size budget was spent by the files before it".to_string()
    } else {
        format!(
            "cut at the size budget: {} of {} given",
            bytes_words(f.shown),
            bytes_words(f.bytes)
        )
    }
}

/// Which instruction files the agent was given, root first, as it read them.
pub fn section(files: &[InstructionFile]) -> Markup {
    html! {
        h2 { "Instructions for agents" }
        @if files.is_empty() {
            p.meta { "None: the repository has no AGENTS.md on the way to the files the task names and no `instructions` in .threadsmith.toml (or the task was run before they were recorded)." }
        } @else {
            p.meta { "The repository's instructions the agent was given, in this order (nearer files later, taking precedence)." }
            ul.files {
                @for f in files {
                    li {
                        code { (f.path) }
                        @if f.path == REPO_FILE { " (its " code { "instructions" } ")" }
                        " · " span.meta { (given(f)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_file_with_what_the_agent_was_given() {
        let file = |path: &str, bytes, shown| InstructionFile {
            path: path.into(),
            bytes,
            shown,
        };
        let html = section(&[
            file("AGENTS.md", 120, 120),
            file("api/<b>AGENTS.md", 40_000, 2_048),
            file(REPO_FILE, 30, 0),
        ])
        .into_string();
        assert!(
            html.contains("<code>AGENTS.md</code> · <span class=\"meta\">given whole (120 bytes)"),
            "{html}"
        );
        assert!(
            html.contains("<code>api/&lt;b&gt;AGENTS.md</code>"),
            "{html}"
        );
        assert!(
            html.contains("cut at the size budget: 2.0 KB of 39.1 KB given"),
            "{html}"
        );
        assert!(html.contains("<code>.threadsmith.toml</code> (its <code>instructions</code>)"));
        assert!(html.contains("left out: the size budget was spent"));
        assert!(
            section(&[])
                .into_string()
                .contains("None: the repository has no AGENTS.md")
        );
    }
}
