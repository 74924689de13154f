//! The status listing (`@bot status`, `/fix status`): one line per task, the task's title (model
//! or thread text: untrusted) shown literally.

use super::{Bot, HandleError};
use crate::chat::ThreadRef;
use crate::chat::markdown::literal;

/// `• \`abcd1234\` <title, literally> — <state>`.
pub(super) fn task_line(task_id: &str, title: &str, state: &str) -> String {
    let short: String = task_id.chars().take(8).collect();
    format!("• `{short}` {} — {state}", literal(title))
}

impl Bot {
    pub(super) async fn status_text(&self, thread: &ThreadRef) -> Result<String, HandleError> {
        let tasks = self
            .svc
            .store
            .recent_channel_tasks(&thread.platform, &thread.channel, 20)
            .await?;
        let mut lines = Vec::new();
        for t in tasks {
            lines.push(task_line(&t.id, &t.title, t.state.as_str()));
        }
        Ok(if lines.is_empty() {
            "No tasks in this channel yet.".into()
        } else {
            format!("Recent tasks here:\n{}", lines.join("\n"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_title_is_listed_literally() {
        let line = task_line(
            "0123456789abcdef",
            "@everyone @here <@&1> <@14> [x](https://evil.example) **b**",
            "running",
        );
        assert!(line.starts_with("• `01234567` "), "{line}");
        assert!(line.ends_with(" — running"), "{line}");
        for bad in ["@everyone", "@here", "<@", "[x](", "**"] {
            assert!(!line.contains(bad), "{bad} in {line}");
        }
        // Discord shows the message as written: nothing in it is an entity or a link.
        let discord = crate::discord::render::render(&crate::chat::OutMessage::Text(line.clone()));
        assert!(!discord.content.contains("<@") && !discord.content.contains("@everyone"));
    }
}
