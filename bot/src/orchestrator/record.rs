//! Recording events for adapters that acknowledge whatever the answer (Slack's): durable
//! before the ack, without the inbox's commit on the ack's path where there is a journal.

use std::time::Duration;

use super::Bot;
use crate::chat::ChatEvent;
use crate::store::{NewEvent, StoreError};

impl Bot {
    /// Stores an event durably, without saying whether it was new: on SQLite it is journaled
    /// and moved into the inbox a moment later (a duplicate is dropped then), which keeps the
    /// commit off the acknowledgement's path (see `store/journal/`). For adapters that ack
    /// whatever the answer (Slack).
    pub async fn record(&self, dedupe_key: &str, event: &ChatEvent) -> Result<(), StoreError> {
        let json = serde_json::to_string(event)
            .map_err(|e| StoreError::Corrupt(format!("event not serializable: {e}")))?;
        let in_inbox = self
            .inbox
            .record(NewEvent {
                dedupe_key: dedupe_key.to_string(),
                platform: self.settings.platform.to_string(),
                event: json,
            })
            .await?;
        // Journaled, the journal wakes the loop once the event is moved into the inbox.
        if in_inbox {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Once the adapters stopped taking events (shutdown): waits, at most `at_most`, until the
    /// events recorded are in the inbox, where other processes find them.
    pub async fn drain_inbox(&self, at_most: Duration) {
        self.inbox.drain(at_most).await;
    }
}
