//! SQLite's checkpoints, off the writers' path. In WAL mode a commit appends to the write-ahead
//! log; a *checkpoint* copies the log back into the database file and syncs both to disk. By
//! default SQLite runs one inside whichever commit finds the log over 1,000 pages, so that
//! commit — often an inbox write that an acknowledgement waits for — also waits for the copy
//! and two `fsync`s: 10 ms and more on a busy disk (the ack benchmark found it,
//! docs/BENCHMARKS.md). Here the store's own connection checkpoints only as a safety net (when
//! the log is far behind, [`SAFETY_NET_PAGES`]), and a connection of this task's own runs a
//! `PASSIVE` checkpoint every [`INTERVAL`], which waits for no writer and no writer waits for.

use std::time::Duration;

use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the log is copied back.
const INTERVAL: Duration = Duration::from_secs(1);

/// How long one checkpoint (or connecting) may take before the connection is dropped and made
/// again.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// The log's size (pages of 4 kB) past which a commit checkpoints after all: only when this task
/// has fallen far behind (the disk is that slow, or the task cannot connect).
pub(super) const SAFETY_NET_PAGES: u32 = 16_000;

/// What the last checkpoint found: the log's frames and how many of them are in the database
/// file (both 0 after the log was restarted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpointed {
    pub log_frames: i64,
    pub copied_frames: i64,
}

/// Starts checkpointing the database at `url` every [`INTERVAL`] until `stop`; the receiver
/// sees each checkpoint's result.
pub(super) fn start(url: String, stop: CancellationToken) -> watch::Receiver<Checkpointed> {
    let (tx, rx) = watch::channel(Checkpointed::default());
    tokio::spawn(run(url, stop, tx));
    rx
}

async fn run(url: String, stop: CancellationToken, tx: watch::Sender<Checkpointed>) {
    let mut conn: Option<AnyConnection> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
        if conn.is_none() {
            match tokio::time::timeout(TIME_LIMIT, AnyConnection::connect(&url)).await {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not open a connection to checkpoint the database");
                    continue;
                }
                Err(_) => {
                    tracing::warn!("opening a connection to checkpoint the database timed out");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let outcome = tokio::select! {
            _ = stop.cancelled() => break,
            outcome = tokio::time::timeout(TIME_LIMIT, checkpoint(c)) => outcome,
        };
        match outcome {
            Ok(Ok(done)) => {
                tx.send_replace(done);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "checkpointing the database failed");
                conn = None;
            }
            Err(_) => {
                tracing::warn!(limit = ?TIME_LIMIT, "checkpointing the database took too long");
                conn = None;
            }
        }
    }
    if let Some(c) = conn
        && let Err(e) = c.close().await
    {
        tracing::debug!(error = %e, "closing the checkpoint connection failed");
    }
}

/// One `PASSIVE` checkpoint: copies what it can without waiting for readers or writers (another
/// process checkpointing at the same moment makes it a no-op).
async fn checkpoint(conn: &mut AnyConnection) -> Result<Checkpointed, sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    Ok(Checkpointed {
        log_frames: row.try_get(1)?,
        copied_frames: row.try_get(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::SqlStore;
    use crate::store::InboxStore;

    /// Commits do not checkpoint (short of the safety net); the task does, soon after.
    #[tokio::test]
    async fn the_log_is_copied_back_beside_the_writers() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqlStore::open(&url).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(pages, i64::from(super::SAFETY_NET_PAGES));
        let mut seen = store.checkpoints.clone().expect("a file database");
        seen.mark_unchanged();
        for k in 0..50 {
            store
                .enqueue(&format!("key-{k}"), "slack", &"x".repeat(2_000))
                .await
                .unwrap();
        }
        let caught_up = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            seen.wait_for(|c| c.log_frames > 0 && c.copied_frames == c.log_frames),
        )
        .await
        .expect("a checkpoint within the minute")
        .map(|c| *c)
        .unwrap();
        assert!(caught_up.log_frames > 0, "{caught_up:?}");
    }
}
