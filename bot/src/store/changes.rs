//! The store's own signals: a counter per concern (the inbox, the effects, the publications,
//! the tasks) that moves whenever this process writes it,
//! so that a waiter wakes when what it waits for may have changed rather than polling.
//!
//! The race-free way to wait: take a receiver, read the store, and only then wait for a
//! change (a write between the read and the wait still wakes the waiter). Writes by other
//! processes sharing the database are not signalled; a waiter that must see them also looks
//! again at its own pace (the workers' poll interval).

use tokio::sync::watch;

#[derive(Debug)]
pub struct Changes {
    inbox: watch::Sender<u64>,
    effects: watch::Sender<u64>,
    publications: watch::Sender<u64>,
    tasks: watch::Sender<u64>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            inbox: watch::Sender::new(0),
            effects: watch::Sender::new(0),
            publications: watch::Sender::new(0),
            tasks: watch::Sender::new(0),
        }
    }
}

fn bump(counter: &watch::Sender<u64>) {
    // `send_modify` updates the value even while nobody listens.
    counter.send_modify(|n| *n = n.wrapping_add(1));
}

impl Changes {
    /// Moves when an event is stored, taken, or handled.
    pub fn inbox(&self) -> watch::Receiver<u64> {
        self.inbox.subscribe()
    }

    /// Moves when an idempotency record or a request's claim is written or given back.
    pub fn effects(&self) -> watch::Receiver<u64> {
        self.effects.subscribe()
    }

    /// Moves when a publication ends (published, failed, dropped) or changes hands.
    pub fn publications(&self) -> watch::Receiver<u64> {
        self.publications.subscribe()
    }

    /// Moves when a task is stored, changes state, base or worker, is admitted, or is asked to
    /// cancel.
    pub fn tasks(&self) -> watch::Receiver<u64> {
        self.tasks.subscribe()
    }

    pub(crate) fn inbox_written(&self) {
        bump(&self.inbox);
    }

    pub(crate) fn effects_written(&self) {
        bump(&self.effects);
    }

    pub(crate) fn publications_written(&self) {
        bump(&self.publications);
    }

    pub(crate) fn tasks_written(&self) {
        bump(&self.tasks);
    }

    /// After notices may have been lost: every waiter looks again.
    pub(crate) fn everything_written(&self) {
        self.inbox_written();
        self.effects_written();
        self.publications_written();
        self.tasks_written();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_after_subscribing_wakes_the_waiter() {
        let changes = Changes::default();
        let mut inbox = changes.inbox();
        let effects = changes.effects();
        changes.inbox_written();
        inbox.changed().await.unwrap();
        assert!(!effects.has_changed().unwrap(), "only the inbox moved");
        changes.effects_written();
        assert!(effects.has_changed().unwrap());
    }
}
