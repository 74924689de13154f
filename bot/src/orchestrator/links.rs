//! `/fix <link>`: the thread a pasted Slack or Discord message link points into.

use super::Bot;
use crate::chat::ThreadRef;
use crate::chat::commands::ThreadLink;

impl Bot {
    /// The linked thread and the message that asks (its trigger), when the link is a thread
    /// of this platform and workspace.
    pub(super) async fn linked_thread(
        &self,
        platform: &str,
        workspace: &str,
        link: ThreadLink,
    ) -> Option<(ThreadRef, String)> {
        match link {
            ThreadLink::Slack { channel, ts } if platform == "slack" => Some((
                ThreadRef {
                    platform: platform.to_string(),
                    workspace: workspace.to_string(),
                    channel,
                    thread: ts.clone(),
                },
                ts,
            )),
            ThreadLink::Discord {
                guild,
                channel,
                message,
            } if platform == "discord" && guild == workspace => {
                let thread = self
                    .port
                    .linked_thread(ThreadRef {
                        platform: platform.to_string(),
                        workspace: workspace.to_string(),
                        channel,
                        thread: message.clone(),
                    })
                    .await;
                Some((thread, message))
            }
            _ => None,
        }
    }
}
