//! The fake's Socket Mode side as tests drive it: connections, envelopes sent, acks seen,
//! `disconnect` and dropped connections (the methods of [`FakeSlack`] that concern Socket Mode).

use super::*;

impl FakeSlack {
    /// Waits until a Socket Mode client is connected.
    pub async fn wait_connected(&self) {
        self.wait_until("a Socket Mode connection", SlackState::connected)
            .await
    }

    /// How many WebSocket connections were opened in all.
    pub fn connections(&self) -> usize {
        self.read(SlackState::connections)
    }

    /// Sends an envelope of `kind` (`events_api`, `interactive`, `slash_commands`) to one of
    /// the open connections, or queues it for the next connection. Returns its `envelope_id`.
    pub async fn send_envelope(
        &self,
        kind: &str,
        payload: Value,
        accepts_response_payload: bool,
    ) -> String {
        self.shared.mutate(|s| {
            let id = format!("env-{:04}", s.next_id());
            let mut envelope = json!({
                "envelope_id": id,
                "type": kind,
                "accepts_response_payload": accepts_response_payload,
                "payload": payload,
            });
            if kind == "events_api" {
                envelope["retry_attempt"] = json!(0);
                envelope["retry_reason"] = json!("");
            }
            s.envelopes.push(id.clone());
            s.deliver(Frame {
                text: envelope.to_string(),
                envelope_id: Some(id.clone()),
            });
            id
        })
    }

    /// Sends any text frame as it is (queued like envelopes while no client is connected).
    pub async fn send_raw(&self, text: &str) {
        let envelope_id = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v["envelope_id"].as_str().map(String::from));
        self.shared.mutate(|s| {
            s.deliver(Frame {
                text: text.into(),
                envelope_id,
            })
        });
    }

    /// Waits for the client's ack of an envelope and returns the whole frame.
    pub async fn ack(&self, envelope_id: &str) -> Value {
        self.wait_for(&format!("the ack of {envelope_id}"), |s| s.ack(envelope_id))
            .await
    }

    pub fn acked_at(&self, envelope_id: &str) -> Option<Instant> {
        self.read(|s| s.acked_at(envelope_id))
    }

    pub fn sent_at(&self, envelope_id: &str) -> Option<Instant> {
        self.read(|s| s.sent_at(envelope_id))
    }

    pub fn unacked(&self) -> Vec<String> {
        self.read(SlackState::unacked)
    }

    /// Sends `{"type":"disconnect","reason":"refresh_requested"}` on every open connection,
    /// which then close; envelopes sent from now on wait for the next connection.
    pub async fn disconnect(&self) {
        self.disconnect_with("refresh_requested").await;
    }

    /// Sends `disconnect` with `reason` (`warning`, `refresh_requested`, `link_disabled`) on
    /// every open connection. Like Slack, the fake sends nothing more on them, still takes
    /// their acks, and closes each after a grace period unless the client closes it first.
    pub async fn disconnect_with(&self, reason: &str) {
        let targets = self.shared.mutate(|s| std::mem::take(&mut s.targets));
        for target in targets {
            let (done, sent) = oneshot::channel();
            if target
                .tx
                .send(Outgoing::Disconnect(reason.into(), done))
                .is_ok()
            {
                let _ = tokio::time::timeout(WAIT_LIMIT, sent).await;
            }
        }
    }

    /// Closes every open connection at once, without `disconnect` (a connection lost): Events
    /// API envelopes they left unacknowledged are delivered again on the next.
    pub fn close_connections(&self) {
        let targets = self.shared.mutate(|s| std::mem::take(&mut s.targets));
        for target in targets {
            let _ = target.tx.send(Outgoing::Close);
        }
    }

    pub(super) fn user_name(&self, id: &str) -> String {
        self.read(|s| s.user_name(id))
    }
}
