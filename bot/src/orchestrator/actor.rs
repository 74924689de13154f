//! The person behind an event, stored with it: any process that takes the event from the
//! shared inbox can check their groups and answer them privately (see [`crate::chat::Actor`]).

use super::Bot;
use crate::chat::{Actor, ChatEvent};
use crate::store::StoreError;

/// The key under which the actor is stored next to the event's own fields.
const ACTOR_KEY: &str = "actor";

impl Bot {
    /// [`Bot::submit`], with what the platform showed about the person behind the event.
    pub async fn submit_as(
        &self,
        dedupe_key: &str,
        event: &ChatEvent,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let mut json = serde_json::to_value(event)
            .map_err(|e| StoreError::Corrupt(format!("event not serializable: {e}")))?;
        let actor = serde_json::to_value(actor)
            .map_err(|e| StoreError::Corrupt(format!("actor not serializable: {e}")))?;
        match json.as_object_mut() {
            Some(fields) => {
                fields.insert(ACTOR_KEY.into(), actor);
            }
            None => return Err(StoreError::Corrupt("an event is not an object".into())),
        }
        self.submit_json(dedupe_key, &json.to_string()).await
    }
}

/// The actor stored with an event, if any (events stored without one, and older rows, have
/// none).
pub(super) fn stored_actor(event_json: &str) -> Option<Actor> {
    let v: serde_json::Value = serde_json::from_str(event_json).ok()?;
    let actor = v.get(ACTOR_KEY)?.clone();
    match serde_json::from_value(actor) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(error = %e, "an event's stored actor cannot be read");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::PrivateReply;

    #[test]
    fn an_actor_round_trips_next_to_its_event() {
        let event = ChatEvent::RetrySubmitted {
            task_id: "0a".into(),
            user: "7".into(),
            feedback: String::new(),
            from: String::new(),
        };
        let actor = Actor {
            user: "7".into(),
            groups: vec!["15".into()],
            reply: Some(PrivateReply {
                handle: "tok".into(),
                channel: "13".into(),
                unanswered: false,
                expires_at: chrono::Utc::now(),
            }),
        };
        let mut v = serde_json::to_value(&event).unwrap();
        v["actor"] = serde_json::to_value(&actor).unwrap();
        let json = v.to_string();
        assert_eq!(serde_json::from_str::<ChatEvent>(&json).unwrap(), event);
        assert_eq!(stored_actor(&json), Some(actor));
        assert_eq!(stored_actor(&serde_json::to_string(&event).unwrap()), None);
    }
}
