//! Task specs: what the agents are asked to do, as structured fields and as Markdown.
//!
//! From chat, a model turns a thread into a spec; from the CLI (or when the model fails), the
//! plain spec made by [`TaskSpec::from_text`] is used.

/// A task spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskSpec {
    pub title: String,
    pub problem: String,
    pub expected: Option<String>,
    pub acceptance: Vec<String>,
    pub hints: Vec<String>,
    /// Feedback from a Retry.
    pub feedback: Option<String>,
}

/// Titles stay short enough for a chat header or a pull request.
const TITLE_CHARS: usize = 80;

fn title_of(text: &str) -> String {
    let first = text
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("Untitled task");
    match first.char_indices().nth(TITLE_CHARS) {
        Some((i, _)) => format!("{}…", first[..i].trim_end()),
        None => first.to_string(),
    }
}

impl TaskSpec {
    /// The plain spec: the text is the problem, its first line the title.
    pub fn from_text(text: &str) -> Self {
        Self {
            title: title_of(text),
            problem: text.trim().to_string(),
            ..Self::default()
        }
    }

    /// The spec as Markdown for the agent, with what it needs to know about the repository.
    pub fn to_markdown(&self, repo: &RepoFacts<'_>) -> String {
        let mut md = format!(
            "# {}\n\n## Problem\n\n{}\n",
            self.title,
            self.problem.trim()
        );
        if let Some(expected) = &self.expected {
            md.push_str(&format!("\n## Expected behaviour\n\n{}\n", expected.trim()));
        }
        let mut checks = self.acceptance.clone();
        if let Some(test) = repo.test {
            checks.push(format!("The test command `{test}` passes."));
        }
        if !checks.is_empty() {
            md.push_str("\n## Acceptance checks\n\n");
            for c in &checks {
                md.push_str(&format!("- {c}\n"));
            }
        }
        if !self.hints.is_empty() {
            md.push_str("\n## Hints\n\n");
            for h in &self.hints {
                md.push_str(&format!("- {h}\n"));
            }
        }
        if let Some(feedback) = &self.feedback {
            md.push_str(&format!(
                "\n## Feedback on an earlier attempt\n\n{}\n",
                feedback.trim()
            ));
        }
        md.push_str(&format!(
            "\n## Repository\n\n{} at `{}` (commit {}), checked out at /workspace.\n",
            repo.name,
            repo.base_ref,
            &repo.commit[..repo.commit.len().min(12)]
        ));
        md
    }
}

/// What the agent is told about the repository.
pub struct RepoFacts<'a> {
    pub name: &'a str,
    pub base_ref: &'a str,
    pub commit: &'a str,
    pub test: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_specs_take_the_first_line_as_title() {
        let spec = TaskSpec::from_text("\n\n## add() is wrong\nIt returns a - b.\n");
        assert_eq!(spec.title, "add() is wrong");
        assert_eq!(spec.problem, "## add() is wrong\nIt returns a - b.");
        let long = TaskSpec::from_text(&"x".repeat(200));
        assert_eq!(long.title.chars().count(), TITLE_CHARS + 1);
    }

    #[test]
    fn markdown_names_the_checks_and_the_repository() {
        let mut spec = TaskSpec::from_text("Fix add");
        spec.feedback = Some("use the v2 API".into());
        let md = spec.to_markdown(&RepoFacts {
            name: "calc",
            base_ref: "main",
            commit: "0123456789abcdef",
            test: Some("bash test.sh"),
        });
        assert_eq!(
            md,
            "# Fix add\n\n## Problem\n\nFix add\n\n## Acceptance checks\n\n- The test command `bash test.sh` passes.\n\n## Feedback on an earlier attempt\n\nuse the v2 API\n\n## Repository\n\ncalc at `main` (commit 0123456789ab), checked out at /workspace.\n"
        );
    }
}
