//! What a test does to the fake Discord beyond posting: the gateway connection, interactions,
//! and reading back what the bot did.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{APP_ID, Channel, FakeDiscord, GUILD_ID, Msg, WebhookMsg};

impl FakeDiscord {
    // --- gateway control ---------------------------------------------------------------

    pub async fn wait_connected(&self) {
        self.wait_until("the gateway's READY", |f| f.lock().ready && f.connected())
            .await;
    }

    pub fn connected(&self) -> bool {
        self.lock().outbox.is_some()
    }

    /// The next `method` call whose path starts with `path_prefix` (e.g.
    /// `/api/v10/channels/123/messages`) is answered 429, asking to retry after `retry_after`
    /// seconds.
    pub fn rate_limit_next(&self, method: &str, path_prefix: &str, retry_after: f64) {
        self.lock()
            .rate_limits
            .push((method.into(), path_prefix.into(), retry_after));
    }

    /// When each call arrived, in order: (method, path, at).
    pub fn arrivals(&self) -> Vec<(String, String, Instant)> {
        self.lock().arrivals.clone()
    }

    /// Turns the application's Message Content Intent (Developer Portal → Bot) on or off; the
    /// bot reads it at start-up.
    pub fn set_message_content_intent(&self, on: bool) {
        self.lock().app_message_content = on;
    }

    pub fn identifies(&self) -> usize {
        self.lock().identifies
    }

    pub fn resumes(&self) -> usize {
        self.lock().resumes
    }

    /// Cuts the connection without a close frame, as a network drop does.
    pub async fn drop_connection(&self) {
        let kill = {
            let mut s = self.lock();
            s.outbox = None;
            s.kill.take()
        };
        if let Some(k) = kill {
            let _ = k.send(());
        }
    }

    // --- interactions -----------------------------------------------------------------

    pub async fn send_interaction(&self, payload: Value) -> String {
        let id = payload["id"].as_str().unwrap_or_default().to_string();
        self.lock()
            .interactions
            .entry(id.clone())
            .or_default()
            .sent_at = Some(Instant::now());
        self.dispatch("INTERACTION_CREATE", payload);
        id
    }

    /// Like `send_interaction`, but over the oldest session that is still connected after
    /// another process identified (two bot processes each hold a gateway session).
    pub async fn send_interaction_to_earlier_session(&self, payload: Value) -> String {
        let id = payload["id"].as_str().unwrap_or_default().to_string();
        let mut s = self.lock();
        s.interactions.entry(id.clone()).or_default().sent_at = Some(Instant::now());
        let earlier = s
            .earlier
            .first_mut()
            .expect("a second session identified while the first is connected");
        earlier.seq += 1;
        let frame = json!({"op": 0, "s": earlier.seq, "t": "INTERACTION_CREATE", "d": payload});
        earlier
            .outbox
            .send(frame.to_string())
            .expect("the earlier session is connected");
        id
    }

    fn interaction(&self, kind: u8, user: &str, channel_id: &str, data: Value) -> Value {
        let id = self.snowflake();
        let channel = self
            .lock()
            .channels
            .get(channel_id)
            .cloned()
            .unwrap_or(Channel {
                id: channel_id.into(),
                kind: 0,
                name: "general".into(),
                parent: None,
            });
        json!({"id": id, "application_id": APP_ID, "type": kind, "data": data,
               "guild_id": GUILD_ID, "channel": self.channel_json(&channel),
               "channel_id": channel_id, "member": self.member(user),
               "token": format!("itok-{}", uuid::Uuid::new_v4().simple()), "version": 1,
               "app_permissions": "2248473465835073", "locale": "en-US", "guild_locale": "en-US",
               "entitlements": [], "authorizing_integration_owners": {"0": GUILD_ID},
               "context": 0, "attachment_size_limit": 10_485_760})
    }

    pub fn button_click(
        &self,
        user: &str,
        channel_id: &str,
        message_id: &str,
        custom_id: &str,
    ) -> Value {
        let message = self
            .message(channel_id, message_id)
            .map(|m| self.message_json(&m))
            .unwrap_or(Value::Null);
        let mut p = self.interaction(
            3,
            user,
            channel_id,
            json!({"custom_id": custom_id, "component_type": 2}),
        );
        p["message"] = message;
        p
    }

    pub fn modal_submit(
        &self,
        user: &str,
        channel_id: &str,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> Value {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
            .collect();
        self.interaction(
            5,
            user,
            channel_id,
            json!({"custom_id": custom_id, "components": rows}),
        )
    }

    pub fn slash_command(
        &self,
        user: &str,
        channel_id: &str,
        name: &str,
        text: Option<&str>,
    ) -> Value {
        let mut data = json!({"id": "1700000000000000001", "name": name, "type": 1});
        if let Some(t) = text {
            data["options"] = json!([{"name": "text", "type": 3, "value": t}]);
        }
        self.interaction(2, user, channel_id, data)
    }

    pub fn message_command(&self, user: &str, channel_id: &str, target: &str, name: &str) -> Value {
        let message = self
            .message(channel_id, target)
            .map(|m| self.message_json(&m))
            .unwrap_or(Value::Null);
        self.interaction(
            2,
            user,
            channel_id,
            json!({"id": "1700000000000000002", "name": name, "type": 3, "target_id": target,
                   "resolved": {"messages": {target: message}}}),
        )
    }

    // --- inspection -------------------------------------------------------------------

    pub fn messages(&self, channel_id: &str) -> Vec<Msg> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id)
            .cloned()
            .collect()
    }

    pub fn message(&self, channel_id: &str, id: &str) -> Option<Msg> {
        self.lock()
            .messages
            .iter()
            .find(|m| m.channel_id == channel_id && m.id == id)
            .cloned()
    }

    pub fn reactions(&self, channel_id: &str, message_id: &str) -> Vec<String> {
        self.lock()
            .reactions
            .get(&(channel_id.to_string(), message_id.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn interaction_responses(&self, id: &str) -> Vec<Value> {
        self.lock()
            .interactions
            .get(id)
            .map(|i| i.responses.clone())
            .unwrap_or_default()
    }

    pub fn responded_within(&self, id: &str) -> Option<Duration> {
        let s = self.lock();
        let i = s.interactions.get(id)?;
        Some(i.first_response?.duration_since(i.sent_at?))
    }

    pub fn webhook_messages(&self) -> Vec<WebhookMsg> {
        self.lock().webhooks.clone()
    }

    pub fn threads(&self) -> Vec<(String, String)> {
        self.lock()
            .channels
            .values()
            .filter_map(|c| c.parent.clone().map(|p| (c.id.clone(), p)))
            .collect()
    }

    pub fn calls(&self) -> Vec<(String, String)> {
        self.lock().calls.clone()
    }

    pub fn registered_commands(&self) -> Value {
        self.lock().commands.clone()
    }

    pub async fn wait_until(&self, what: &str, pred: impl Fn(&FakeDiscord) -> bool) {
        self.wait_for(what, |f| pred(f).then_some(())).await
    }

    /// Waits until `f` finds something; it is asked now and after every write of the state.
    /// Panics after 60 s, naming `what` and showing the state.
    pub async fn wait_for<T>(&self, what: &str, f: impl Fn(&FakeDiscord) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Subscribed before asking, so that a write in between still wakes the wait.
            let mut changes = self.changed.subscribe();
            if let Some(v) = f(self) {
                return v;
            }
            let woken = tokio::time::timeout_at(deadline.into(), changes.changed()).await;
            if woken.is_err() {
                let s = self.lock();
                let msgs: Vec<String> = s
                    .messages
                    .iter()
                    .map(|m| {
                        format!(
                            "{} {} {} {:?} {}",
                            m.channel_id, m.id, m.author_id, m.content, m.components
                        )
                    })
                    .collect();
                panic!(
                    "timed out after 60s waiting for {what}\ncalls: {:?}\nmessages:\n{}\nwebhooks: {:?}",
                    s.calls,
                    msgs.join("\n"),
                    s.webhooks
                );
            }
            woken
                .expect("checked above")
                .expect("the fake holds the sender");
        }
    }
}
