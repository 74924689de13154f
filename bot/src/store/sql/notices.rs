//! PostgreSQL's change notices: triggers (`migrations/postgres/0006_change_notices.sql`)
//! `NOTIFY` on every write of the inbox, the effects, the publications and the tasks,
//! whichever process makes it; each store listens on a connection of its own and moves its
//! [`Changes`], so that a process waiting for another's write wakes when it is committed.
//! SQLite has no such channel: there only this process's writes are signalled.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::store::Changes;

const INBOX: &str = "threadsmith_inbox";
const EFFECTS: &str = "threadsmith_effects";
const PUBLICATIONS: &str = "threadsmith_publications";
const TASKS: &str = "threadsmith_tasks";
/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause before connecting again after the connection failed.
const BACKOFF: Duration = Duration::from_secs(1);

/// Subscribes (so that every write committed after this returns is signalled), then listens
/// until `stop` is cancelled (when the store is dropped), connecting again after a failure.
pub(super) async fn start(
    url: &str,
    changes: Arc<Changes>,
    stop: CancellationToken,
) -> Result<(), sqlx::Error> {
    let listener = connect(url).await?;
    tokio::spawn(run(url.to_string(), listener, changes, stop));
    Ok(())
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let connect = async {
        let mut listener = PgListener::connect(url).await?;
        listener
            .listen_all([INBOX, EFFECTS, PUBLICATIONS, TASKS])
            .await?;
        Ok(listener)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("listening for change notices took over {CONNECT_TIMEOUT:?}"),
            )))
        })
}

async fn run(
    url: String,
    mut listener: PgListener,
    changes: Arc<Changes>,
    stop: CancellationToken,
) {
    loop {
        let error = tokio::select! {
            () = stop.cancelled() => return,
            e = receive(&mut listener, &changes) => e,
        };
        tracing::warn!(error = %error, "the database's change notices stopped; listening again");
        // Notices sent meanwhile are lost: every waiter looks again.
        changes.everything_written();
        listener = loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(BACKOFF) => {}
            }
            let connected = tokio::select! {
                () = stop.cancelled() => return,
                c = connect(&url) => c,
            };
            match connected {
                Ok(listener) => break listener,
                Err(e) => tracing::warn!(error = %e, "could not listen for change notices"),
            }
        };
        changes.everything_written();
    }
}

/// Moves `changes` at every notice; returns the error that ended the connection.
async fn receive(listener: &mut PgListener, changes: &Changes) -> sqlx::Error {
    loop {
        match listener.try_recv().await {
            Ok(Some(notice)) => match notice.channel() {
                INBOX => changes.inbox_written(),
                EFFECTS => changes.effects_written(),
                PUBLICATIONS => changes.publications_written(),
                _ => changes.tasks_written(),
            },
            // The connection was lost and is made again at the next call; what was sent
            // meanwhile is lost.
            Ok(None) => changes.everything_written(),
            Err(e) => return e,
        }
    }
}
