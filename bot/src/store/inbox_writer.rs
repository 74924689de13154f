//! Group commit for the inbox: events that arrive while a write is under way are stored together
//! in the next transaction, so that a burst costs a few commits rather than one each, and no
//! adapter waits behind another's commit for long. Each caller is answered only once its event is
//! durably stored (or found to be a duplicate): acknowledging stays after storing.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{NewEvent, Store, StoreError};

/// The most events one transaction stores.
const MAX_BATCH: usize = 128;

type Reply = oneshot::Sender<Result<Option<i64>, StoreError>>;

/// A handle to the writer task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone)]
pub struct InboxWriter {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<(NewEvent, Reply)>,
}

impl InboxWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(store.clone(), rx));
        Self { store, tx }
    }

    /// Stores an event unless one with the same key was stored before; `None` means a duplicate.
    /// Should the writer task be gone (it panicked), the event is stored directly.
    pub async fn enqueue(&self, event: NewEvent) -> Result<Option<i64>, StoreError> {
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
