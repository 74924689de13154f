//! The task that moves journaled events into the inbox, and its supervisor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::file::JournalFile;
use super::recover::{recover, recover_file};
use super::{MAX_GROUP, Pending, Store};

/// How long nothing must be appended before a move starts, and the longest a move waits for it.
const QUIET: Duration = Duration::from_millis(2);
const QUIET_AT_MOST: Duration = Duration::from_millis(50);

/// Waits between attempts at a move the database refused, the first and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub(super) struct Mover {
    pub file: Arc<JournalFile>,
    pub dir: PathBuf,
    pub store: Arc<dyn Store>,
    pub moved: Arc<Notify>,
    pub unmoved: Arc<Pending>,
    pub max_age: Duration,
    pub recover_every: Duration,
}

impl Mover {
    /// Runs the mover; should it panic, the journal is closed (events are committed directly
    /// from then on), its file, which this process no longer holds, is recovered like a stopped
    /// process's, and stopped processes' journals are still looked for: nothing acknowledged
    /// stays behind.
    pub async fn supervised(self, ready: Arc<Notify>, stop: CancellationToken) {
        let this = Arc::new(self);
        let ran = tokio::spawn(this.clone().run(ready, stop.clone())).await;
        let Err(e) = ran else {
            return;
        };
        tracing::error!(error = %e, "the journal's mover stopped; storing events directly from now on");
        if let Err(e) = this.file.close() {
            tracing::warn!(error = %e, "could not close the journal");
        }
        if !this.recover_own(&stop).await {
            return;
        }
        // Nothing more is appended once closed: what was counted is in the inbox now.
        this.unmoved.done(this.unmoved.count());
        this.store.inbox_touched();
        this.moved.notify_one();
        let mut recovery = tokio::time::interval(this.recover_every);
        loop {
            tokio::select! {
                _ = recovery.tick() => this.recover().await,
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Moves this process's own (closed) file into the inbox, retrying until it is gone
    /// (another process may be recovering it meanwhile); false if stopped first.
    async fn recover_own(&self, stop: &CancellationToken) -> bool {
        let own = self.file.path().to_path_buf();
        let mut wait = RETRY_FIRST;
        loop {
            match recover_file(own.clone(), self.store.as_ref(), self.max_age).await {
                Ok(_) if !own.exists() => return true,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not recover the journal; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return false,
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    async fn run(self: Arc<Self>, ready: Arc<Notify>, stop: CancellationToken) {
        let mut recovery = tokio::time::interval(self.recover_every);
        recovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ready.notified() => {
                    self.quiet(&stop).await;
                    self.move_queued(&stop).await
                }
                // The first tick is at once: a process recovers what stopped ones left first.
                _ = recovery.tick() => self.recover().await,
                _ = stop.cancelled() => {
                    self.move_queued(&stop).await;
                    return;
                }
            }
        }
    }

    /// Waits until nothing was appended for [`QUIET`] (a burst is over), at most
    /// [`QUIET_AT_MOST`] (a stream that never pauses is still moved), or the stop: so that the
    /// moves (the database's CPU) run behind a burst's acknowledgements, not among them.
    async fn quiet(&self, stop: &CancellationToken) {
        let start = tokio::time::Instant::now();
        loop {
            let seen = self.file.written();
            tokio::select! {
                _ = tokio::time::sleep(QUIET) => {}
                _ = stop.cancelled() => return,
            }
            if self.file.written() == seen || start.elapsed() >= QUIET_AT_MOST {
                return;
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
