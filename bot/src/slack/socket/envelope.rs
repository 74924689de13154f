//! Socket Mode frames, read into slack-morphism's own types, and the acks Slack expects.
//!
//! Slack's frames: `hello` when a connection opens; `disconnect` (reason `warning` a little
//! before a connection is refreshed, `refresh_requested` when it is, `link_disabled` when Socket
//! Mode was turned off for the app); and the envelopes `events_api`, `interactive` and
//! `slash_commands`, each acknowledged by a frame `{"envelope_id": …}` — with a `payload` only
//! where the envelope says `accepts_response_payload` (the slash command's "On it.").

use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;

use crate::chat::ChatEvent;

use super::super::events::{self, EventSettings};

/// A frame as Slack sends it. slack-morphism's `SlackSocketModeEvent` and its acks are not
/// reachable from outside the crate (its `socket_mode` models module is shadowed by the listener
/// module of the same name), so the envelope is read here, and its payload into the library's
/// own `SlackPushEventCallback`, `SlackInteractionEvent` and `SlackCommandEvent`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Hello {
        num_connections: u32,
    },
    Disconnect {
        reason: String,
    },
    EventsApi {
        envelope_id: String,
        payload: Box<SlackPushEventCallback>,
    },
    Interactive {
        envelope_id: String,
        payload: Box<SlackInteractionEvent>,
    },
    SlashCommands {
        envelope_id: String,
        payload: Box<SlackCommandEvent>,
    },
}

/// Any frame naming an envelope, to ack one that cannot be read otherwise.
#[derive(Deserialize)]
struct EnvelopeIdOnly {
    envelope_id: String,
}

/// An ack: the envelope id, and a payload where Slack takes one.
#[derive(Serialize)]
struct Ack<'a, P: Serialize> {
    envelope_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

/// What a text frame from Slack says.
#[derive(Debug)]
pub(super) enum Frame {
    /// A connection opened; how many the app has open.
    Hello(u32),
    /// Slack will close this connection (or has stopped Socket Mode): open another.
    Disconnect(Disconnect),
    Envelope(Envelope),
    /// Not a frame threadsmith can read. If it names an envelope, the ack to send (the payload
    /// never reads better on a retry, so Slack should not retry it).
    Unreadable {
        error: String,
        ack: Option<String>,
    },
}

/// Why Slack sent `disconnect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Disconnect {
    /// `warning` or `refresh_requested` (or a reason Slack added since): a new connection
    /// replaces this one.
    Refresh(String),
    /// `link_disabled`: Socket Mode is off for the app; connecting again fails until it is on.
    LinkDisabled,
}

/// One envelope to store and then acknowledge.
#[derive(Debug)]
pub(super) struct Envelope {
    id: String,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Push(Box<SlackPushEventCallback>),
    Interaction(Box<SlackInteractionEvent>),
    Command(Box<SlackCommandEvent>),
}

/// Reads one text frame.
pub(super) fn parse(text: &str) -> Frame {
    let envelope = |id, body| Frame::Envelope(Envelope { id, body });
    match serde_json::from_str::<Wire>(text) {
        Ok(Wire::Hello { num_connections }) => Frame::Hello(num_connections),
        Ok(Wire::Disconnect { reason }) => Frame::Disconnect(match reason.as_str() {
            "link_disabled" => Disconnect::LinkDisabled,
            _ => Disconnect::Refresh(reason),
        }),
        Ok(Wire::EventsApi {
            envelope_id,
            payload,
        }) => envelope(envelope_id, Body::Push(payload)),
        Ok(Wire::Interactive {
            envelope_id,
            payload,
        }) => envelope(envelope_id, Body::Interaction(payload)),
        Ok(Wire::SlashCommands {
            envelope_id,
            payload,
        }) => envelope(envelope_id, Body::Command(payload)),
        Err(e) => Frame::Unreadable {
            error: e.to_string(),
            ack: serde_json::from_str::<EnvelopeIdOnly>(text)
                .ok()
                .and_then(|e| ack(&e.envelope_id, None::<()>).ok()),
        },
    }
}

fn ack<P: Serialize>(envelope_id: &str, payload: Option<P>) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Ack {
        envelope_id,
        payload,
    })
}

impl Envelope {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// The event to store and its deduplication key; `None` for what threadsmith ignores (it
    /// is acked at once).
    pub(super) fn event(&self, settings: &EventSettings) -> Option<(String, ChatEvent)> {
        match &self.body {
            Body::Push(p) => events::from_push(p, settings),
            Body::Interaction(i) => events::from_interaction(i, settings),
            Body::Command(c) => Some(events::from_command(c)),
        }
    }

    /// The ack frame: the envelope id, and for a slash command the ephemeral "On it." its user
    /// sees at once.
    pub(super) fn ack(&self) -> Result<String, serde_json::Error> {
        match &self.body {
            Body::Command(_) => ack(
                &self.id,
                Some(
                    SlackCommandEventResponse::new(
                        SlackMessageContent::new().with_text("On it.".into()),
                    )
                    .with_response_type(SlackMessageResponseType::Ephemeral),
                ),
            ),
            Body::Push(_) | Body::Interaction(_) => ack(&self.id, None::<()>),
        }
    }
}
