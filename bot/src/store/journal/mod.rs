//! The inbox's journal, for a SQLite database: takes the commit off the acknowledgement's path.
//!
//! An adapter acknowledges an event only once it is durably stored. On SQLite a commit costs a
//! hop to the connection's worker thread and, during a burst on two cores, 1–4 ms of CPU shared
//! with the adapters parsing the burst: every event of a burst waited for the group under way
//! and then its own (issue 12, docs/BENCHMARKS.md). Here an event is instead appended to this
//! process's journal file, one line in one `write` (as durable against a crash of the process
//! as SQLite's commit with `synchronous=NORMAL`; neither survives a power cut), acknowledged,
//! and moved into the inbox by a task of its own a moment later, in groups; the inbox drops a
//! duplicate by key as before. The file is emptied whenever all it holds is in the inbox.
//!
//! Recovery: each file is locked by its process while it lives. Whatever a process could not
//! move before it ended (killed, or the database out of reach) stays in its file, which no
//! process holds any more; every live process looks for such files when it starts and every
//! [`RECOVER_EVERY`], and moves their events (`recover.rs`).
//!
//! Only for a database file on this host: PostgreSQL is shared by processes on several hosts, and
//! an event on one host's disk would wait for that host; there events are committed before the
//! ack as before (`inbox_writer.rs`).

mod file;
mod mover;
mod recover;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use file::{AppendError, JournalFile};
pub use recover::{Recovered, recover};

use super::pending::Pending;
use super::{NewEvent, Store};
use mover::Mover;

/// The most events one statement moves.
pub(crate) const MAX_GROUP: usize = 128;

/// How often a live process looks for stopped processes' journals.
pub const RECOVER_EVERY: Duration = Duration::from_secs(10);

/// Whether any journal in `dir` holds events not yet moved into the inbox (by its length: a
/// journal is emptied once all it holds is moved).
pub fn holds_events(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.path().extension().is_some_and(|x| x == file::EXTENSION)
                && e.metadata().is_ok_and(|m| m.len() > 0)
        })
    })
}

/// Where the journals of the SQLite database a URL names live: a directory beside its file
/// (`threadsmith.db` → `threadsmith.db.inbox-journal/`). `None` for an in-memory database or
/// another kind of database.
pub fn dir_for(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.contains(":memory:") || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(format!("{path}.inbox-journal")))
}

/// This process's journal and the task that moves its events into the inbox.
pub struct Journal {
    file: Arc<JournalFile>,
    /// Appended, not yet in the inbox.
    unmoved: Arc<Pending>,
    ready: Arc<Notify>,
    /// Ends the mover (after a last move) when the journal is dropped.
    _stop: tokio_util::sync::DropGuard,
}

impl Journal {
    /// Opens a new journal file in `dir` and starts moving its events (and stopped processes',
    /// journaled less than `max_age` ago) into `store`'s inbox, waking `moved` after each move.
    pub fn start(
        dir: &Path,
        store: Arc<dyn Store>,
        moved: Arc<Notify>,
        max_age: Duration,
    ) -> std::io::Result<Self> {
        Self::start_recovering_every(dir, store, moved, max_age, RECOVER_EVERY)
    }

    /// [`Journal::start`], looking for stopped processes' journals every `recover_every`.
    pub(crate) fn start_recovering_every(
        dir: &Path,
        store: Arc<dyn Store>,
        moved: Arc<Notify>,
        max_age: Duration,
        recover_every: Duration,
    ) -> std::io::Result<Self> {
        let file = Arc::new(JournalFile::create(dir)?);
        let unmoved = Arc::new(Pending::default());
        let ready = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let mover = Mover {
            file: file.clone(),
            dir: dir.to_path_buf(),
            store,
            moved,
            unmoved: unmoved.clone(),
            max_age,
            recover_every,
        };
        tokio::spawn(mover.supervised(ready.clone(), stop.clone()));
        Ok(Self {
            file,
            unmoved,
            ready,
            _stop: stop.drop_guard(),
        })
    }

    /// Journals an event: durable once this returns `Ok`. On an error the event is handed back
    /// (the caller stores it directly).
    pub fn append(&self, event: NewEvent) -> Result<(), (NewEvent, AppendError)> {
        // Counted first, so that `drain` never finds none while one is being appended.
        self.unmoved.add(1);
        match self.file.append(event) {
            Ok(()) => {
                self.ready.notify_one();
                Ok(())
            }
            Err(e) => {
                self.unmoved.done(1);
                Err(e)
            }
        }
    }

    /// Waits (at most `at_most`) until every journaled event is in the inbox, then closes the
    /// journal: its file is removed when empty (otherwise recovered by the next process), and
    /// later events are stored directly. Whether everything was moved.
    pub async fn drain(&self, at_most: Duration) -> bool {
        let moved = self.unmoved.none(at_most).await;
        if let Err(e) = self.file.close() {
            tracing::warn!(error = %e, file = %self.file.path().display(), "could not remove the journal");
        }
        if !moved {
            tracing::warn!(
                events = self.unmoved.count(),
                file = %self.file.path().display(),
                "events still in the journal at shutdown: the next process moves them"
            );
        }
        moved
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    #[cfg(test)]
    pub(crate) fn file(&self) -> &JournalFile {
        &self.file
    }
}
