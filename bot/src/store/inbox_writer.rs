//! Group commit for the inbox: events that arrive while a write is under way are stored together
//! in the next transaction, so that a burst costs a few commits rather than one each, and no
//! adapter waits behind another's commit for long. Each caller is answered only once its event is
//! durably stored (or found to be a duplicate): acknowledging stays after storing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::journal::{AppendError, Journal};
use super::pending::{Pending, PendingGuard};
use super::{NewEvent, Store, StoreError};

/// The most events one transaction stores.
const MAX_BATCH: usize = 128;

type Reply = oneshot::Sender<Result<Option<i64>, StoreError>>;

/// A handle to the writer task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone)]
pub struct InboxWriter {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<(NewEvent, Reply)>,
    /// Events being stored (not yet answered), whichever way.
    storing: Arc<Pending>,
    /// On SQLite, where [`InboxWriter::record`] journals events (see `journal/`).
    journal: Option<Arc<Journal>>,
}

impl InboxWriter {
    /// Starts the writer task on the current runtime; `journal`, when given, takes the events
    /// [`InboxWriter::record`] is given.
    pub fn start(store: Arc<dyn Store>, journal: Option<Journal>) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(store.clone(), rx));
        Self {
            store,
            tx,
            storing: Arc::default(),
            journal: journal.map(Arc::new),
        }
    }

    /// Waits until no event is being stored, or `at_most`. The loop that handles stored events
    /// calls it before it takes them, so that a burst's acknowledgements (each waiting for its
    /// event to be stored) do not queue behind the handling of the burst's first events on the
    /// store's connection and the CPUs: handling can wait a few milliseconds, an ack should not.
    pub async fn settled(&self, at_most: Duration) {
        // Past the bound the events are taken all the same: under a steady stream of events
        // the writer is never idle.
        if !self.storing.none(at_most).await {
            tracing::debug!("taking events while others are still being stored");
        }
    }

    /// Stores an event durably, for an adapter that needs no answer about duplicates (Slack's
    /// acknowledgements): journaled where there is a journal, the duplicate dropped as it is
    /// moved into the inbox; elsewhere as [`InboxWriter::enqueue`]. Whether it is in the inbox
    /// already (stored directly) rather than journaled (the journal wakes its waiter once moved).
    pub async fn record(&self, event: NewEvent) -> Result<bool, StoreError> {
        let event = match &self.journal {
            Some(journal) => {
                let _storing = PendingGuard::new(&self.storing);
                match journal.append(event) {
                    Ok(()) => return Ok(false),
                    // Closed on shutdown, or full until the mover catches up: expected.
                    Err((event, e @ (AppendError::Closed | AppendError::Full(_)))) => {
                        tracing::debug!(reason = %e, "storing an event directly");
                        event
                    }
                    Err((event, e)) => {
                        tracing::error!(error = %e, "could not journal an event; storing it directly");
                        event
                    }
                }
            }
            None => event,
        };
        self.enqueue(event).await.map(|_| true)
    }

    /// Waits (at most `at_most`) until every recorded event is in the inbox, and closes the
    /// journal: events recorded after are stored directly. On shutdown, once the adapters
    /// stopped taking events, so that other processes find them in the inbox.
    pub async fn drain(&self, at_most: Duration) {
        if let Some(journal) = &self.journal {
            journal.drain(at_most).await;
        }
    }

    /// Stores an event unless one with the same key was stored before; `None` means a duplicate.
    /// Should the writer task be gone (it panicked), the event is stored directly.
    pub async fn enqueue(&self, event: NewEvent) -> Result<Option<i64>, StoreError> {
        let _storing = PendingGuard::new(&self.storing);
        let (reply, answer) = oneshot::channel();
        let event = match self.tx.send((event, reply)).await {
            Ok(()) => match answer.await {
                Ok(result) => return result,
                // The writer dropped the reply without answering: it died mid-batch. The event
                // may or may not be stored; storing it again is deduplicated by its key, but
                // that would call a stored event a duplicate, so say so instead.
                Err(_) => {
                    return Err(StoreError::Shared(
                        "the inbox writer stopped before answering".into(),
                    ));
                }
            },
            Err(mpsc::error::SendError((event, _))) => event,
        };
        tracing::error!("the inbox writer is gone; storing an event directly");
        self.store
            .enqueue(&event.dedupe_key, &event.platform, &event.event)
            .await
    }
}

async fn write_batches(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(NewEvent, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // `recv_many` waits for the first event, then takes whatever else is already waiting.
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.drain(..).unzip();
        match store.enqueue_many(&events).await {
            Ok(ids) => {
                for (reply, id) in replies.into_iter().zip(ids) {
                    // A caller that gave up waiting (its connection closed) needs no answer.
                    let _ = reply.send(Ok(id));
                }
            }
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, events = events.len(), "could not store events");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Shared(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `settled` returns at once when nothing is being stored, waits while an event is, and
    /// returns the moment the last one is answered — not at its bound (an hour).
    #[tokio::test]
    async fn settled_waits_for_events_being_stored_and_no_longer() {
        let services = crate::testing::TestServices::new(crate::testing::config()).await;
        let writer = InboxWriter::start(services.svc.store.clone(), None);
        let hour = Duration::from_secs(3600);
        let start = tokio::time::Instant::now();
        writer.settled(hour).await;
        assert!(start.elapsed() < Duration::from_secs(60), "idle: at once");

        let storing = PendingGuard::new(&writer.storing);
        let waiting = tokio::spawn({
            let writer = writer.clone();
            async move {
                let start = tokio::time::Instant::now();
                writer.settled(hour).await;
                start.elapsed()
            }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "an event is being stored");
        drop(storing);
        let waited = tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .expect("woken when the last event is answered, not at the bound")
            .unwrap();
        assert!(waited < Duration::from_secs(60), "{waited:?}");

        // A real event: counted while stored, and the count is back to none after.
        let stored = writer
            .enqueue(NewEvent {
                dedupe_key: "k1".into(),
                platform: "slack".into(),
                event: "{}".into(),
            })
            .await
            .unwrap();
        assert!(stored.is_some());
        assert_eq!(writer.storing.count(), 0);

        // Past its bound it returns all the same.
        let _stuck = PendingGuard::new(&writer.storing);
        let start = tokio::time::Instant::now();
        writer.settled(Duration::from_millis(25)).await;
        assert!(start.elapsed() >= Duration::from_millis(25));
    }
}
