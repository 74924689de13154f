//! Stopping: once the loop stops taking events, the handlers at work get the shutdown grace
//! (`workers.shutdown_grace_secs`) to finish. What is still running then is handed over: this
//! process withdraws as a worker (its events are taken again at once, its tasks adopted and
//! reported in their threads, once, by another live process — `Bot::reconcile`), stops its
//! rollouts (their containers removed) and says nothing more in chat.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::Bot;

/// How long handed-over handlers get to stop their rollouts and remove their containers.
const STOP_BOUND: Duration = Duration::from_secs(20);

/// Forgets the handlers that ended (each catches its own panic; a join error is logged).
pub(super) fn reap(handlers: &mut JoinSet<()>) {
    while let Some(ended) = handlers.try_join_next() {
        log_join(ended);
    }
}

fn log_join(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended
        && !e.is_cancelled()
    {
        tracing::error!(error = %e, "an event's handler ended abnormally");
    }
}

async fn join_all(handlers: &mut JoinSet<()>) {
    while let Some(ended) = handlers.join_next().await {
        log_join(ended);
    }
}

impl Bot {
    /// Stops at once, without the shutdown grace: running tasks are cancelled (and end as
    /// cancelled in their threads), and the handlers get [`STOP_BOUND`] to end (their
    /// sandboxes removed) before they are abandoned.
    pub fn hurry(&self) {
        self.hurry.cancel();
    }

    /// After the loop stopped taking events: lets the handlers finish within the grace, then
    /// hands over what is left (see the module's documentation).
    pub(super) async fn stop_handlers(self: &Arc<Self>, mut handlers: JoinSet<()>) {
        if handlers.is_empty() {
            return;
        }
        let grace = self.svc.config.shutdown_grace();
        tracing::info!(
            handlers = handlers.len(),
            ?grace,
            "stopping: letting the events in progress finish"
        );
        tokio::select! {
            _ = join_all(&mut handlers) => {}
            _ = tokio::time::sleep(grace) => self.hand_over(handlers).await,
            _ = self.hurry.cancelled() => {
                for t in self.running.tokens() {
                    t.cancel();
                }
                stop_within_bound(&mut handlers).await;
            }
        }
    }

    async fn hand_over(&self, mut handlers: JoinSet<()>) {
        tracing::warn!(
            handlers = handlers.len(),
            tasks = self.running.ids().len(),
            "the shutdown grace is over: handing the rest over to other processes"
        );
        if let Err(e) = self.svc.retire().await {
            // Its heartbeat has stopped: the others take over when its lease lapses.
            tracing::error!(error = %e, "could not withdraw this process; others take over its work when its lease lapses");
        }
        for t in self.running.tokens() {
            t.cancel();
        }
        stop_within_bound(&mut handlers).await;
    }
}

/// Waits for cancelled handlers to end, at most [`STOP_BOUND`]; then aborts the rest.
async fn stop_within_bound(handlers: &mut JoinSet<()>) {
    if tokio::time::timeout(STOP_BOUND, join_all(handlers))
        .await
        .is_err()
    {
        tracing::error!(
            handlers = handlers.len(),
            "handlers did not stop in time; abandoning them"
        );
        handlers.abort_all();
    }
}
