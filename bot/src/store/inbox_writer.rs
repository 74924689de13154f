//! Group commit for the inbox: events that arrive while a write is under way are stored together
//! in the next transaction, so that a burst costs a few commits rather than one each, and no
//! adapter waits behind another's commit for long. Each caller is answered only once its event is
//! durably stored (or found to be a duplicate): acknowledging stays after storing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use super::{NewEvent, Store, StoreError};

/// The most events one transaction stores.
const MAX_BATCH: usize = 128;

type Reply = oneshot::Sender<Result<Option<i64>, StoreError>>;

/// A handle to the writer task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone)]
pub struct InboxWriter {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<(NewEvent, Reply)>,
    storing: Arc<Storing>,
}

/// How many events are being stored (not yet answered), and a wake-up for when none is.
#[derive(Default)]
struct Storing {
    count: AtomicUsize,
    none: Notify,
}

/// Counts one event as being stored for as long as it lives (a caller that gives up waiting
/// drops it too).
struct StoringGuard(Arc<Storing>);

impl StoringGuard {
    fn new(storing: &Arc<Storing>) -> Self {
        storing.count.fetch_add(1, Ordering::AcqRel);
        Self(storing.clone())
    }
}

impl Drop for StoringGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none.notify_waiters();
        }
    }
}

impl InboxWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(store.clone(), rx));
        Self {
            store,
            tx,
            storing: Arc::default(),
        }
    }

    /// Waits until no event is being stored, or `at_most`. The loop that handles stored events
    /// calls it before it takes them, so that a burst's acknowledgements (each waiting for its
    /// event to be stored) do not queue behind the handling of the burst's first events on the
    /// store's connection and the CPUs: handling can wait a few milliseconds, an ack should not.
    pub async fn settled(&self, at_most: Duration) {
        let wait = async {
            loop {
                let none = self.storing.none.notified();
                tokio::pin!(none);
                none.as_mut().enable();
                if self.storing.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                none.await;
            }
        };
        // Past the bound the events are taken all the same: under a steady stream of events
        // the writer is never idle.
        if tokio::time::timeout(at_most, wait).await.is_err() {
            tracing::debug!("taking events while others are still being stored");
        }
    }

    /// Stores an event unless one with the same key was stored before; `None` means a duplicate.
    /// Should the writer task be gone (it panicked), the event is stored directly.
    pub async fn enqueue(&self, event: NewEvent) -> Result<Option<i64>, StoreError> {
        let _storing = StoringGuard::new(&self.storing);
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
        let writer = InboxWriter::start(services.svc.store.clone());
        let hour = Duration::from_secs(3600);
        let start = tokio::time::Instant::now();
        writer.settled(hour).await;
        assert!(start.elapsed() < Duration::from_secs(60), "idle: at once");

        let storing = StoringGuard::new(&writer.storing);
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
        assert_eq!(writer.storing.count.load(Ordering::Acquire), 0);

        // Past its bound it returns all the same.
        let _stuck = StoringGuard::new(&writer.storing);
        let start = tokio::time::Instant::now();
        writer.settled(Duration::from_millis(25)).await;
        assert!(start.elapsed() >= Duration::from_millis(25));
    }
}
