//! Waiting for the inbox to drain, on the store's own signal rather than a poll.

use std::time::Duration;

use threadsmith_bot::store::{Store, journal};

/// Waits until every stored chat event (acknowledged ones in the journal included) is handled,
/// by whichever process handles it: woken by
/// the store's inbox changes (this process's writes, and on PostgreSQL every process's), and
/// failing the test when events are still unhandled after `limit`.
pub async fn settle(store: &dyn Store, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        // Subscribed before reading, so that a change in between still wakes the wait.
        let mut changes = store.inbox_changes();
        // Acknowledged events may still be in the journal, on their way into the inbox: the
        // journal wakes the watchers once it is emptied. Read before the inbox, so that an
        // event moved in between is counted there.
        let journaled = store
            .inbox_journal_dir()
            .is_some_and(|dir| journal::holds_events(&dir));
        let pending = store.inbox_pending().await.expect("count pending events");
        if pending == 0 && !journaled {
            return;
        }
        tokio::time::timeout_at(deadline, changes.changed())
            .await
            .unwrap_or_else(|_| panic!("{pending} events left unhandled after {limit:?}"))
            .expect("the store is open");
    }
}
