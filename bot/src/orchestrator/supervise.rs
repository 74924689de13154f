//! Supervision of event handlers: a handler that panics does not leave its event leased for as
//! long as the process lives (its heartbeat would renew the lease forever). The panic is caught,
//! logged with a trace id, the event is marked failed, and the thread (when the event has one) is
//! told, once, that something went wrong on our side.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;

use super::{Bot, EffectKey, HandleError};
use crate::chat::{Actor, ChatEvent, OutMessage, ThreadRef};

/// What became of a handler.
pub(super) enum Handled {
    Finished(Result<(), HandleError>),
    /// It panicked: the trace id names it in the log and in the apology.
    Panicked {
        trace: String,
        message: String,
    },
}

/// The thread an event belongs to, if it names one.
pub(super) fn thread_of_event(event: &ChatEvent) -> Option<ThreadRef> {
    match event {
        ChatEvent::Trigger { thread, .. }
        | ChatEvent::Button { thread, .. }
        | ChatEvent::RepoChosen { thread, .. } => Some(thread.clone()),
        ChatEvent::Slash { .. }
        | ChatEvent::RetrySubmitted { .. }
        | ChatEvent::PlanRevision { .. }
        | ChatEvent::QuestionExpired { .. }
        | ChatEvent::DirectMessage { .. } => None,
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// The apology posted in the thread: no internal detail, only the trace id to quote.
pub(super) fn apology(trace: &str) -> String {
    format!(
        "Sorry, something went wrong on my side while handling this, and I stopped. \
         If you tell the people who run threadsmith, trace `{trace}` helps them find it."
    )
}

impl Bot {
    /// Runs the handler of one event, as `actor` (see [`crate::chat::with_actor`]), catching a
    /// panic.
    pub(super) async fn handle_caught(
        self: &Arc<Self>,
        actor: Option<Actor>,
        event: ChatEvent,
    ) -> Handled {
        let handler = crate::chat::with_actor(actor, self.handle(event));
        match AssertUnwindSafe(handler).catch_unwind().await {
            Ok(result) => Handled::Finished(result),
            Err(panic) => {
                let trace = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
                Handled::Panicked {
                    trace,
                    message: panic_message(panic.as_ref()),
                }
            }
        }
    }

    /// Tells the thread, once per event, that its handler failed on our side.
    pub(super) async fn apologise(&self, inbox_id: i64, thread: &ThreadRef, trace: &str) {
        let key = EffectKey::Panicked { inbox_id };
        let message = OutMessage::Text(apology(trace));
        if let Err(e) = self.post_once(&key, thread, &message).await {
            tracing::error!(error = %e, trace, "could not tell the thread a handler failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let caught = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "plain");
        let n = 3;
        let caught = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "formatted 3");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "a panic without a message");
    }

    #[test]
    fn the_apology_names_the_trace_and_nothing_internal() {
        let text = apology("abc123");
        assert!(text.contains("`abc123`"));
        assert!(!text.contains("panic"));
    }
}
