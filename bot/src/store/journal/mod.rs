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

/// The most events one statement moves.
pub(crate) const MAX_GROUP: usize = 128;

/// How often a live process looks for stopped processes' journals.
pub const RECOVER_EVERY: Duration = Duration::from_secs(10);

/// Waits between attempts at a move the database refused, the first and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

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

struct Mover {
    file: Arc<JournalFile>,
    dir: PathBuf,
    store: Arc<dyn Store>,
    moved: Arc<Notify>,
    unmoved: Arc<Pending>,
    max_age: Duration,
}

impl Mover {
    /// Runs the mover; should it panic, the journal is closed (events are committed directly
    /// from then on) and its file, which this process no longer holds, is recovered like a
    /// stopped process's: nothing acknowledged stays behind.
    async fn supervised(self, ready: Arc<Notify>, stop: CancellationToken) {
        let this = Arc::new(self);
        let ran = tokio::spawn(this.clone().run(ready, stop)).await;
        let Err(e) = ran else {
            return;
        };
        tracing::error!(error = %e, "the journal's mover stopped; storing events directly from now on");
        if let Err(e) = this.file.close() {
            tracing::warn!(error = %e, "could not close the journal");
        }
        let mut wait = RETRY_FIRST;
        loop {
            match recover(&this.dir, None, this.store.as_ref(), this.max_age).await {
                Ok(_) => break,
                Err(e) => tracing::error!(error = %e, "could not recover the journal; retrying"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_MAX);
        }
        // Nothing more is appended once closed: what was counted is in the inbox now.
        this.unmoved.done(this.unmoved.count());
        this.moved.notify_one();
    }

    async fn run(self: Arc<Self>, ready: Arc<Notify>, stop: CancellationToken) {
        let mut recovery = tokio::time::interval(RECOVER_EVERY);
        recovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ready.notified() => self.move_queued(&stop).await,
                // The first tick is at once: a process recovers what stopped ones left first.
                _ = recovery.tick() => self.recover().await,
                _ = stop.cancelled() => {
                    self.move_queued(&stop).await;
                    return;
                }
            }
        }
    }

    /// Moves what was appended since the last move, retrying while the database refuses
    /// (the events stay in the file meanwhile: durable whatever happens to this process).
    async fn move_queued(&self, stop: &CancellationToken) {
        let (events, upto) = self.file.take();
        if events.is_empty() {
            return;
        }
        for group in events.chunks(MAX_GROUP) {
            let mut wait = RETRY_FIRST;
            while let Err(e) = self.store.enqueue_many(group).await {
                tracing::error!(error = %e, events = group.len(), "could not move journaled events into the inbox; retrying");
                if stop.is_cancelled() {
                    // Stopping: they stay in the file for the next process.
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
            self.moved.notify_one();
        }
        // Emptied before the events are counted as moved, so that a drain that finds none
        // unmoved finds the file empty (and removes it).
        match self.file.moved(upto) {
            // Watchers of the inbox learn that the journal holds nothing more (tests' `settle`).
            Ok(true) => self.store.inbox_touched(),
            Ok(false) => {}
            // The file keeps events already in the inbox; recovering them later finds them
            // duplicates.
            Err(e) => tracing::warn!(error = %e, "could not empty the journal"),
        }
        self.unmoved.done(events.len());
    }

    async fn recover(&self) {
        match recover(
            &self.dir,
            Some(self.file.path()),
            self.store.as_ref(),
            self.max_age,
        )
        .await
        {
            Ok(r) if r.files > 0 => self.moved.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not recover stopped processes' journals"),
        }
    }
}
