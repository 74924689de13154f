//! Conversation steps many tests take: a slash command sent and answered, a thread's link.

use serde_json::Value;

use super::FakeSlack;
use super::web::TEAM_DOMAIN;

impl FakeSlack {
    /// Sends `command text` in `channel` as `user` (a `slash_commands` envelope that accepts a
    /// response payload) and waits for the bot's answer to the envelope: its acknowledgement.
    pub async fn slash(&self, command: &str, text: &str, channel: &str, user: &str) -> Value {
        let payload = self.slash_command(command, text, channel, user);
        let envelope_id = self.send_envelope("slash_commands", payload, true).await;
        self.ack(&envelope_id).await
    }

    /// The link to a thread (its parent message at `ts`), as Slack's "Copy link" gives it.
    pub fn thread_link(&self, channel: &str, ts: &str) -> String {
        format!(
            "https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{}",
            ts.replace('.', "")
        )
    }
}
